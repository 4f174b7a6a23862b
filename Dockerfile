# syntax=docker/dockerfile:1
# The exporter as a static binary on distroless, run as non-root (65532,
# matching the Helm chart's securityContext).
#   docker build --build-arg VERSION=v0.1.0 -t hwcaudit:v0.1.0 .
#   docker run --rm hwcaudit:v0.1.0 demo
#
# Base images are pinned by digest (tag@sha256:…), so that a rebuild uses
# the very bytes that were reviewed, not whatever a tag points at today.
# The digests below could NOT be verified when they were written (the
# machine had no access to the registries): they are the ones public
# repositories pin for the same tags (golang:1.26.8 as pinned in 2026,
# distroless static-debian12:nonroot "as of 2026-08-26"). A digest that
# does not exist fails the build; it never silently falls back to the tag.
# Refresh both, and review the change, with either of:
#   crane digest golang:1.26.8
#   crane digest gcr.io/distroless/static-debian12:nonroot
#   docker buildx imagetools inspect golang:1.26.8 --format '{{json .Manifest.Digest}}'
# or override them for one build:
#   docker build --build-arg GO_IMAGE=golang:1.26.8@sha256:<digest> …
# The Go version must stay at least go.mod's (the image sets
# GOTOOLCHAIN=local).
ARG GO_IMAGE=golang:1.26.8@sha256:6c2a5538f964f1c82f97ad14988bf05de100d922d159d0e398b54c7b0ca0c6c9
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
WORKDIR /src
# No separate `go mod download`: go.mod also lists the chart tests' Helm and
# Kubernetes modules, which the binary does not need.
COPY . .
ARG TARGETOS TARGETARCH VERSION=dev COMMIT=unknown
# -buildvcs=false: the copied .git may be absent or owned by another user.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.buildVersion=${VERSION} -X main.buildCommit=${COMMIT}" -o /exporter ./cmd/exporter

FROM ${RUNTIME_IMAGE}
COPY --from=build /exporter /exporter
# Writable by the nonroot user, for ./out and ./state outside Kubernetes (the
# chart sets its own working directory on a mounted volume).
WORKDIR /home/nonroot
USER 65532:65532
ENTRYPOINT ["/exporter"]
CMD ["run"]
