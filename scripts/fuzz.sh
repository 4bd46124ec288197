#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60), with the address
# sanitizer, outside CI; prints each target's executions and whether it found a crash.
# The properties checked are in src/properties.rs; tests/properties.rs checks the same ones
# on a few hundred inputs in the normal suite. A crash leaves its input in
# fuzz/artifacts/TARGET/: make it a regression test, fix, run again.
#   ./scripts/fuzz.sh [SECONDS] [TARGET…]
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null; then
  echo "installing cargo-fuzz…"
  cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# Seed corpora from what the project already holds: the policy's corpora, the example
# config, the runbooks, the campaigns and variants, and the recorded streams and requests in fuzz/seeds.
seed() {
  local t="$1" dir="fuzz/corpus/$1"
  mkdir -p "$dir"
  [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$dir"/ 2>/dev/null || true
  case "$t" in
    policy)
      grep -hv '^\s*#' src/policy/corpus.txt src/policy/redteam.txt |
        sed -n 's/^[a-z_]* *| *//p' |
        while IFS= read -r line; do
          printf '%s' "$line" >"$dir/$(printf '%s' "$line" | sha1sum | cut -c1-16)"
        done
      ;;
    config_toml) cp operator.example.toml compose/operator.toml "$dir"/ 2>/dev/null || true ;;
    yaml) cp assets/runbooks/*.yaml campaigns/*.yaml campaigns/variants/*.yaml "$dir"/ 2>/dev/null || true ;;
  esac
}

echo "building the fuzz targets (address sanitizer)…"
cargo fuzz build --sanitizer address >/dev/null
summary=()
failed=0
for t in "${targets[@]}"; do
  seed "$t"
  log="$(mktemp)"
  echo "fuzzing $t for ${secs}s…"
  if cargo fuzz run --sanitizer address "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
    result="no crash"
  else
    result="CRASH: $(grep -o 'fuzz/artifacts/[^ ]*' "$log" | head -1)"
    failed=1
    tail -40 "$log"
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  summary+=("$(printf '%-14s %12s runs  %8s/s  %s' "$t" "${runs:-?}" "${rate:-?}" "$result")")
  rm -f "$log"
done
echo
echo "target              executions      rate  result (${secs}s each)"
printf '%s\n' "${summary[@]}"
exit "$failed"
