#!/usr/bin/env bash
# Installs what the demo and the tests need and this machine lacks: a C compiler, redis-server,
# redis-cli, etcd and etcdctl, bubblewrap, tmux, and docker compose beside a Docker engine. Shared by run-demo.sh and test.sh, so the
# first command of the README does all of its own set-up.
#   ./scripts/setup.sh [demo|test]      (test also wants tmux and docker compose)
# Uses apt-get (through sudo when not root); where there is no apt-get, it says exactly what
# to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-demo}"
case "$purpose" in demo|test) ;; *) echo "usage: $0 [demo|test]" >&2; exit 2 ;; esac

need=()
# SQLite (bundled) and ring are compiled from C.
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# The etcd subject: three members of Debian's etcd, and etcdctl for the agent.
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
# The local sandbox of the agent's commands (user namespaces, read-only binds).
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
# A durable volume on Docker is an ext4 image on a loop device.
if command -v docker >/dev/null 2>&1; then
  PATH="$PATH:/usr/sbin:/sbin" command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
  PATH="$PATH:/usr/sbin:/sbin" command -v losetup >/dev/null 2>&1 || need+=(mount)
fi
if [ "$purpose" = test ]; then
  command -v tmux >/dev/null 2>&1 || need+=(tmux)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  # A second process holding the DB's lock, in the tests.
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  # The compose tests need `docker compose` or `docker-compose` beside the engine.
  if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1 \
    && ! command -v docker-compose >/dev/null 2>&1; then
    need+=(docker-compose)
  fi
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${need[*]} (Debian package names)." >&2
  echo "There is no apt-get here; install them with your package manager, e.g." >&2
  echo "  macOS:  brew install redis etcd tmux" >&2
  echo "  Fedora: sudo dnf install redis etcd tmux" >&2
  echo "  Arch:   sudo pacman -S redis etcd tmux" >&2
  echo "then run this again." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "missing: ${need[*]}; installing needs root: run 'apt-get install -y ${need[*]}' as root" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "installing: ${need[*]}"
log="$(mktemp)"
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  $sudo apt-get install -y -qq "${need[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "apt-get could not install: ${need[*]}" >&2
  exit 1
fi
rm -f "$log"
