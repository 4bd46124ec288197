#!/usr/bin/env bash
# Builds the images of the Docker runtime from local parts: operator/ratelimiter,
# operator/redis, operator/etcd and operator/toolbox, all FROM debian:bookworm-slim. Where that base cannot
# be pulled (no registry), it is made here with debootstrap and `docker import`. Each image
# carries the hash of its inputs; an image whose inputs did not change is not rebuilt.
#   ./scripts/build-images.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
force="${1:-}"

if ! docker info >/dev/null 2>&1; then
  echo "no Docker engine answers (is dockerd running, and may this user use it?)" >&2
  exit 1
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
now() { date +%s%N; }
took() { echo "$(( ($(now) - $1) / 100000000 ))" | sed -E 's/([0-9])$/.\1/; s/^\./0./'; }

# 1. The base image.
base="debian:bookworm-slim"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  if ! docker pull -q "$base" >/dev/null 2>&1; then
    t0=$(now)
    echo "making $base with debootstrap (no registry to pull it from)…"
    if ! command -v debootstrap >/dev/null 2>&1; then
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq debootstrap >/dev/null
    fi
    root="$(mktemp -d)"
    trap '$sudo rm -rf "$root"' EXIT
    $sudo debootstrap --variant=minbase --include=ca-certificates bookworm "$root" http://deb.debian.org/debian >/dev/null
    $sudo rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
    $sudo tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$base" >/dev/null
    echo "made $base in $(took "$t0")s"
  fi
fi

# 2. Our binaries, built once in release (the tests use the same build).
cargo build --release --bins --quiet
bin="${CARGO_TARGET_DIR:-target}/release"
docker_cli="$(command -v docker)"

# 3. Each image from its Dockerfile and a context of exactly its inputs.
build() {
  local name="$1" dockerfile="compose/images/$1.Dockerfile"; shift
  local ctx; ctx="$(mktemp -d)"
  cp "$dockerfile" "$ctx/Dockerfile"
  for f in "$@"; do cp "$f" "$ctx/"; done
  local hash
  hash="$( (docker image inspect -f '{{.Id}}' "$base"; cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
  local have
  have="$(docker image inspect -f '{{index .Config.Labels "operator.inputs"}}' "operator/$name" 2>/dev/null || true)"
  if [ "$have" = "$hash" ] && [ "$force" != "--force" ]; then
    echo "operator/$name is up to date ($hash)"
  else
    local t0 log; t0=$(now); log="$ctx.log"
    # The classic builder: no BuildKit plugin is needed. Its notices go to the log.
    if ! DOCKER_BUILDKIT=0 docker build -q --label "operator.inputs=$hash" -t "operator/$name" "$ctx" >"$log" 2>&1; then
      cat "$log" >&2
      echo "building operator/$name failed" >&2
      exit 1
    fi
    echo "built operator/$name ($hash) in $(took "$t0")s"
    rm -f "$log"
  fi
  rm -rf "$ctx"
}
build ratelimiter "$bin/ratelimiter"
build redis
build etcd compose/images/etcd-member.sh
build toolbox "$bin/operator" "$docker_cli"
