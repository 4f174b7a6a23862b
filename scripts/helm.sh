#!/usr/bin/env bash
# Installs Helm, pinned, into the same tools cache as scripts/s3server.sh
# (HWCAUDIT_TOOLS, default ~/.cache/hwcaudit/tools) so that fresh clones on
# the same machine reuse it, and prints the binary's path. The chart tests
# (charts/) run it when told the path by HWCAUDIT_TEST_HELM; without it they
# skip the helm CLI checks, unless HWCAUDIT_TEST_HELM_REQUIRED=1.
#
#   HWCAUDIT_TEST_HELM=$(scripts/helm.sh) go test ./charts/...
set -euo pipefail
cd "$(dirname "$0")/.."

version=v3.22.0
# The Kubernetes version helm assumes offline (helm template, lint, the
# chart's kubeVersion check) is set at link time from its client-go (v0.37 ->
# 1.37), as Helm's Makefile does; a plain go install would claim v1.20.
k8s_minor=37
bin_dir="${HWCAUDIT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/hwcaudit/tools}"
bin="$bin_dir/helm"
stamp="$bin_dir/helm.version"
want="$version+k8s1.$k8s_minor"

if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$bin_dir"
  # Its own module and go.sum: -mod=readonly from the caller must not apply.
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  GOFLAGS=-buildvcs=false GOBIN="$bin_dir" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version" >&2
  echo "$want" >"$stamp"
fi
echo "$bin"
