#!/usr/bin/env bash
# Installs crane, pinned to the go-containerregistry version go.mod builds
# scripts/image with, into the same tools cache as scripts/helm.sh
# (HWCAUDIT_TOOLS, default ~/.cache/hwcaudit/tools) and prints the binary's
# path. It pushes the OCI layout scripts/image writes (every platform under
# one index) to a registry: the release workflow pushes to ghcr.io with it,
# and scripts/image's TestPushIndex pushes to a registry on loopback.
#
#   "$(scripts/crane.sh)" push --index out/image REGISTRY/REPOSITORY:TAG
set -euo pipefail
cd "$(dirname "$0")/.."

version=v0.22.1 # github.com/google/go-containerregistry, as in go.mod
bin_dir="${HWCAUDIT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/hwcaudit/tools}"
bin="$bin_dir/crane"
stamp="$bin_dir/crane.version"

if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  mkdir -p "$bin_dir"
  # Its own module and go.sum: -mod=readonly from the caller must not apply.
  GOFLAGS=-buildvcs=false GOBIN="$bin_dir" go install -trimpath "github.com/google/go-containerregistry/cmd/crane@$version" >&2
  echo "$version" >"$stamp"
fi
echo "$bin"
