#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs docker.io when dockerd is missing (Debian, as
# root) and starts dockerd in the background when no daemon answers. Its log goes to
# ${DSYNC_DOCKERD_LOG:-/tmp/dsync-dockerd.log}. Exit 0 when `docker info` works.
set -euo pipefail
log=${DSYNC_DOCKERD_LOG:-/tmp/dsync-dockerd.log}
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "docker-up: starting dockerd (log: $log)"
  setsid dockerd >"$log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi
docker info >/dev/null 2>&1 || { echo "docker-up: dockerd did not answer; see $log" >&2; exit 1; }
