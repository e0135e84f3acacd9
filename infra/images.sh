#!/usr/bin/env bash
# Builds the images of infra/Dockerfile, tagged adplatform-<target>:latest:
#   infra/images.sh [web] [cpu-worker] [gpu-worker]        (all three when none is named)
# BASE=<image> picks the base image. Without it: the Dockerfile's public one when it is here or can
# be pulled, else a Debian bookworm with Python made by debootstrap from this machine's apt mirror
# (local/python:3.11-bookworm; made once, about a minute, and kept). pip inside the build gets the
# CA bundle that this machine's pip uses (PIP_CERT or pip's `global.cert`) as the secret `pipcert`,
# and the torch CPU wheel from pip's `find-links` folder through infra/wheels/.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(web cpu-worker gpu-worker)
# BuildKit: Debian's docker.io client has it built in; a newer client needs its buildx plugin.
DOCKER=${DOCKER:-$( { [ -x /usr/bin/docker ] && echo /usr/bin/docker; } || echo docker)}
export DOCKER_BUILDKIT=1
PUBLIC_BASE=python:3.11-slim LOCAL_BASE=local/python:3.11-bookworm
pipconf() { python3 -m pip config get "global.$1" 2>/dev/null || true; }

local_base() {
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  local mirror rootfs
  mirror=${DEBIAN_MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | awk '{print $2}' | head -1 || true)}
  rootfs=$(mktemp -d)
  echo "making $LOCAL_BASE with debootstrap from ${mirror:-deb.debian.org}"
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
  rm -rf "$rootfs"/usr/share/{doc,man,info} "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | $DOCKER import - "$LOCAL_BASE" >/dev/null
  rm -rf "$rootfs"
}

if [ -z "${BASE:-}" ]; then
  if $DOCKER image inspect "$PUBLIC_BASE" >/dev/null 2>&1 || timeout 120 $DOCKER pull -q "$PUBLIC_BASE" >/dev/null 2>&1; then
    BASE=$PUBLIC_BASE
  else
    $DOCKER image inspect "$LOCAL_BASE" >/dev/null 2>&1 || local_base
    BASE=$LOCAL_BASE
  fi
fi

args=(--build-arg "BASE=$BASE")
cert=${PIP_CERT:-$(pipconf cert)}
[ -n "$cert" ] && [ -s "$cert" ] && args+=(--secret "id=pipcert,src=$cert")
if [[ " ${targets[*]} " == *" cpu-worker "* ]]; then
  for dir in ${PIP_FIND_LINKS:-} $(pipconf find-links); do
    for wheel in "$dir"/torch-2.13.0+cpu-*.whl; do
      [ -f "$wheel" ] && { [ -f "infra/wheels/${wheel##*/}" ] || cp -l "$wheel" infra/wheels/ 2>/dev/null || cp "$wheel" infra/wheels/; }
    done
  done
fi

mkdir -p var/images
for target in "${targets[@]}"; do
  start=$SECONDS log=var/images/$target.log
  $DOCKER build --progress plain -f infra/Dockerfile --target "$target" -t "adplatform-$target:latest" "${args[@]}" . \
    >"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "building adplatform-$target failed (whole log: $log)" >&2; exit 1; }
  echo "adplatform-$target:latest built on $BASE in $((SECONDS - start)) s"
done
