#!/usr/bin/env bash
# The monitor's cycle time while another process writes the DB without a pause: a node is
# killed first, so that every cycle has a verdict to write; a python3 process commits one
# small transaction after another into a table of its own (BEGIN IMMEDIATE … COMMIT, each
# holding the write lock a little while). Prints p50/p90/p99/max of the monitor's own
# cycle_ms over SECONDS (default 60) at 1 s, how many cycles there were, the most verdicts
# ever waiting for the DB, and how many transactions the writer committed.
# GAP_MS (default 0) puts a pause between the writer's transactions.
#   ./scripts/bench-monitor-contended.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
cargo build --release --bins --quiet
op="${CARGO_TARGET_DIR:-$PWD/target}/release/operator"
state="$(mktemp -d)"
export OPERATOR_STATE_DIR="$state" OPERATOR_INSTANCE=9
cleanup() {
  "$op" down >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
"$op" up >/dev/null
"$op" node kill ratelimiter-2 >/dev/null

python3 - "$op" "$secs" "$state/operator.db" "${GAP_MS:-0}" <<'PY'
import json, signal, sqlite3, subprocess, sys, threading, time
op, secs, db, gap = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]) / 1000

monitor = subprocess.Popen([op, "monitor", "--interval", "1s", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
reports = []
def read():
    for line in monitor.stdout:
        try:
            r = json.loads(line)
            if "cycle_ms" in r:
                reports.append(r)
        except ValueError:
            pass
threading.Thread(target=read, daemon=True).start()
time.sleep(3)  # the DB exists, the ticket is open

stop = threading.Event()
commits = 0
def write():
    global commits
    c = sqlite3.connect(db, isolation_level=None, timeout=30)
    c.execute("CREATE TABLE IF NOT EXISTS bench_writer (at REAL, pad TEXT)")
    while not stop.is_set():
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO bench_writer VALUES (?, ?)", (time.time(), "x" * 200))
        time.sleep(0.002)  # the lock held a little, as a real writer would
        c.execute("COMMIT")
        commits += 1
        time.sleep(gap)
    c.close()
writer = threading.Thread(target=write)
start = len(reports)
writer.start()
time.sleep(secs)
stop.set()
writer.join()
monitor.send_signal(signal.SIGTERM)
monitor.wait()
window = reports[start:]
ms = sorted(r["cycle_ms"] for r in window)
def pct(p):
    return ms[min(len(ms) - 1, int(round(p / 100 * (len(ms) - 1))))]
print(f"monitor --interval 1s, a node down, another process committing with {gap * 1000:.0f} ms between "
      f"({commits} transactions in {secs} s): {len(ms)} cycles, cycle_ms p50 {pct(50):.1f}, "
      f"p90 {pct(90):.1f}, p99 {pct(99):.1f}, max {ms[-1]:.1f}; most verdicts waiting for the "
      f"DB: {max(r.get('pending_writes', 0) for r in window)}")
PY
