#!/usr/bin/env bash
# Renders the raw manifests in k8s/ from the Helm chart, for people who do not use Helm.
# Never edit k8s/*.yaml by hand: change the chart, then run this script (CI checks that the
# files match: test/k8s/chart.test.ts runs it with --check).
#
# usage: scripts/render-k8s.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/k8s-tools.sh
helm=.tools/bin/helm
out=k8s
check=0
if [ "${1:-}" = "--check" ]; then check=1; out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi

header() {
  cat <<TXT
# Rendered from helm/dsync by scripts/render-k8s.sh ($1). Do not edit: change the chart
# and render again. Apply into a namespace named dsync (the DNS names below say so), after
# creating the Secret the pods read (see k8s/README.md):
#   kubectl create namespace dsync
#   kubectl -n dsync create secret generic dsync-auth --from-literal=cluster-token=... ...
#   kubectl -n dsync apply -f k8s/$2
TXT
}
render() { # file, description, extra helm args...
  local file=$1 what=$2
  shift 2
  { header "$what" "$file"
    "$helm" template dsync helm/dsync --namespace dsync \
      --set auth.existingSecret=dsync-auth --set tests.enabled=false "$@"
  } >"$out/$file"
}
render dsync.yaml "chart defaults"
render dsync-demo.yaml "helm/examples/values-bundled-monitoring.yaml" \
  -f helm/examples/values-bundled-monitoring.yaml

if [ "$check" = 1 ]; then
  status=0
  for f in "$out"/*.yaml; do
    if ! diff -q "$f" "k8s/$(basename "$f")" >/dev/null 2>&1; then
      echo "k8s/$(basename "$f") does not match the chart: run scripts/render-k8s.sh" >&2
      status=1
    fi
  done
  exit $status
fi
echo "render-k8s: wrote $(ls "$out"/*.yaml | tr '\n' ' ')"
