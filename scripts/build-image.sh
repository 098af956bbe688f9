#!/usr/bin/env bash
# Builds the dsync image from docker/Dockerfile (layer cache kept: a re-run with unchanged
# sources takes seconds).
#
# usage: scripts/build-image.sh [--stand-in] [TAG]      (TAG defaults to dsync:dev)
#   --stand-in  for machines that reach no container registry (our CI): first make a local
#               node:20-bookworm-slim with scripts/stand-in-node-image.sh when none is there.
# The build runs with --network host (npm reaches the registry from the host's network), and
# when the base image is our stand-in, with the CA bundle it carries for re-signed TLS.
set -euo pipefail
cd "$(dirname "$0")/.."
stand_in=0
if [ "${1:-}" = "--stand-in" ]; then stand_in=1; shift; fi
tag=${1:-dsync:dev}
base=node:20-bookworm-slim

scripts/docker-up.sh
if [ "$stand_in" = 1 ]; then scripts/stand-in-node-image.sh "$base"; fi
args=(--network host -f docker/Dockerfile -t "$tag")
if [ "$(docker image inspect -f '{{ index .Config.Labels "io.dsync.stand-in" }}' "$base" \
      2>/dev/null || true)" = true ]; then
  args+=(--build-arg NODE_EXTRA_CA_CERTS=/usr/local/share/host-ca-bundle.crt)
fi
start=$(date +%s)
# The legacy builder prints a deprecation notice on newer clients; BuildKit is used when present.
docker build "${args[@]}" . >"${DSYNC_BUILD_LOG:-/tmp/dsync-image-build.log}" 2>&1 || {
  tail -n 40 "${DSYNC_BUILD_LOG:-/tmp/dsync-image-build.log}" >&2
  echo "build-image: docker build failed (full log: ${DSYNC_BUILD_LOG:-/tmp/dsync-image-build.log})" >&2
  exit 1
}
echo "build-image: $tag built in $(( $(date +%s) - start )) s"
