#!/usr/bin/env bash
# The project's test command: static checks, then every test with the race
# detector. CI (.ci/run) calls exactly this. It needs only Go (and gcc for
# -race); tests that need outside servers start them themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:-} -mod=readonly"
go mod download

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
go vet ./...
go test -race -count=1 -timeout 15m ./...
