#!/usr/bin/env bash
# Time to detect a node_kill: inject → ticket open, over N kills (default 20) at the
# monitor's default interval (1s), on a fresh cluster in a temporary state dir. Times come
# from the DB: the fault's ledger row (written before the kill) and the ticket's opened_at.
# Prints every sample, then p50 and p90.
# RUNTIME is local (processes) or docker (containers; build the images first); EVENTS=off
# makes the monitor poll only, without the local runtime's pidfds or the engine's events.
#   [SUBJECT=etcd|tikv] ./scripts/bench-detect.sh [KILLS] [INTERVAL] [RUNTIME] [EVENTS]
# SUBJECT=tikv runs PD and TiKV's stand-in (examples/tikv_standin.rs) as pd-server and
# tikv-server on the local runtime, unless TIKV_BIN_DIR names a folder with the real ones.
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-20}"
interval="${2:-1s}"
runtime="${3:-local}"
events="${4:-on}"
# SUBJECT=etcd measures member_down on the etcd cluster instead.
subject="${SUBJECT:-ratelimiter}"
case "$subject" in
  ratelimiter) prefix="ratelimiter-"; invariant="node_down" ;;
  etcd) prefix="etcd-"; invariant="member_down" ;;
  tikv) prefix="tikv-"; invariant="store_down" ;;
  *) echo "SUBJECT must be ratelimiter, etcd or tikv, not $subject" >&2; exit 2 ;;
esac

cargo build --release --bins --examples --quiet
release="${CARGO_TARGET_DIR:-$PWD/target}/release"
op="$release/operator"
state="$(mktemp -d)"
on="$([ "$events" = off ] && echo false || echo true)"
printf '[runtime.local]\nevents = %s\n[runtime.docker]\nevents = %s\n' "$on" "$on" >"$state/config.toml"
if [ "$subject" = tikv ]; then
  bins="${TIKV_BIN_DIR:-$state/bin}"
  if [ -z "${TIKV_BIN_DIR:-}" ]; then
    mkdir -p "$bins"
    ln -s "$release/examples/tikv_standin" "$bins/pd-server"
    ln -s "$release/examples/tikv_standin" "$bins/tikv-server"
  fi
  printf '[tikv]\npd_bin = "%s/pd-server"\ntikv_bin = "%s/tikv-server"\n' "$bins" "$bins" >>"$state/config.toml"
fi
export OPERATOR_STATE_DIR="$state" OPERATOR_CONFIG="$state/config.toml" OPERATOR_RUNTIME="$runtime"
monitor=""
cleanup() {
  [ -n "$monitor" ] && kill "$monitor" 2>/dev/null || true
  "$op" chaos heal --all >/dev/null 2>&1 || true
  "$op" down >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

"$op" up "$subject" >/dev/null
"$op" monitor --interval "$interval" >"$state/monitor.log" 2>&1 &
monitor=$!
sleep 2

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

samples=()
for i in $(seq 1 "$kills"); do
  target="$prefix$(( (i - 1) % 3 + 1 ))"
  # Land the kill at a random point of the monitor's cycle.
  sleep "0.$(( RANDOM % 10 ))$(( RANDOM % 10 ))"
  fault=$("$op" chaos inject node_kill --target "$target" --json)
  id=$(echo "$fault" | json 'd["id"]')
  injected=$(echo "$fault" | json 'd["injected_at"]')
  ticket=""
  for _ in $(seq 1 200); do
    ticket=$("$op" tickets list --active --json | json "next((t['id'] for t in d if t['invariant']=='$invariant' and t['entity']=='$target'), '')")
    [ -n "$ticket" ] && break
    sleep 0.05
  done
  [ -n "$ticket" ] || { echo "kill $i: no ticket for $target" >&2; exit 1; }
  # A kill soon after the last one reopens the same ticket: take the latest (re)opening.
  opened=$("$op" tickets show "$ticket" --json | json "[e['at'] for e in d['events'] if e['kind'] in ('opened','reopened')][-1]")
  ms=$(python3 -c "from datetime import datetime as D; f=lambda s: D.fromisoformat(s.replace('Z','+00:00')); print(round((f('$opened')-f('$injected')).total_seconds()*1000))")
  samples+=("$ms")
  printf 'kill %2d  %-14s detected in %5d ms\n' "$i" "$target" "$ms"
  "$op" chaos heal "$id" >/dev/null
  # Wait for the ticket to resolve before the next kill.
  for _ in $(seq 1 100); do
    left=$("$op" tickets list --active --json | json "len([t for t in d if t['entity']=='$target'])")
    [ "$left" = 0 ] && break
    sleep 0.1
  done
done

printf '%s\n' "${samples[@]}" | python3 -c "
import sys, statistics
xs = sorted(int(l) for l in sys.stdin)
q = statistics.quantiles(xs, n=10, method='inclusive')
print(f'$subject: node_kill → ticket open over {len(xs)} kills at interval $interval, $runtime runtime, events $events: p50 {statistics.median(xs):.0f} ms, p90 {q[8]:.0f} ms, max {xs[-1]} ms')
"
