#!/usr/bin/env bash
# Installs the S3 server the S3 sink and checkpoint tests run against:
# versitygw (POSIX backend), pinned, into a tools cache outside the checkout
# (HWCAUDIT_TOOLS, default ~/.cache/hwcaudit/tools) so that fresh clones on
# the same machine reuse it. The tests start and stop it themselves
# (sinks/s3sink/s3test, told the path by HWCAUDIT_TEST_VERSITYGW), each on a
# free loopback port and a temporary directory; without the binary they
# skip, unless HWCAUDIT_TEST_S3_REQUIRED=1.
#
#   scripts/s3server.sh          install if missing; print the binary's path
#   scripts/s3server.sh run DIR  also run it in the foreground on 127.0.0.1:7070
#                                (keys hwcaudit-test / hwcaudit-test-secret),
#                                for HWCAUDIT_TEST_S3_ENDPOINT=http://127.0.0.1:7070
set -euo pipefail
cd "$(dirname "$0")/.."

version=v1.8.0
bin_dir="${HWCAUDIT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/hwcaudit/tools}"
bin="$bin_dir/versitygw"
stamp="$bin_dir/versitygw.version"

if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  mkdir -p "$bin_dir"
  # Its own module and go.sum: -mod=readonly from the caller must not apply.
  GOFLAGS=-buildvcs=false GOBIN="$bin_dir" go install "github.com/versity/versitygw/cmd/versitygw@$version"
  echo "$version" >"$stamp"
fi

if [ "${1:-}" = run ]; then
  dir="${2:?usage: $0 run DIR}"
  mkdir -p "$dir"
  exec "$bin" --access hwcaudit-test --secret hwcaudit-test-secret --port 127.0.0.1:7070 \
    --health /health --quiet posix "$dir"
fi
echo "$bin"
