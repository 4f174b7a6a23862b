#!/usr/bin/env bash
# Installs actionlint, pinned, into the same tools cache as scripts/helm.sh
# and scripts/staticcheck.sh (HWCAUDIT_TOOLS, default ~/.cache/hwcaudit/tools)
# and prints the binary's path. scripts/test.sh runs it over
# .github/workflows; scripts/actionlint_test.go checks that it refuses a
# broken workflow. actionlint runs shellcheck on `run:` scripts when
# shellcheck is on PATH, and skips that check otherwise.
#
#   "$(scripts/actionlint.sh)" .github/workflows/*.yml
set -euo pipefail
cd "$(dirname "$0")/.."

version=v1.7.12 # github.com/rhysd/actionlint
bin_dir="${HWCAUDIT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/hwcaudit/tools}"
bin="$bin_dir/actionlint"
stamp="$bin_dir/actionlint.version"

if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  mkdir -p "$bin_dir"
  # Its own module and go.sum: -mod=readonly from the caller must not apply.
  GOFLAGS=-buildvcs=false GOBIN="$bin_dir" go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@$version" >&2
  echo "$version" >"$stamp"
fi
echo "$bin"
