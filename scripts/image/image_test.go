package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
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
	// Every demo stream done: the totals row, no failed stream.
	if err != nil || !regexp.MustCompile(`(?m)^\d+ streams +(\d+) +(\d+) +0 `).Match(out) || !strings.Contains(string(out), `"failed":0,`) {
		t.Errorf("exporter demo: %v\n%s", err, out)
	}
}

// TestPushIndex builds the image for linux/amd64 and linux/arm64 as the
// release workflow does (run; only this machine's architecture unless
// HWCAUDIT_TEST_IMAGE_CROSS=1, since a cold cross-build of the exporter
// costs minutes that .ci/run cannot spare; the release workflow's test job
// sets it), pushes the layout with the pinned crane as
// the workflow does (crane push --index) to a registry on loopback, and
// reads it back by tag: one index of both platforms with the digest crane
// printed and the layout holds, each platform's config naming its
// architecture, and each platform's exporter built for it (ELF machine).
func TestPushIndex(t *testing.T) {
	crane := os.Getenv("HWCAUDIT_TEST_CRANE")
	if crane == "" {
		if os.Getenv("HWCAUDIT_TEST_CRANE_REQUIRED") == "1" {
			t.Fatal("HWCAUDIT_TEST_CRANE_REQUIRED=1 but HWCAUDIT_TEST_CRANE is unset; run HWCAUDIT_TEST_CRANE=$(scripts/crane.sh)")
		}
		t.Skip("HWCAUDIT_TEST_CRANE unset: set it to the path printed by scripts/crane.sh")
	}
	if testing.Short() {
		t.Skip("builds the exporter twice: skipped with -short")
	}
	ca, err := os.ReadFile(caSource)
	if err != nil {
		t.Skipf("no CA roots at %s on this machine: %v", caSource, err)
	}
	o := Options{Version: "v0.0.0-test", Commit: "0123456789abcdef", Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), CACerts: ca}
	type archCase struct {
		arch    string
		machine elf.Machine
	}
	archs := []archCase{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}}
	if os.Getenv("HWCAUDIT_TEST_IMAGE_CROSS") != "1" {
		archs = slices.DeleteFunc(archs, func(a archCase) bool { return a.arch != runtime.GOARCH })
		if len(archs) == 0 {
			t.Skipf("the image is built for amd64 and arm64, not %s (HWCAUDIT_TEST_IMAGE_CROSS=1 builds both)", runtime.GOARCH)
		}
	}
	var platforms []string
	for _, a := range archs {
		platforms = append(platforms, "linux/"+a.arch)
	}
	out := filepath.Join(t.TempDir(), "image")
	if err := run(out, o, platforms); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	written, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	want, err := written.Digest()
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/hwcaudit/hwcaudit"
	ref := repo + ":0.0.0-test"
	craneOut := func(args ...string) []byte {
		t.Helper()
		var stderr bytes.Buffer
		cmd := exec.Command(crane, args...)
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return b
	}
	if got := strings.TrimSpace(string(craneOut("push", "--index", out, ref))); got != repo+"@"+want.String() {
		t.Errorf("crane push printed %q, want %s@%s", got, repo, want)
	}

	raw := craneOut("manifest", ref)
	if got, _, err := v1.SHA256(bytes.NewReader(raw)); err != nil || got != want {
		t.Errorf("the tag's manifest has digest %s (%v), the layout's index %s", got, err, want)
	}
	m, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the tag is not an index: %v\n%s", err, raw)
	}
	if m.MediaType != types.OCIImageIndex || len(m.Manifests) != len(archs) {
		t.Fatalf("index %s with %d manifests, want an OCI index of %d", m.MediaType, len(m.Manifests), len(archs))
	}
	for _, tc := range archs {
		platform := "linux/" + tc.arch
		if !slices.ContainsFunc(m.Manifests, func(d v1.Descriptor) bool {
			return d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == tc.arch
		}) {
			t.Errorf("the index has no manifest for %s: %+v", platform, m.Manifests)
		}
		cf, err := v1.ParseConfigFile(bytes.NewReader(craneOut("config", "--platform", platform, ref)))
		if err != nil || cf.OS != "linux" || cf.Architecture != tc.arch || cf.Config.User != "65532:65532" {
			t.Errorf("%s config: %v %+v", platform, err, cf)
			continue
		}
		exe := fileFromTar(t, craneOut("export", "--platform", platform, ref, "-"), binPath)
		f, err := elf.NewFile(bytes.NewReader(exe))
		if err != nil {
			t.Fatalf("%s: /%s is not ELF: %v", platform, binPath, err)
		}
		if f.Machine != tc.machine {
			t.Errorf("%s: /%s is built for %s, want %s", platform, binPath, f.Machine, tc.machine)
		}
	}
}

// fileFromTar is the content of name in the tar archive b.
func fileFromTar(t *testing.T, b []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s in the exported filesystem: %v", name, err)
		}
		if strings.TrimPrefix(h.Name, "/") == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}
