#!/bin/sh
# An etcd member's entrypoint on the Docker runtime: runs etcd with its arguments, unless the
# cluster removed this member and added it again (etcdctl member add: the member list shows
# its peer URL, not started). Then its old data would be refused, so it is set aside and the
# member joins the existing cluster empty, as etcd's guide to replacing a member says. That
# lets an agent re-make a member with `etcdctl member add` and `docker start` alone.
# OPERATOR_ETCD_ENDPOINTS lists every member's client URL.
set -eu
name="" dir="" peer=""
prev=""
for a in "$@"; do
  case "$prev" in
    --name) name="$a" ;;
    --data-dir) dir="$a" ;;
    --initial-advertise-peer-urls) peer="$a" ;;
  esac
  prev="$a"
done
if [ -n "$dir" ] && [ -d "$dir/member" ] && [ -n "${OPERATOR_ETCD_ENDPOINTS:-}" ]; then
  # `id, status, name, peer URLs, client URLs, is learner`, one member a line.
  list="$(etcdctl --endpoints="$OPERATOR_ETCD_ENDPOINTS" --dial-timeout=1s --command-timeout=2s \
    member list -w simple 2>/dev/null || true)"
  if printf '%s\n' "$list" | grep -q "^[0-9a-f]*, unstarted, , $peer,"; then
    cluster="$(printf '%s\n' "$list" | awk -F', ' -v me="$name" -v peer="$peer" '
      $2 == "started" && $3 != me { printf "%s%s=%s", sep, $3, $4; sep = "," }
      END { printf "%s%s=%s", sep, me, peer }')"
    aside="$dir.removed-$(date +%s)"
    mv "$dir" "$aside"
    echo "etcd-member: $name was added to the cluster again: its old data is set aside in $aside; joining $cluster empty" >&2
    # The same arguments, but for the cluster it joins and how.
    prev=""
    for a in "$@"; do
      shift
      case "$prev" in
        --initial-cluster) a="$cluster" ;;
        --initial-cluster-state) a="existing" ;;
      esac
      set -- "$@" "$a"
      prev="$a"
    done
  fi
fi
exec /usr/bin/etcd "$@"
