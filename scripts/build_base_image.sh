#!/usr/bin/env bash
# The base image every model image is built FROM, made offline from Debian's packages:
# `debootstrap --variant=minbase bookworm` with python3 (3.11, the machine's minor
# version, so the wheelhouse made on the host fits), python3-venv and ca-certificates,
# then `docker import`. Nothing is pulled from a container registry.
#
#   scripts/build_base_image.sh               # start dockerd if none answers, build if missing
#   scripts/build_base_image.sh --no-dockerd  # use the engine DOCKER_HOST names, start none
#
# The root file system is kept as a tarball under $MLSTUDIO_BASE_CACHE (default
# /var/cache/mlstudio), so a rerun on a fresh engine is a `docker import` (seconds) and a
# rerun with the image present does nothing. Needs root (debootstrap, dockerd).
#
# dockerd is started the way it works in a container as root: no iptables, no bridge
# (containers use the host's network), its own data root, logging to $DOCKERD_LOG.
set -euo pipefail

TAG=${IMAGE_BASE:-mlstudio/python:3.11-bookworm}
CACHE=${MLSTUDIO_BASE_CACHE:-/var/cache/mlstudio}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
DATA_ROOT=${DOCKERD_DATA_ROOT:-/var/lib/mlstudio-docker}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/mlstudio-dockerd.log}
TARBALL="$CACHE/python-3.11-$SUITE-rootfs.tar.gz"
START_DOCKERD=1
[ "${1:-}" = "--no-dockerd" ] && START_DOCKERD=0

say() { echo "build_base_image: $*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

start_dockerd() {
  engine_answers && return 0
  if [ "$START_DOCKERD" = 0 ] || [ -n "${DOCKER_HOST:-}" ]; then
    say "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-unset}); not starting one"
    return 1
  fi
  command -v dockerd >/dev/null || { say "dockerd is not installed (apt-get install docker.io)"; return 1; }
  [ "$(id -u)" = 0 ] || { say "starting dockerd needs root"; return 1; }
  mkdir -p "$DATA_ROOT"
  say "starting dockerd (data root $DATA_ROOT, log $DOCKERD_LOG)"
  # setsid: the engine outlives this script and the CI step that ran it.
  setsid dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$DATA_ROOT" \
    --host unix:///var/run/docker.sock >"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    engine_answers && return 0
    sleep 0.5
  done
  say "dockerd did not answer within 30 s; its log:"
  tail -n 30 "$DOCKERD_LOG" >&2 || true
  return 1
}

make_rootfs_tarball() {
  [ -s "$TARBALL" ] && return 0
  command -v debootstrap >/dev/null || { say "debootstrap is not installed (apt-get install debootstrap)"; return 1; }
  mkdir -p "$CACHE"
  local root
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$root"' RETURN
  say "debootstrap $SUITE from $MIRROR (once; cached as $TARBALL)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
    tail -n 30 "$CACHE/debootstrap.log" >&2
    return 1
  }
  # What an image does not need: package lists and caches, docs, man pages.
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/var/cache/debconf/*-old "$root"/var/log/*
  chroot "$root" python3 -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11)'
  tar --numeric-owner -C "$root" -czf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
}

start_dockerd
if docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG is there"
  exit 0
fi
make_rootfs_tarball
say "docker import $TARBALL as $TAG"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$TARBALL" "$TAG" >/dev/null
docker run --rm --network host "$TAG" python3 -c 'import sys; print("base image python", sys.version.split()[0])'
