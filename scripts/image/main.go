// Command image builds the exporter's OCI image without a Docker daemon and
// without pulling a base image: one layer holding the static binary, the
// CA roots of the build machine, and a non-root user; the same inputs give
// the same digest. It writes an OCI image layout (a directory) holding one
// image per platform under one index, which `crane push --index DIR REF`
// (scripts/crane.sh installs crane) sends to a registry such as SWR.
//
//	go run ./scripts/image -o out/image -version v0.2.0 -platforms linux/amd64,linux/arm64
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: distroless's nonroot, which the chart's securityContext
// names (runAsUser 65532).
const (
	uid      = 65532
	caPath   = "etc/ssl/certs/ca-certificates.crt"
	binPath  = "exporter"
	workDir  = "var/lib/hwcaudit"
	repoURL  = "https://github.com/hwcaudit/hwcaudit"
	caSource = "/etc/ssl/certs/ca-certificates.crt"
)

// Options describe one image build.
type Options struct {
	// Version and Commit are stamped into the binary and the labels.
	Version, Commit string
	// Created is the image's creation time, from SOURCE_DATE_EPOCH (or
	// the commit's time) so that a rebuild gives the same digest.
	Created time.Time
	// CACerts is the PEM bundle the image trusts.
	CACerts []byte
}

func main() {
	out := flag.String("o", "out/image", "directory of the OCI image layout to write (replaced)")
	version := flag.String("version", "dev", "version stamped into the binary and the labels")
	platforms := flag.String("platforms", "linux/amd64,linux/arm64", "comma list of os/arch to build")
	flag.Parse()
	o, err := options(*version)
	if err == nil {
		err = run(*out, o, strings.Split(*platforms, ","))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// options are the build's inputs taken from the checkout and the machine:
// the commit, its time (or SOURCE_DATE_EPOCH) and the CA roots.
func options(version string) (Options, error) {
	created, err := sourceDate()
	if err != nil {
		return Options{}, err
	}
	ca, err := os.ReadFile(caSource)
	if err != nil {
		return Options{}, fmt.Errorf("CA roots: %w (install ca-certificates)", err)
	}
	return Options{Version: version, Commit: strings.TrimSpace(gitOutput("rev-parse", "HEAD")), Created: created, CACerts: ca}, nil
}

// run writes the OCI layout out: one index whose manifests are the images
// for platforms, each tagged with its platform, so that a registry client
// pulls the one for its machine. `crane push --index out REF` pushes the
// index as written (the same digest).
func run(out string, o Options, platforms []string) error {
	idx := v1.ImageIndex(empty.Index)
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	for _, p := range platforms {
		osName, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok {
			return fmt.Errorf("-platforms: %q is not os/arch", p)
		}
		bin, err := buildBinary(osName, arch, o)
		if err != nil {
			return err
		}
		img, err := Image(bin, v1.Platform{OS: osName, Architecture: arch}, o)
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}}})
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if _, err := layout.Write(out, idx); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: index %s (%s)\npush it with: crane push --index %s swr.REGION.myhuaweicloud.com/ORG/hwcaudit:%s\n", out, d, strings.Join(platforms, ", "), out, strings.TrimPrefix(o.Version, "v"))
	return nil
}

// sourceDate is SOURCE_DATE_EPOCH, or the time of the commit built.
func sourceDate() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		v = strings.TrimSpace(gitOutput("log", "-1", "--format=%ct"))
	}
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	s, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
	}
	return time.Unix(s, 0).UTC(), nil
}

func gitOutput(args ...string) string {
	b, err := exec.Command("git", args...).Output()
	if err != nil {
		return ""
	}
	return string(b)
}

// buildBinary builds a static exporter for os/arch.
func buildBinary(osName, arch string, o Options) ([]byte, error) {
	dir, err := os.MkdirTemp("", "hwcaudit-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "exporter")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.buildVersion="+o.Version+" -X main.buildCommit="+o.Commit,
		"-o", bin, "./cmd/exporter")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+osName, "GOARCH="+arch)
	if cmd.Dir, err = moduleRoot(); err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build for %s/%s: %w", osName, arch, err)
	}
	return os.ReadFile(bin)
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Image is the exporter's image for one platform around bin: one layer,
// a non-root user, the exporter as entrypoint with `run` by default, and
// the org.opencontainers.image labels. It depends on its inputs only.
func Image(bin []byte, p v1.Platform, o Options) (v1.Image, error) {
	if len(bin) == 0 || len(o.CACerts) == 0 {
		return nil, errors.New("image: a binary and CA roots are required")
	}
	layerTar, err := rootfs(bin, o)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	cf.Created = v1.Time{Time: o.Created}
	cf.Author = "hwcaudit"
	cf.Config.User = fmt.Sprintf("%d:%d", uid, uid)
	cf.Config.Entrypoint = []string{"/" + binPath}
	cf.Config.Cmd = []string{"run"}
	cf.Config.WorkingDir = "/" + workDir
	cf.Config.Env = []string{"SSL_CERT_FILE=/" + caPath, "PATH=/"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "hwcaudit",
		"org.opencontainers.image.description": "Exports Huawei Cloud audit logs to SIEMs as Elastic Common Schema",
		"org.opencontainers.image.source":      repoURL,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Commit,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
	cf.History = []v1.History{{Created: v1.Time{Time: o.Created}, CreatedBy: "scripts/image", Comment: "exporter " + o.Version}}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer's tar: every entry with fixed times and owners, in
// a fixed order.
func rootfs(bin []byte, o Options) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Format = o.Created, tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	dir := func(name string, mode int64, owner int) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: owner, Gid: owner}
	}
	file := func(name string, mode int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid)
	for _, e := range []struct {
		h    *tar.Header
		data []byte
	}{
		{file(binPath, 0o755), bin},
		{dir("etc", 0o755, 0), nil},
		{file("etc/group", 0o644), []byte(group)},
		{file("etc/passwd", 0o644), []byte(passwd)},
		{dir("etc/ssl", 0o755, 0), nil},
		{dir("etc/ssl/certs", 0o755, 0), nil},
		{file(caPath, 0o644), o.CACerts},
		{dir("home", 0o755, 0), nil},
		{dir("home/nonroot", 0o700, uid), nil},
		{dir("tmp", 0o1777, 0), nil},
		{dir("var", 0o755, 0), nil},
		{dir("var/lib", 0o755, 0), nil},
		{dir(workDir, 0o750, uid), nil},
	} {
		if err := add(e.h, e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
