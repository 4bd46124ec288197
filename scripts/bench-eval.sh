#!/usr/bin/env bash
# The harness's own cost, on the local runtime with the runbook agent: campaigns/smoke.yaml's
# wall time at parallel 1 and 2, and the overhead per trial (reset + gate + snapshots + heal,
# outside the fault and the agent) as p50 / p90 over every trial run.
#   ./scripts/bench-eval.sh [CAMPAIGN]        (default campaigns/smoke.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
campaign="${1:-campaigns/smoke.yaml}"

cargo build --release --bins --quiet
op="${CARGO_TARGET_DIR:-$PWD/target}/release/operator"
state="$(mktemp -d)"
printf 'ratelimiter.ratelimiter_bin = "%s"\nruntime.local.operator_bin = "%s"\n' \
  "${CARGO_TARGET_DIR:-$PWD/target}/release/ratelimiter" "$op" >"$state/config.toml"
export OPERATOR_STATE_DIR="$state/state" OPERATOR_CONFIG="$state/config.toml"
unset ANTHROPIC_API_KEY OPERATOR_INSTANCE
trap 'rm -rf "$state"' EXIT

for parallel in 1 2; do
  sed "s/^parallel: .*/parallel: $parallel/" "$campaign" >"$state/campaign.yaml"
  start=$(date +%s.%N)
  "$op" eval run campaign "$state/campaign.yaml" --json >"$state/run-$parallel.jsonl"
  end=$(date +%s.%N)
  id=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["campaign"]["id"])' "$state/run-$parallel.jsonl")
  "$op" eval export "$id" --format jsonl >"$state/trials-$parallel.jsonl"
  python3 - "$state/trials-$parallel.jsonl" "$parallel" "$start" "$end" <<'PY'
import json, sys
path, parallel, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
trials = [json.loads(l) for l in open(path)]
over = sorted(t["overhead_ms"] for t in trials)
def pct(v, q):
    return v[max(0, min(len(v) - 1, int(-(-q * len(v) // 1)) - 1))]
verdicts = {}
for t in trials:
    verdicts[t["verdict"]] = verdicts.get(t["verdict"], 0) + 1
print(f"parallel {parallel}: {len(trials)} trials in {end - start:.1f} s; "
      f"overhead per trial p50 {pct(over, 0.5) / 1000:.2f} s, p90 {pct(over, 0.9) / 1000:.2f} s; "
      f"verdicts {verdicts}")
PY
done
