#!/usr/bin/env bash
# Builds a local image tagged like the official `node:20-bookworm-slim`, for machines that
# reach Debian's package mirror and the npm registry but no container registry (our CI).
# The image is Debian bookworm from debootstrap (minbase) with the node 20 and npm of this
# machine copied in, a `node` user (uid/gid 1000, as in the official image) and this
# machine's CA bundle at /usr/local/share/host-ca-bundle.crt: where outbound TLS is
# re-signed by a local CA, a build stage that runs `npm ci` needs
#   docker build --network host --build-arg NODE_EXTRA_CA_CERTS=/usr/local/share/host-ca-bundle.crt
# Real users never need this script: their docker pulls the official image.
#
# usage: scripts/stand-in-node-image.sh [TAG]    (TAG defaults to node:20-bookworm-slim)
# Does nothing when TAG already exists (so CI re-runs are cheap). Starts dockerd if no
# daemon answers (see scripts/docker-up.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=${1:-node:20-bookworm-slim}

"$here/docker-up.sh"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "stand-in: $tag is already there"
  exit 0
fi
command -v debootstrap >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

# The Debian mirror this machine's apt already uses (deb822 sources first, then the classic list).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources \
  2>/dev/null | head -n1 || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "stand-in: no Debian mirror in the apt sources" >&2; exit 1; }

node_exe=$(readlink -f "$(command -v node)")
node_major=$("$node_exe" -p 'process.versions.node.split(".")[0]')
[ "$node_major" = 20 ] || { echo "stand-in: node 20 needed here, found $node_major" >&2; exit 1; }
npm_dir=$(dirname "$(dirname "$node_exe")")/lib/node_modules/npm
[ -d "$npm_dir" ] || { echo "stand-in: npm not found beside $node_exe" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
echo "stand-in: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  exit 1
}
install -d "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules" \
  "$rootfs/usr/local/share" "$rootfs/etc/ssl/certs"
install -m 0755 "$node_exe" "$rootfs/usr/local/bin/node"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
# The bundle twice: where OpenSSL looks, and a copy that a later apt-get of ca-certificates
# (which rewrites the first) leaves alone.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/host-ca-bundle.crt"
chroot "$rootfs" /usr/sbin/groupadd --gid 1000 node
chroot "$rootfs" /usr/sbin/useradd --uid 1000 --gid node --create-home --shell /bin/bash node
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" --numeric-owner -cf - . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_VERSION='"$("$node_exe" -p 'process.versions.node')" \
  --change 'LABEL io.dsync.stand-in=true' \
  --change 'CMD ["node"]' - "$tag" >/dev/null
echo "stand-in: made $tag with node $(docker run --rm --network host "$tag" node --version)"
