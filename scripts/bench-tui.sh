#!/usr/bin/env bash
# Idle CPU and resident memory of the running app: `operator tui` in a real terminal (tmux)
# on a healthy 3-node cluster, its monitor and agent running, nobody touching a key, over
# SECONDS (default 60) after a short settling time.
#   ./scripts/bench-tui.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
command -v tmux >/dev/null || { echo "tmux is needed: apt-get install tmux" >&2; exit 1; }

cargo build --release --bins --quiet
op="${CARGO_TARGET_DIR:-$PWD/target}/release/operator"
state="$(mktemp -d)"
session="op-bench-$$"
export OPERATOR_STATE_DIR="$state" OPERATOR_CONFIG=/dev/null
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  "$op" down >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

"$op" up >/dev/null 2>&1
tmux new-session -d -s "$session" -x 160 -y 48 \
  "sh -c 'echo \$\$ > $state/tui.pid; exec env -u ANTHROPIC_API_KEY OPERATOR_STATE_DIR=$state $op tui'"
for _ in $(seq 1 100); do [ -s "$state/tui.pid" ] && break; sleep 0.1; done
pid=$(cat "$state/tui.pid")
sleep 5

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
peak=0
for _ in $(seq 1 "$secs"); do
  sleep 1
  r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
done
t1=$(ticks); s1=$(date +%s.%N)
python3 -c "
cpu = ($t1 - $t0) / $hz / ($s1 - $s0) * 100
print(f'operator tui, idle on a healthy cluster (monitor every 1s, agent waiting), {($s1 - $s0):.0f} s: CPU {cpu:.2f}% of one core, resident memory {$(rss) / 1024:.1f} MiB (peak {$peak / 1024:.1f} MiB)')
"
tmux send-keys -t "$session" q
sleep 1
