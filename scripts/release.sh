#!/usr/bin/env bash
# Builds what a release attaches, for the tag TAG (vMAJOR.MINOR.PATCH or
# vMAJOR.MINOR.PATCH-PRERELEASE), into DIR (replaced):
#
#   hwcaudit_VERSION_OS_ARCH.tar.gz  static exporter (CGO_ENABLED=0,
#                                    -trimpath, version and commit stamped)
#                                    with LICENSE, README.md, CHANGELOG.md
#   hwcaudit-VERSION.tgz             the chart, version and appVersion VERSION
#   SHA256SUMS                       the checksums of the files above
#   notes.md                         CHANGELOG.md's section for VERSION
#
# VERSION is TAG without its "v": the chart's appVersion, which is also the
# image tag the chart runs by default. It refuses a tag of another shape and
# a tag CHANGELOG.md has no section for. The same commit gives the same
# binary archives (times from SOURCE_DATE_EPOCH or the commit's time).
#
#   scripts/release.sh v0.2.0 dist
#   PLATFORMS="linux/amd64" HELM=/path/to/helm scripts/release.sh v0.2.0 dist
#
# The image is built apart: go run ./scripts/image -version TAG.
# .github/workflows/release.yml runs both and publishes; scripts/release_test.go
# runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:?usage: scripts/release.sh TAG DIR}"
dir="${2:?usage: scripts/release.sh TAG DIR}"
platforms="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}"

if ! [[ "$tag" =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: tag $tag is not vMAJOR.MINOR.PATCH[-PRERELEASE]" >&2
  exit 1
fi
version="${tag#v}"

# The notes: the lines under "## [VERSION]" up to the next "## ".
notes=$(awk -v want="## [$version]" '
  index($0, "## ") == 1 { on = (index($0, want) == 1) ; next }
  on { print }
' CHANGELOG.md)
if [ -z "$(printf '%s' "$notes" | tr -d '[:space:]')" ]; then
  echo "release: CHANGELOG.md has no section \"## [$version]\"; move the Unreleased entries under it" >&2
  exit 1
fi

commit=$(git rev-parse HEAD)
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
helm="${HELM:-$(scripts/helm.sh)}"

rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
printf '%s\n' "$notes" | sed -e '/./,$!d' >"$dir/notes.md"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for p in $platforms; do
  os="${p%/*}" arch="${p#*/}"
  name="hwcaudit_${version}_${os}_${arch}"
  mkdir -p "$stage/$name"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" GOFLAGS="${GOFLAGS:-} -mod=readonly -buildvcs=false" \
    go build -trimpath -ldflags "-s -w -X main.buildVersion=$tag -X main.buildCommit=$commit" \
    -o "$stage/$name/exporter" ./cmd/exporter
  cp LICENSE README.md CHANGELOG.md "$stage/$name/"
  # Fixed order, owners and times, and gzip without a name or time: the same
  # commit gives the same bytes.
  tar -C "$stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -cf - "$name" | gzip -n -9 >"$dir/$name.tar.gz"
done

"$helm" package charts/hwcaudit --version "$version" --app-version "$version" -d "$dir" >&2

(cd "$dir" && sha256sum -- *.tar.gz *.tgz >SHA256SUMS)
ls -1 "$dir"
