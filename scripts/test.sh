#!/usr/bin/env bash
# Everything CI runs: installs what is missing, builds the Docker images, then formatting,
# lints and every test. Tests run against real processes: redis-server, our own binaries,
# the Docker engine (containers of our own images), and tmux for the tests that drive the
# binary in a real terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh test

# One build cache for every checkout of the project (a fresh clone builds only what
# changed, not its ~300 dependencies again); CARGO_TARGET_DIR chooses another.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/operator/target}"
mkdir -p "$CARGO_TARGET_DIR"
# Cargo remembers which files built this project's own crate by their paths: built last from
# another checkout, it would count this one's sources as unchanged. So when the checkout
# changes, its own crate is built again (the dependencies stay).
checkout="$CARGO_TARGET_DIR/.checkout"
if [ "$(cat "$checkout" 2>/dev/null || true)" != "$PWD" ]; then
  cargo clean -p operator --quiet 2>/dev/null || true
  cargo clean -p operator --release --quiet 2>/dev/null || true
  echo "$PWD" >"$checkout"
fi

if docker info >/dev/null 2>&1; then
  echo "== Docker images (rebuilt only when their inputs changed)"
  ./scripts/build-images.sh
else
  echo "== no Docker engine answers here: the Docker tests will say they are skipped"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test (release: one build shared by every test)"
# Tests that cannot run here (no Docker engine) note why; they are listed at the end.
skipped="$CARGO_TARGET_DIR/tmp/skipped-tests.txt"
mkdir -p "$CARGO_TARGET_DIR/tmp" && rm -f "$skipped"
status=0
cargo test --release || status=$?
if [ -s "$skipped" ]; then
  echo "== skipped, and why:"
  sort -u "$skipped"
fi
exit "$status"
