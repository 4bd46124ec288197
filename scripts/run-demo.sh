#!/usr/bin/env bash
# Runs the product on its embedded defaults: builds, then opens the guided demo in the
# full-screen app — a 3-node rate limiter with Redis on loopback (started if it is down),
# load, a fault, detection, the agent's diagnosis and repair, and the monitor's proof.
# Space moves to the next step (at the last one, runs the demo again); q quits (offering to heal and stop what it started).
# Without an API key the agent is the offline runbook agent; with ANTHROPIC_API_KEY, Claude.
# With OPERATOR_RUNTIME=docker the cluster runs as containers (the images are built first)
# and the agent works from its sandbox.
#   ./scripts/run-demo.sh [SUBJECT]
set -euo pipefail
cd "$(dirname "$0")/.."
subject="${1:-ratelimiter}"

./scripts/setup.sh demo
if [ "${OPERATOR_RUNTIME:-local}" = docker ]; then
  ./scripts/build-images.sh
fi
if [ ! -t 1 ]; then
  echo "the demo is a full-screen app: run it in a terminal" >&2
  exit 1
fi

echo "building…"
cargo build --release --bins --quiet
exec "${CARGO_TARGET_DIR:-target}/release/operator" demo "$subject"
