#!/usr/bin/env bash
# Time to resolve a node_kill with the runbook agent: inject → ticket resolved (verified by
# the monitor), over N kills (default 20), with `operator monitor` at its default interval
# (1s) and `operator agent` (runbook) running beside it, on a fresh cluster in a temporary
# state dir. Also prints the overhead the agent adds to each shell tool call outside the
# command itself (policy, audit writes, approvals), from the audit's own timestamps.
# RUNTIME is local (processes) or docker (containers; build the images first); on docker,
# EVENTS=off makes the monitor poll only, without the engine's event stream. Locally the
# agent's commands run in bubblewrap's sandbox; SANDBOX=off runs them without (for comparison).
#   [SUBJECT=etcd] [SANDBOX=off] ./scripts/bench-resolve.sh [KILLS] [INTERVAL] [RUNTIME] [EVENTS]
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
  *) echo "SUBJECT must be ratelimiter or etcd, not $subject" >&2; exit 2 ;;
esac

cargo build --release --bins --quiet
op="${CARGO_TARGET_DIR:-$PWD/target}/release/operator"
state="$(mktemp -d)"
printf '[runtime.docker]\nevents = %s\n' "$([ "$events" = off ] && echo false || echo true)" >"$state/config.toml"
if [ "${SANDBOX:-on}" = off ]; then printf '[agent]\nsandbox = false\n' >>"$state/config.toml"; fi
export OPERATOR_STATE_DIR="$state" OPERATOR_CONFIG="$state/config.toml" OPERATOR_RUNTIME="$runtime"
unset ANTHROPIC_API_KEY
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$op" chaos heal --all >/dev/null 2>&1 || true
  "$op" down >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

"$op" up "$subject" >/dev/null 2>&1
"$op" monitor --interval "$interval" >"$state/monitor.log" 2>&1 &
pids+=($!)
"$op" agent --backend runbook </dev/null >"$state/agent.log" 2>&1 &
pids+=($!)
sleep 2

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

samples=()
for i in $(seq 1 "$kills"); do
  target="$prefix$(( (i - 1) % 3 + 1 ))"
  sleep "0.$(( RANDOM % 10 ))$(( RANDOM % 10 ))"
  fault=$("$op" chaos inject node_kill --target "$target" --json)
  id=$(echo "$fault" | json 'd["id"]')
  injected=$(echo "$fault" | json 'd["injected_at"]')
  resolved=""
  for _ in $(seq 1 300); do
    resolved=$("$op" tickets list --json | json "next((t['resolved_at'] for t in d if t['entity']=='$target' and t['status']=='resolved' and t['resolution']=='verified' and t['resolved_at'] > '$injected'), '')")
    [ -n "$resolved" ] && break
    sleep 0.05
  done
  [ -n "$resolved" ] || { echo "kill $i: $target was not resolved; agent log:" >&2; tail -20 "$state/agent.log" >&2; exit 1; }
  ms=$(python3 -c "from datetime import datetime as D; f=lambda s: D.fromisoformat(s.replace('Z','+00:00')); print(round((f('$resolved')-f('$injected')).total_seconds()*1000))")
  samples+=("$ms")
  printf 'kill %2d  %-14s resolved (verified) in %5d ms\n' "$i" "$target" "$ms"
  "$op" chaos heal "$id" >/dev/null
done

printf '%s\n' "${samples[@]}" | python3 -c "
import sys, statistics
xs = sorted(int(l) for l in sys.stdin)
q = statistics.quantiles(xs, n=10, method='inclusive')
print(f'$subject: node_kill → resolved (verified), runbook agent, {len(xs)} kills, monitor every $interval, $runtime runtime, events $events: p50 {statistics.median(xs):.0f} ms, p90 {q[8]:.0f} ms, max {xs[-1]} ms')
"

# Overhead per shell call: from the tool_call entry to its result, minus the command's own run.
"$op" audit list --json --limit 1000 | python3 -c "
import json, subprocess, sys, statistics
from datetime import datetime as D
f = lambda s: D.fromisoformat(s.replace('Z', '+00:00'))
over = []
for s in json.load(sys.stdin):
    show = json.loads(subprocess.run(['$op', 'audit', 'show', str(s['id']), '--json'], capture_output=True, text=True).stdout)
    pending = {}
    for e in show['entries']:
        if e['kind'] == 'tool_call' and e.get('command'):
            pending[e['tool_use_id']] = f(e['at'])
        elif e['kind'] == 'tool_result' and e.get('tool_use_id') in pending and e.get('duration_ms') is not None:
            total = (f(e['at']) - pending.pop(e['tool_use_id'])).total_seconds() * 1000
            over.append(total - e['duration_ms'])
over.sort()
q = statistics.quantiles(over, n=10, method='inclusive')
print(f'agent overhead per shell call (policy, audit, gate; outside the command), {len(over)} calls: p50 {statistics.median(over):.1f} ms, p90 {q[8]:.1f} ms')
"
