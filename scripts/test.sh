#!/usr/bin/env bash
# Everything CI runs: installs what is missing, builds the Docker images, then formatting,
# lints and every test. Tests run against real processes: redis-server, our own binaries,
# the Docker engine (containers of our own images), and tmux for the tests that drive the
# binary in a real terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh test

# One build folder, the one `run-demo.sh` and the README name: ./target (CARGO_TARGET_DIR
# chooses another). .ci/run links it to a cache that outlives CI's fresh clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$CARGO_TARGET_DIR"

if docker info >/dev/null 2>&1; then
  echo "== Docker images (rebuilt only when their inputs changed)"
  ./scripts/build-images.sh
else
  echo "== no Docker engine answers here: the Docker tests will say they are skipped"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
# --all-features: the benches' fixtures (feature `fixtures`) are linted too.
cargo clippy --all-targets --all-features -- -D warnings
echo "== cargo test (release: one build shared by every test)"
# Tests that cannot run here (no Docker engine) note why; they are listed at the end.
skipped="$CARGO_TARGET_DIR/tmp/skipped-tests.txt"
mkdir -p "$CARGO_TARGET_DIR/tmp" && rm -f "$skipped"
status=0
# A hung engine must end the run with its reason, not hold it until CI's own limit: a watchdog
# asks the engine for its networks each minute (the call a deadlocked network controller
# never answers), and the whole suite is bounded.
watchdog=""
if docker info >/dev/null 2>&1; then
  (
    while sleep 60; do
      if ! timeout 90 docker network ls >/dev/null 2>&1; then
        echo "== the Docker engine stopped answering (GET /networks, 90 s): stopping the tests" >&2
        pkill -INT -P "$$" -x timeout || true
        exit 1
      fi
    done
  ) &
  watchdog=$!
fi
timeout --signal=INT --kill-after=60 50m cargo test --release || status=$?
[ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null || true
if [ "$status" -eq 124 ]; then
  echo "== the tests ran past 50 minutes: the lines above name the tests still running" >&2
fi
if [ -s "$skipped" ]; then
  echo "== $(sort -u "$skipped" | wc -l) skipped, and why:"
  sort -u "$skipped"
fi
exit "$status"
