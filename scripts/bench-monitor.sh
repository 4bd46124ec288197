#!/usr/bin/env bash
# The headless monitor's cost on a healthy 3-node cluster without load: CPU per cycle and
# resident memory, `operator monitor --interval 1s` over SECONDS (default 60) after 5 s of
# start-up. CPU is the scheduler's own account of every thread (/proc/PID/task/*/schedstat,
# nanoseconds), read every 10 s: the median of those windows is the figure (a virtual
# machine's neighbours move single windows), the mean and range are shown beside it.
# EVENTS=off leaves out the runtime's event stream (pidfds locally, the engine's on Docker);
# SUBJECT=etcd watches an etcd cluster instead of the rate limiter. OPERATOR_BIN=PATH measures
# that build instead of this checkout's (to compare two builds, run them in turn, alternately:
# a host's slow minutes then fall on both).
#   [SUBJECT=etcd] [OPERATOR_BIN=PATH] ./scripts/bench-monitor.sh [SECONDS] [local|docker]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
runtime="${2:-local}"
events="$([ "${EVENTS:-on}" = off ] && echo false || echo true)"

if [ -n "${OPERATOR_BIN:-}" ]; then
  op="$OPERATOR_BIN"
else
  cargo build --release --bins --quiet
  op="${CARGO_TARGET_DIR:-$PWD/target}/release/operator"
fi
state="$(mktemp -d)"
printf '[runtime.local]\nevents = %s\n[runtime.docker]\nevents = %s\n' "$events" "$events" >"$state/config.toml"
export OPERATOR_STATE_DIR="$state" OPERATOR_CONFIG="$state/config.toml" OPERATOR_INSTANCE=9
cleanup() {
  "$op" down >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
if [ "$runtime" = docker ]; then
  ./scripts/build-images.sh >/dev/null
fi
"$op" --runtime "$runtime" up "${SUBJECT:-ratelimiter}" >/dev/null

python3 - "$op" "$secs" <<'PY'
import os, signal, statistics, subprocess, sys, threading, time
op, secs = sys.argv[1], int(sys.argv[2])

def threads(pid):
    """CPU time (ns) of each live thread, from the scheduler's own account."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return out

p = subprocess.Popen([op, "monitor", "--interval", "1s"],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
cycles = 0
def count():
    global cycles
    for line in p.stdout:
        if " #" in line and "nodes " in line:
            cycles += 1
threading.Thread(target=count, daemon=True).start()
time.sleep(5)  # start-up left out
WINDOW = 10
windows, total_cpu, total_cycles, gone = [], 0, 0, 0
before, c0 = threads(p.pid), cycles
for _ in range(max(1, secs // WINDOW)):
    time.sleep(WINDOW)
    after, c1 = threads(p.pid), cycles
    used = sum(after.values()) - sum(v for t, v in before.items() if t in after)
    gone += len([t for t in before if t not in after])
    if c1 > c0:
        windows.append(used / (c1 - c0) / 1e6)
    total_cpu, total_cycles = total_cpu + used, total_cycles + (c1 - c0)
    before, c0 = after, c1
with open(f"/proc/{p.pid}/status") as f:
    status = {l.split(":")[0]: (l.split() + ["0", "0"])[1] for l in f}
p.send_signal(signal.SIGTERM)
p.wait()
note = f" ({gone} threads ended in a window: their time is not counted)" if gone else ""
print(f"operator monitor --interval 1s, healthy 3-node cluster, no load, {secs} s ({total_cycles} cycles): "
      f"CPU {statistics.median(windows):.2f} ms per cycle (median of {len(windows)} windows of {WINDOW} s, "
      f"{min(windows):.2f}–{max(windows):.2f}; mean {total_cpu / total_cycles / 1e6:.2f}){note}; "
      f"resident {int(status['VmRSS']) / 1024:.1f} MiB "
      f"(anonymous {int(status['RssAnon']) / 1024:.1f}, file-backed {int(status['RssFile']) / 1024:.1f}, "
      f"peak {int(status['VmHWM']) / 1024:.1f})")
PY
