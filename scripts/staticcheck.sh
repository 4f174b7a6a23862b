#!/usr/bin/env bash
# Installs staticcheck, pinned, into the same tools cache as scripts/helm.sh
# and scripts/s3server.sh (HWCAUDIT_TOOLS, default ~/.cache/hwcaudit/tools)
# and prints the binary's path. scripts/test.sh runs it over ./...
#
#   "$(scripts/staticcheck.sh)" ./...
set -euo pipefail
cd "$(dirname "$0")/.."

version=v0.8.2 # honnef.co/go/tools; 2026.1.x
bin_dir="${HWCAUDIT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/hwcaudit/tools}"
bin="$bin_dir/staticcheck"
stamp="$bin_dir/staticcheck.version"

if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  mkdir -p "$bin_dir"
  # Its own module and go.sum: -mod=readonly from the caller must not apply.
  GOFLAGS=-buildvcs=false GOBIN="$bin_dir" go install -trimpath "honnef.co/go/tools/cmd/staticcheck@$version" >&2
  echo "$version" >"$stamp"
fi
echo "$bin"
