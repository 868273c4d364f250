#!/usr/bin/env bash
# Renders a Helm chart like `helm template`, without helm (Debian ships none).
# Builds hack/helm-template/ (Go) into build/helm-template/ the first time, or
# when its sources change, then runs it with the given arguments.
#
# The build is offline, in GOPATH mode, from Debian's Go packages only
# (golang-go, golang-github-masterminds-sprig-dev, golang-gopkg-yaml.v3-dev;
# hack/install-deps.sh installs them): GOPATH=/usr/share/gocode GO111MODULE=off.
#
# Usage: hack/helm-template.sh [helm-template flags] RELEASE CHART_DIR
#        hack/helm-template.sh --build-only    (just build; prints the binary's path)
#   e.g. hack/helm-template.sh -n gpu-autoscaler-system --include-crds \
#          --set scheduler.mode=extender gpu-autoscaler charts/gpu-autoscaler
# Run `hack/helm-template.sh --help` for the renderer's flags.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/hack/helm-template"
out_dir="${HELM_TEMPLATE_BUILD_DIR:-$root/build/helm-template}"
bin="$out_dir/helm-template"

mkdir -p "$out_dir"
if [[ ! -x "$bin" ]] || [[ -n "$(find "$src" -name '*.go' -newer "$bin" -print -quit)" ]]; then
  for dir in /usr/share/gocode/src/github.com/Masterminds/sprig /usr/share/gocode/src/gopkg.in/yaml.v3; do
    if [[ ! -d $dir ]]; then
      echo "helm-template.sh: $dir is missing; run hack/install-deps.sh" >&2
      exit 1
    fi
  done
  (cd "$src" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off \
    GOCACHE="$out_dir/gocache" go build -o "$bin.tmp" . && mv "$bin.tmp" "$bin")
fi
if [[ "${1:-}" == "--build-only" ]]; then
  echo "$bin"
  exit 0
fi
exec "$bin" "$@"
