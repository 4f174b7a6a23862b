package checkpoint

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/sethvargo/go-envconfig"
)

func TestConfig(t *testing.T) {
	var c Config
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target: &c, Lookuper: envconfig.MapLookuper(nil),
	}); err != nil {
		t.Fatal(err)
	}
	if c.URL != "file://./state" {
		t.Errorf("default URL = %q", c.URL)
	}
	tests := []struct {
		url     string
		wantDir string // "" means an error naming HWCAUDIT_CHECKPOINT_URL
		wantMsg string // extra substring of the error
	}{
		{"file://./state", "state", ""},
		{"file:///var/lib/hwcaudit", "/var/lib/hwcaudit", ""},
		{"file://../state", "../state", ""},
		{"file:state", "state", ""},
		{"file://state", "", "file://./relative"},
		{"file://", "", "no directory"},
		{"./state", "", "no scheme"},
		{"s3:///prefix", "", "no bucket"},
		{"s3://b/p?endpoint=minio:9000", "", "endpoint"},
		{"s3://b/p?pathstyle=true", "", "unknown parameter"},
		{"gs://bucket/prefix", "", "not supported"},
		{"%zz", "", "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			loc, err := Config{URL: tt.url}.location()
			if tt.wantDir == "" {
				if err == nil || !strings.Contains(err.Error(), "HWCAUDIT_CHECKPOINT_URL") || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("location() = %+v, %v; want an error naming HWCAUDIT_CHECKPOINT_URL with %q", loc, err, tt.wantMsg)
				}
				if _, err := Open(Config{URL: tt.url}, "v"); err == nil {
					t.Error("Open succeeded")
				}
				return
			}
			if err != nil || loc.dir != tt.wantDir {
				t.Errorf("location() = %+v, %v; want dir %q", loc, err, tt.wantDir)
			}
		})
	}
}

func TestEscapeKey(t *testing.T) {
	tests := []struct{ key, file string }{
		{"swr/ins-1/pull", "swr~ins-1~pull"},
		{"cts/tracker_a.b", "cts~tracker_a.b"},
		{"a~b", "a%7Eb"},
		{"50%", "50%25"},
		{".hidden", "%2Ehidden"},
		{"..", "%2E."},
		{"/lead", "~lead"},
		{"a b:c\\d", "a%20b%3Ac%5Cd"},
		{"ü", "%C3%BC"},
		{"A/a", "A~a"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := escapeKey(tt.key); got != tt.file {
				t.Errorf("escapeKey(%q) = %q, want %q", tt.key, got, tt.file)
			}
			if got, err := unescapeKey(tt.file); err != nil || got != tt.key {
				t.Errorf("unescapeKey(%q) = %q, %v; want %q", tt.file, got, err, tt.key)
			}
		})
	}
	for _, bad := range []string{"a%7eb", "%2", "%G0", "a%", ".x", "a/b", "%41"} {
		if k, err := unescapeKey(bad); err == nil {
			t.Errorf("unescapeKey(%q) = %q, want an error", bad, k)
		}
	}
}

func FuzzEscapeKey(f *testing.F) {
	for _, s := range []string{"swr/ins-1/pull", "~%.", "", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		name := escapeKey(key)
		if strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
			t.Fatalf("escapeKey(%q) = %q: unsafe file name", key, name)
		}
		back, err := unescapeKey(name)
		if err != nil || back != key {
			t.Fatalf("unescapeKey(escapeKey(%q)) = %q, %v", key, back, err)
		}
	})
}

func newStore(t *testing.T) *FileStore {
	t.Helper()
	s, err := NewFileStore(filepath.Join(t.TempDir(), "state"), "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 987654321, time.FixedZone("CST", 8*3600)) }
	return s
}

func TestSaveLoad(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if c, err := s.Load(ctx, "swr/ins-1/pull"); c != nil || err != nil {
		t.Fatalf("Load of an absent checkpoint = %q, %v; want nil, nil", c, err)
	}
	cursors := []string{`{"offset":200,"marker":"<a&b>"}`, `{"offset":400}`, `"plain string"`, `null`, `[1,2,{"x":"ü"}]`}
	for _, c := range cursors {
		if err := s.Save(ctx, "swr/ins-1/pull", []byte(c)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, "swr/ins-1/pull")
		if err != nil || string(got) != c {
			t.Errorf("Load after Save(%s) = %s, %v", c, got, err)
		}
	}
	// A cursor that is not compact comes back compact.
	if err := s.Save(ctx, "x", []byte("{ \"a\" : 1 }")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "x"); string(got) != `{"a":1}` {
		t.Errorf("Load = %s, want compact", got)
	}
	entries, _ := os.ReadDir(s.Dir())
	var names []string
	for _, e := range entries {
		if e.Name() != saveLockName { // kept, like the run lock
			names = append(names, e.Name())
		}
	}
	if strings.Join(names, " ") != "swr~ins-1~pull.json x.json" {
		t.Errorf("directory holds %v; want just the two checkpoints (no temporaries)", names)
	}
}

func TestFileFormat(t *testing.T) {
	s := newStore(t)
	if err := s.Save(context.Background(), "swr/ins-1/pull", []byte(`{"offset":200,"m":"<x>"}`)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(), "swr~ins-1~pull.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "stream": "swr/ins-1/pull",
  "cursor": {
    "offset": 200,
    "m": "<x>"
  },
  "updated_at": "2024-05-01T04:00:00Z",
  "exporter_version": "1.2.3"
}
`
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
}

func TestSaveInvalid(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		stream string
		cursor string
	}{
		{"invalid JSON", "s", `{"a":`},
		{"empty cursor", "s", ``},
		{"empty stream", "", `{}`},
		{"stream too long", strings.Repeat("%", 70), `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Save(ctx, tt.stream, []byte(tt.cursor)); err == nil {
				t.Error("Save succeeded")
			}
		})
	}
	if cps, _ := s.List(ctx); len(cps) != 0 {
		t.Errorf("List after failed saves = %v", cps)
	}
}

