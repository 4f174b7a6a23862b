# syntax=docker/dockerfile:1
# The exporter as a static binary on distroless, run as non-root (65532,
# matching the Helm chart's securityContext).
#   docker build --build-arg VERSION=v0.1.0 -t hwcaudit:v0.1.0 .
#   docker run --rm hwcaudit:v0.1.0 demo
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# No separate `go mod download`: go.mod also lists the chart tests' Helm and
# Kubernetes modules, which the binary does not need.
COPY . .
ARG TARGETOS TARGETARCH VERSION=dev
# -buildvcs=false: the copied .git may be absent or owned by another user.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /exporter ./cmd/exporter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /exporter /exporter
# Writable by the nonroot user, for ./out and ./state outside Kubernetes (the
# chart sets its own working directory on a mounted volume).
WORKDIR /home/nonroot
USER 65532:65532
ENTRYPOINT ["/exporter"]
CMD ["run"]
