#!/usr/bin/env bash
# Runs the product on its embedded defaults: builds, brings up a 3-node rate limiter with
# Redis on loopback, sends it light traffic, starts the agent (the offline runbook agent, or
# Claude when ANTHROPIC_API_KEY is set) and runs the monitor in the foreground.
# Break things from another terminal and watch tickets open, get repaired and close:
#   ./target/release/operator chaos inject node_kill
#   ./target/release/operator tickets list
# Ctrl-C stops the monitor and the agent, and the cluster if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
subject="${1:-ratelimiter}"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is missing: install it with 'sudo apt-get install redis-server' (Debian, Ubuntu)" >&2
  echo "or 'brew install redis' (macOS), then run this again." >&2
  exit 1
fi

echo "building…"
cargo build --release --bins --quiet
op=./target/release/operator

started=""
if ! "$op" status >/dev/null 2>&1; then
  "$op" up "$subject"
  started=yes
fi

"$op" load "$subject" --rate 20 --duration 24h >/dev/null 2>&1 &
load=$!
state="${OPERATOR_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/operator}"
mkdir -p "$state/logs"
"$op" agent </dev/null >"$state/logs/agent-demo.log" 2>&1 &
agent=$!

cleanup() {
  kill "$load" "$agent" 2>/dev/null || true
  if [ -n "$started" ]; then
    echo
    "$op" chaos heal --all >/dev/null 2>&1 || true
    "$op" down
  fi
}
trap cleanup EXIT

cat <<MSG

The cluster is up and receives 20 requests a second; an agent repairs what breaks
(its log: $state/logs/agent-demo.log). In another terminal, try:
  $op chaos inject node_kill              # kill a random limiter node
  $op chaos inject pause --duration 10s   # freeze one for 10s
  $op node kill redis                     # take Redis away
  $op tickets list                        # what the monitor found, and how it ended
  $op audit list                          # what the agent did; audit show N for the steps

MSG
"$op" monitor