func TestLoadCorrupt(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not JSON", `{"stream": "s", "cursor": {`, "swr~s.json"},
		{"empty file", ``, "swr~s.json"},
		{"no cursor", `{"stream": "swr/s"}`, "missing"},
		{"other stream", `{"stream": "swr/t", "cursor": 1}`, `holds stream "swr/t"`},
		{"wrong type", `{"stream": 5, "cursor": 1}`, "swr~s.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if err := os.WriteFile(filepath.Join(s.Dir(), "swr~s.json"), []byte(tt.content), 0o640); err != nil {
				t.Fatal(err)
			}
			c, err := s.Load(context.Background(), "swr/s")
			if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %q, %v; want ErrCorrupt mentioning %q", c, err, tt.want)
			}
			if _, err := s.List(context.Background()); !errors.Is(err, ErrCorrupt) {
				t.Errorf("List error = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestListDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, k := range []string{"swr/b/push", "swr/a/pull", "cts/x"} {
		if err := s.Save(ctx, k, []byte(`{"k":"`+k+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// Things List must ignore or report.
	os.WriteFile(filepath.Join(s.Dir(), ".tmp-x.json.abc"), []byte("{"), 0o640)
	os.WriteFile(filepath.Join(s.Dir(), "README.txt"), []byte("hi"), 0o640)
	os.Mkdir(filepath.Join(s.Dir(), "sub.json"), 0o750)

	cps, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cp := range cps {
		got = append(got, fmt.Sprintf("%s=%s@%s/%s", cp.Stream, cp.Cursor, cp.UpdatedAt.Format(time.RFC3339), cp.ExporterVersion))
	}
	want := `cts/x={"k":"cts/x"}@2024-05-01T04:00:00Z/1.2.3 swr/a/pull={"k":"swr/a/pull"}@2024-05-01T04:00:00Z/1.2.3 swr/b/push={"k":"swr/b/push"}@2024-05-01T04:00:00Z/1.2.3`
	if strings.Join(got, " ") != want {
		t.Errorf("List = %v\nwant %v", got, want)
	}

	if err := s.Delete(ctx, "swr/a/pull"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Load(ctx, "swr/a/pull"); c != nil || err != nil {
		t.Errorf("Load after Delete = %s, %v", c, err)
	}
	if err := s.Delete(ctx, "swr/a/pull"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Delete = %v, want fs.ErrNotExist", err)
	}

	// A file whose name does not unescape is reported, the rest listed.
	os.WriteFile(filepath.Join(s.Dir(), "bad%zz.json"), []byte(`{"stream":"x","cursor":1}`), 0o640)
	cps, err = s.List(ctx)
	if len(cps) != 2 || err == nil || !strings.Contains(err.Error(), "bad%zz.json") {
		t.Errorf("List = %d checkpoints, %v; want 2 and an error naming bad%%zz.json", len(cps), err)
	}
}

func TestFileConflict(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	n := 0
	conflictContract(t, func() Store {
		// Every store takes another lock scope, as shards and backfills do.
		n++
		s, err := Open(Config{URL: "file://" + dir, LockScope: fmt.Sprint("scope-", n)}, "test")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// conflictContract checks that saves are conditional on what the store
// last saw, for stores that open returns on one shared location.
func conflictContract(t *testing.T, open func() Store) {
	t.Helper()
	ctx := context.Background()
	a, b := open(), open()
	const stream = "swr/ins-1/pull"

	// First write: both see no checkpoint; only one wins.
	a.Load(ctx, stream)
	b.Load(ctx, stream)
	if err := a.Save(ctx, stream, []byte(`{"offset":100}`)); err != nil {
		t.Fatal(err)
	}
	err := b.Save(ctx, stream, []byte(`{"offset":50}`))
	if !errors.Is(err, ErrConflict) || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), stream) {
		t.Fatalf("second first-write = %v, want a permanent ErrConflict naming the stream", err)
	}

	// Interleaved runs: both read offset 100, a moves on, b's older view
	// must not move the cursor backwards.
	b.Load(ctx, stream)
	if err := a.Save(ctx, stream, []byte(`{"offset":300}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, stream, []byte(`{"offset":400}`)); err != nil {
		t.Fatalf("a's own consecutive Saves must not conflict: %v", err)
	}
	err = b.Save(ctx, stream, []byte(`{"offset":200}`))
	if !errors.Is(err, ErrConflict) || !pipeline.IsPermanent(err) {
		t.Fatalf("stale Save = %v, want ErrConflict", err)
	}
	if got, _ := open().Load(ctx, stream); string(got) != `{"offset":400}` {
		t.Errorf("cursor after the conflict = %s, want {\"offset\":400}", got)
	}
	// And a's next Save fails after b re-read and moved on.
	b.Load(ctx, stream)
	if err := b.Save(ctx, stream, []byte(`{"offset":500}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, stream, []byte(`{"offset":450}`)); !errors.Is(err, ErrConflict) {
		t.Errorf("a's Save after b's = %v, want ErrConflict", err)
	}

	// An operator's reset while a run is under way: the run must not
	// write its old position back.
	a.Load(ctx, stream)
	if err := b.Delete(ctx, stream); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, stream, []byte(`{"offset":600}`)); !errors.Is(err, ErrConflict) {
		t.Errorf("Save after another store's Delete = %v, want ErrConflict", err)
	}
	if got, _ := open().Load(ctx, stream); got != nil {
		t.Errorf("cursor after the reset and the refused Save = %s, want none", got)
	}
	// A store that never read the stream saves on what is there now.
	if err := open().Save(ctx, stream, []byte(`{"offset":700}`)); err != nil {
		t.Errorf("first Save of a fresh store: %v", err)
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	unlock, err := s.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A second store on the same directory stands in for a second run.
	other, _ := NewFileStore(s.Dir(), "x")
	_, err = other.Lock(ctx)
	wantMsg := fmt.Sprintf("another run holds the lock on %s (pid %d", s.Dir(), os.Getpid())
	if err == nil || !strings.Contains(err.Error(), wantMsg) || !strings.Contains(err.Error(), "since 2024-05-01T04:00:00Z") {
		t.Fatalf("second Lock = %v, want %q… since …", err, wantMsg)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock = %v", err)
	}
	unlock2, err := other.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}

func TestLockRemovesStaleTemporaries(t *testing.T) {
	s := newStore(t)
	stale := filepath.Join(s.Dir(), ".tmp-x.json.0123")
	os.WriteFile(stale, []byte("{"), 0o640)
	unlock, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary still there: %v", err)
	}

}

const lockHelperEnv = "HWCAUDIT_CHECKPOINT_LOCK_HELPER_DIR"

// TestLockHelper is not a test: TestLockReleasedOnDeath runs the test binary
// again with lockHelperEnv set, and this takes the lock and waits to be
// killed.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestLockReleasedOnDeath")
	}
	s, err := NewFileStore(dir, "helper")
	if err == nil {
		_, err = s.Lock(context.Background())
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	select {}
}

func TestLockReleasedOnDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	s, _ := NewFileStore(dir, "x")
	_, err = s.Lock(context.Background())
	wantMsg := fmt.Sprintf("another run holds the lock on %s (pid %d", dir, cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), wantMsg) {
		t.Fatalf("Lock while the helper holds it = %v, want %q…", err, wantMsg)
	}

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	unlock, err := s.Lock(context.Background())
	if err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	unlock()
}

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	st, err := Open(Config{URL: "file://" + dir}, "v9")
	if err != nil {
		t.Fatal(err)
	}
	if fsStore, ok := st.(*FileStore); !ok || fsStore.Dir() != dir {
		t.Errorf("Open = %#v, want a FileStore on %s", st, dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("directory not created: %v", err)
	}
}

func TestLockScopesDoNotExcludeEachOther(t *testing.T) {
	dir := t.TempDir()
	open := func(scope string) Store {
		s, err := Open(Config{URL: "file://" + dir, LockScope: scope}, "test")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	unlockA, err := open("shard-0-of-2").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	unlockB, err := open("shard-1-of-2").Lock(ctx)
	if err != nil {
		t.Fatalf("another scope's lock: %v", err)
	}
	defer unlockB()
	unlockRun, err := open("").Lock(ctx)
	if err != nil {
		t.Fatalf("the default lock beside scoped ones: %v", err)
	}
	defer unlockRun()
	if _, err := open("shard-0-of-2").Lock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("the same scope twice: %v, want ErrLocked", err)
	}
	// Lock files are not checkpoints.
	if cps, err := open("").List(ctx); err != nil || len(cps) != 0 {
		t.Fatalf("List = %v, %v; want nothing", cps, err)
	}
}
