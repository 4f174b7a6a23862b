#!/usr/bin/env bash
# The project's test command: static checks, then every test with the race
# detector. CI (.ci/run) calls exactly this. It needs only Go (and gcc for
# -race): it installs the outside programs the tests need (an S3 server,
# Helm, staticcheck, actionlint and crane, pinned, cached per machine), and
# the tests start what they use on loopback (the simulator, a Kafka-protocol
# broker, the S3 server, an image registry).
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
# staticcheck, pinned and installed once per machine like helm.
"$(scripts/staticcheck.sh)" ./...
# actionlint over the GitHub workflows, pinned and installed the same way;
# scripts/actionlint_test.go checks that it refuses a broken workflow.
HWCAUDIT_TEST_ACTIONLINT=$(scripts/actionlint.sh)
export HWCAUDIT_TEST_ACTIONLINT HWCAUDIT_TEST_ACTIONLINT_REQUIRED=1
"$HWCAUDIT_TEST_ACTIONLINT" .github/workflows/*.yml

# Every fuzz target, briefly (FUZZTIME, default 2s each): inputs beyond the
# committed corpora must not break a parser of outside data.
scripts/fuzz.sh

# The S3 sink and checkpoint tests run against a real S3 server (versitygw),
# installed once per machine and started by the tests themselves.
HWCAUDIT_TEST_VERSITYGW=$(scripts/s3server.sh)
export HWCAUDIT_TEST_VERSITYGW HWCAUDIT_TEST_S3_REQUIRED=1

# The chart tests run the real helm (lint --strict, template), pinned and
# installed once per machine like versitygw.
HWCAUDIT_TEST_HELM=$(scripts/helm.sh)
export HWCAUDIT_TEST_HELM HWCAUDIT_TEST_HELM_REQUIRED=1

# scripts/image's TestPushIndex pushes the multi-arch image with the crane
# the release workflow uses, to a registry on loopback.
HWCAUDIT_TEST_CRANE=$(scripts/crane.sh)
export HWCAUDIT_TEST_CRANE HWCAUDIT_TEST_CRANE_REQUIRED=1

go test -race -count=1 -timeout 15m ./...

# The README walkthrough and NOTES.txt tests render the chart with the Helm
# SDK: they build apart (tag walkthrough), so that the fuzz stage's
# instrumented build of cmd/exporter leaves Helm and Kubernetes out.
go vet -tags walkthrough ./cmd/exporter
go test -race -count=1 -timeout 10m -tags walkthrough -run 'TestReadmeWalkthrough|TestWalkthroughCatchesDrift|TestSplitShell|TestNotesPodIdentity' ./cmd/exporter
