#!/usr/bin/env bash
# Starts a Docker engine for the image test (tests/test_images.py, marker docker) when none runs and
# this user can: root, with Debian's dockerd (`--install` installs docker.io with apt first, as CI
# does). Never fails: where no engine can run, the image test is skipped and says why.
set -u
docker_cli() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else docker "$@"; fi; }
running() { docker_cli info >/dev/null 2>&1; }
running && exit 0
if [ "$(id -u)" != 0 ]; then echo "no Docker engine runs and only root can start one: the image test will be skipped"; exit 0; fi
if ! command -v dockerd >/dev/null && [ "${1:-}" = --install ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null) \
    || echo "docker.io could not be installed"
fi
command -v dockerd >/dev/null || { echo "no dockerd here: the image test will be skipped"; exit 0; }
mkdir -p /var/log
setsid nohup dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 30); do running && exit 0; sleep 1; done
echo "dockerd did not start (see /var/log/dockerd.log): the image test will be skipped"
exit 0
