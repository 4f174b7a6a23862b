package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestImage builds the image for this machine's platform as `go run
// ./scripts/image` does, writes it as an OCI layout, reads it back, checks
// its user, entrypoint, labels and layer, checks that a rebuild has the
// same digest, and runs the binary extracted from it: `version` and a
// whole `demo`.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the exporter: skipped with -short")
	}
	ca, err := os.ReadFile(caSource)
	if err != nil {
		t.Skipf("no CA roots at %s on this machine: %v", caSource, err)
	}
	o := Options{Version: "v0.0.0-test", Commit: "0123456789abcdef", Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), CACerts: ca}
	bin, err := buildBinary("linux", "amd64", o)
	if err != nil {
		t.Fatal(err)
	}
	build := func() v1.Image {
		img, err := Image(bin, v1.Platform{OS: "linux", Architecture: "amd64"}, o)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	img := build()
	dir := t.TempDir()
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	if _, err := layout.Write(dir, idx); err != nil {
		t.Fatal(err)
	}

	// Read back from the layout, as a registry client would.
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Platform == nil || m.Manifests[0].Platform.Architecture != "amd64" {
		t.Fatalf("index %+v", m.Manifests)
	}
	back, err := ii.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/exporter"}) || !slices.Equal(c.Cmd, []string{"run"}) || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("config user %q entrypoint %q cmd %q platform %s/%s", c.User, c.Entrypoint, c.Cmd, cf.OS, cf.Architecture)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  "v0.0.0-test",
		"org.opencontainers.image.revision": "0123456789abcdef",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.source":   repoURL,
		"org.opencontainers.image.created":  "2026-12-01T00:00:00Z",
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	layers, err := back.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers, %v; want one", len(layers), err)
	}

	// The same inputs, the same digest.
	d1, _ := img.Digest()
	d2, _ := build().Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same inputs: %s and %s", d1, d2)
	}

	// The layer's files: the binary, the CA roots, the user.
	files := map[string]*tar.Header{}
	var exe []byte
	tr := tar.NewReader(mutate.Extract(back))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
		if h.Name == binPath {
			if exe, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if h := files[binPath]; h == nil || h.Mode&0o111 == 0 {
		t.Fatalf("no executable /%s in the layer: %v", binPath, files)
	}
	if files[caPath] == nil || files["etc/passwd"] == nil || files[workDir] == nil || files[workDir].Uid != uid {
		t.Errorf("layer lacks the CA roots, the user or the working directory: %v", slices.Sorted(func(yield func(string) bool) {
			for k := range files {
				if !yield(k) {
					return
				}
			}
		}))
	}

	// Run the binary taken out of the image.
	path := filepath.Join(t.TempDir(), "exporter")
	if err := os.WriteFile(path, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "version").CombinedOutput()
	if err != nil || !regexp.MustCompile(`^hwcaudit exporter v0\.0\.0-test \(commit 0123456789ab, go`).Match(out) {
		t.Errorf("exporter version: %v\n%s", err, out)
	}
	demo := exec.Command(path, "demo")
	demo.Dir = t.TempDir()
	demo.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + demo.Dir}
	out, err = demo.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10 streams:") {
		t.Errorf("exporter demo: %v\n%s", err, out)
	}
}
