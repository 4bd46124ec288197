#!/usr/bin/env bash
# Everything CI runs: installs what is missing, builds the Docker images, then formatting,
# lints and every test. Tests run against real processes: redis-server, our own binaries,
# the Docker engine (containers of our own images), and tmux for the tests that drive the
# binary in a real terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# The compose tests need `docker compose` or `docker-compose` beside the engine.
if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1 \
  && ! command -v docker-compose >/dev/null 2>&1; then
  need+=(docker-compose)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
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
cargo test --release
