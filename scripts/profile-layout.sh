#!/usr/bin/env bash
# Writes assets/link/hot.ld: the functions the headless monitor runs, gathered at the front of
# the binary's code. The kernel maps a program's code 64 KiB at a time around each page it
# runs ("fault-around"), so a monitor whose thousand-odd functions lie scattered across 20 MB
# keeps ~10 MiB of code resident; gathered, they fit in about one. build.rs hands the script
# to the linker for the `operator` binary.
#
# It runs `operator monitor` under callgrind (valgrind) for SECONDS (default 40) on each
# subject on the local runtime, and on Docker where an engine answers and the images are
# built, and keeps every function that ran (start-up, cycles, shutdown). A function is named
# by its full mangled symbol, hash included: `cargo build --release` and `cargo test
# --release` share one build of the crate (see the feature notes in Cargo.toml), so the names
# match the binary the tests and the demo run. A function whose name has changed since (a
# dependency update, an edited generic) is simply placed as usual; tests/layout.rs fails when
# too many are, which says: run this again and commit the result. The hash follows the
# crate's build metadata, so a dependency's feature added in Cargo.toml renames every
# function of the crate: run this after such a change. (Matching names without their hash
# was tried: each generic function then brings all its instantiations, 7.9 MB of code
# instead of about one.) valgrind 3.19 does not know
# pidfd_open, so the local runtime's pidfd watch falls back under it and its few functions
# are not listed.
#   ./scripts/profile-layout.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-40}"

if ! command -v valgrind >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
fi

cargo build --release --bins --quiet
op="${CARGO_TARGET_DIR:-$PWD/target}/release/operator"
work="$(mktemp -d)"
export OPERATOR_STATE_DIR="$work/state" OPERATOR_INSTANCE=9
cleanup() {
  "$op" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# One monitor's life under callgrind: start-up, SECONDS of cycles, a graceful stop.
profile() {
  local name="$1"
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$name.cg" \
    "$op" monitor --interval 1s >"$work/$name.log" 2>&1 &
  local pid=$!
  sleep "$secs"
  kill -TERM "$pid"
  wait "$pid" || true
  grep -q ' #' "$work/$name.log" || { echo "the monitor on $name ran no cycle:" >&2; cat "$work/$name.log" >&2; exit 1; }
  echo "profiled the monitor on $name ($(grep -c ' #' "$work/$name.log") cycles)"
}

for subject in ratelimiter etcd; do
  "$op" up "$subject" >/dev/null
  profile "$subject"
  "$op" down >/dev/null
done
if docker info >/dev/null 2>&1 && docker image inspect operator/ratelimiter operator/toolbox >/dev/null 2>&1; then
  "$op" --runtime docker up >/dev/null
  profile docker
  "$op" down >/dev/null
else
  echo "no Docker engine or images here: the Docker runtime's code is left out"
fi

mkdir -p assets/link
python3 - "$op" "$work"/*.cg >assets/link/hot.ld <<'PY'
import collections, os, re, subprocess, sys

binary, outputs = os.path.basename(sys.argv[1]), sys.argv[2:]

def ran(path):
    """(object, function) pairs with instructions of their own, from a callgrind output."""
    names, cost = {}, collections.Counter()
    ob = fn = None
    after_calls = False
    def name(kind, s):
        m = re.match(r"\((\d+)\)(?: (.*))?$", s)
        if not m:
            return s
        if m.group(2) is not None:
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)))
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        key, _, rest = line.partition("=")
        if key in ("ob", "cob"):
            o = name("ob", rest)
            if key == "ob":
                ob = o
        elif key in ("fn", "cfn"):
            f = name("fn", rest)
            if key == "fn":
                fn = (ob, f)
        elif key == "calls":
            after_calls = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_calls:  # the inclusive cost of a call, not the caller's own
                after_calls = False
                continue
            parts = line.split()
            if len(parts) >= 2 and fn:
                cost[fn] += int(parts[1])
    return {f for (o, f), c in cost.items() if c > 0 and o and os.path.basename(o) == binary}

# LLVM merges identical functions into one body with several names (aliases), and
# callgrind reports any one of them: every name at a body's address is kept, so that the
# one its section is named after is among them.
names_at = collections.defaultdict(set)
address_of = {}
nm = subprocess.run(["nm", "--defined-only", sys.argv[1]], capture_output=True, text=True, check=True)
for line in nm.stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        names_at[parts[0]].add(parts[2])
        address_of[parts[2]] = parts[0]
functions = set()
for path in outputs:
    for f in ran(path):
        f = re.sub(r"'\d+$", "", f)  # callgrind's mark of a recursive call
        functions |= names_at.get(address_of.get(f), set()) | {f}

patterns = set()
for f in functions:
    # Rust's symbols, legacy (`_ZN…17h<hash>E`) and v0 (`_R…`, the standard library): the
    # suffix LLVM gives a function it made local (`.llvm.<number>`) changes with the code
    # around it, so it is matched by a wildcard.
    m = re.fullmatch(r"(_ZN.*17h[0-9a-f]{16}E|_R[0-9A-Za-z_]+)(\.llvm\.\d+)?", f)
    if m:
        patterns.add(m.group(1) + "*")
    elif re.fullmatch(r"[A-Za-z_][0-9A-Za-z_]*(\.[a-z]+\.\d+)*", f):
        patterns.add(f)  # C (SQLite), with GCC's suffixes (`.constprop.0`, `.isra.0`)
print("/* Generated by scripts/profile-layout.sh: the functions `operator monitor` runs, */")
print("/* placed together before the rest of the code. Do not edit by hand. */")
# LLVM puts a function it judges cold in `.text.unlikely.NAME`; the monitor may run it still.
print("SECTIONS {")
print("  .text : {")
for p in sorted(patterns):
    print(f"    *(.text.{p} .text.unlikely.{p})")
print("    *(.text .text.*)")
print("  }")
print("}")
print("INSERT BEFORE .init;")
print(f"{len(patterns)} functions", file=sys.stderr)
PY
echo "wrote assets/link/hot.ld"
