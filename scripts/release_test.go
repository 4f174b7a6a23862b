package scripts

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestRelease runs scripts/release.sh as the release workflow does, for
// this machine's platform only, and checks what a release attaches: the
// archive's files and its exporter (run: it prints the tag and the
// commit), the chart packaged with the tag's version as version and
// appVersion, SHA256SUMS matching both, and the notes being CHANGELOG.md's
// section for the version. A second build gives the same archive, and a
// tag of another shape or without a CHANGELOG section is refused.
func TestRelease(t *testing.T) {
	helm := tool(t, "HWCAUDIT_TEST_HELM", "scripts/helm.sh")
	if testing.Short() {
		t.Skip("builds the exporter: skipped with -short")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	commit := strings.TrimSpace(string(head))
	platform := runtime.GOOS + "/" + runtime.GOARCH
	release := func(tag, dir string) ([]byte, error) {
		cmd := exec.Command("./release.sh", tag, dir)
		cmd.Env = append(os.Environ(), "PLATFORMS="+platform, "HELM="+helm, "SOURCE_DATE_EPOCH=1796000000")
		return cmd.CombinedOutput()
	}

	dir := filepath.Join(t.TempDir(), "dist")
	if out, err := release("v0.1.0", dir); err != nil {
		t.Fatalf("release.sh v0.1.0: %v\n%s", err, out)
	}
	archive := "hwcaudit_0.1.0_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"SHA256SUMS", "hwcaudit-0.1.0.tgz", archive, "notes.md"}; !slices.Equal(names, want) {
		t.Fatalf("release.sh wrote %v, want %v", names, want)
	}

	// SHA256SUMS lists the archive and the chart with their digests.
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not 'sum  name'", sc.Text())
		}
		sums[name] = sum
	}
	if len(sums) != 2 {
		t.Errorf("SHA256SUMS lists %v, want the archive and the chart", sums)
	}
	for _, name := range []string{archive, "hwcaudit-0.1.0.tgz"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); sums[name] != hex.EncodeToString(sum[:]) {
			t.Errorf("SHA256SUMS gives %s %q; its digest is %x", name, sums[name], sum)
		}
	}

	// The archive: the exporter, stamped, and the license and docs.
	files := untar(t, filepath.Join(dir, archive))
	top := strings.TrimSuffix(archive, ".tar.gz") + "/"
	if want := []string{top, top + "CHANGELOG.md", top + "LICENSE", top + "README.md", top + "exporter"}; !slices.Equal(slices.Sorted(maps.Keys(files)), want) {
		t.Errorf("archive holds %v, want %v", slices.Sorted(maps.Keys(files)), want)
	}
	exe := filepath.Join(t.TempDir(), "exporter")
	if err := os.WriteFile(exe, files[top+"exporter"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "hwcaudit exporter v0.1.0 (commit "+commit[:12]) {
		t.Errorf("exporter version: %v\n%s; want v0.1.0 and commit %s", err, out, commit[:12])
	}

	// The chart carries the version as version and appVersion.
	chart := untar(t, filepath.Join(dir, "hwcaudit-0.1.0.tgz"))["hwcaudit/Chart.yaml"]
	for _, want := range []string{`(?m)^version: 0\.1\.0$`, `(?m)^appVersion: "?0\.1\.0"?$`} {
		if !regexp.MustCompile(want).Match(chart) {
			t.Errorf("packaged Chart.yaml lacks %s:\n%s", want, chart)
		}
	}

	// The notes are the CHANGELOG's section, and nothing of another one.
	changelog, err := os.ReadFile("../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(changelog), "\n## [0.1.0]\n")
	section, _, _ = strings.Cut(section, "\n## ")
	notes, err := os.ReadFile(filepath.Join(dir, "notes.md"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(section) == "" || strings.TrimSpace(string(notes)) != strings.TrimSpace(section) {
		t.Errorf("notes.md:\n%s\nwant CHANGELOG.md's section 0.1.0:\n%s", notes, section)
	}

	// The same commit, the same archive.
	again := filepath.Join(t.TempDir(), "dist")
	if out, err := release("v0.1.0", again); err != nil {
		t.Fatalf("release.sh v0.1.0 again: %v\n%s", err, out)
	}
	a, _ := os.ReadFile(filepath.Join(dir, archive))
	b, _ := os.ReadFile(filepath.Join(again, archive))
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of one commit gave different archives (%d and %d bytes)", len(a), len(b))
	}

	for tag, want := range map[string]string{
		"0.1.0":    "is not vMAJOR.MINOR.PATCH",
		"v0.1":     "is not vMAJOR.MINOR.PATCH",
		"v0.1.0;x": "is not vMAJOR.MINOR.PATCH",
		"v9.9.9":   `CHANGELOG.md has no section "## [9.9.9]"`,
	} {
		out, err := release(tag, filepath.Join(t.TempDir(), "dist"))
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("release.sh %s: %v\n%s\nwant a refusal saying %q", tag, err, out, want)
		}
	}
}

// untar is every entry of the gzipped tar archive at path, by name.
func untar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: %s owned by %d:%d, want 0:0", path, h.Name, h.Uid, h.Gid)
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}
