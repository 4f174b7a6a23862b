package filesink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/sinktest"
)

func TestConformance(t *testing.T) {
	for _, maxBytes := range []int64{64 << 20, 4 << 10} {
		t.Run(fmt.Sprintf("MaxBytes=%d", maxBytes), func(t *testing.T) {
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T) (pipeline.Sink, sinktest.ReadAll) {
					dir := t.TempDir()
					s, err := New(Config{Dir: dir, MaxBytes: maxBytes})
					if err != nil {
						t.Fatal(err)
					}
					return s, func(t *testing.T) [][]byte {
						if left := inProgressFiles(t, dir); len(left) > 0 {
							t.Errorf("in-progress files left after Close: %v", left)
						}
						return readVisible(t, dir)
					}
				},
				Ordered: true,
			})
		})
	}
}

// readVisible returns every line of every published file under dir, files in
// name order, failing on a file that does not end in a newline.
func readVisible(t *testing.T, dir string) [][]byte {
	t.Helper()
	var lines [][]byte
	for _, p := range visibleFiles(t, dir) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("%s: published file is empty or ends in a partial line: %.80q", p, data[max(0, len(data)-80):])
		}
		for ln := range bytes.Lines(data) {
			lines = append(lines, bytes.TrimSuffix(ln, []byte("\n")))
		}
	}
	return lines
}

func visibleFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".ndjson") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func inProgressFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), inProgressExt) {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func events(dataset string, from, to int) *pipeline.Batch {
	b := &pipeline.Batch{Stream: "test/" + dataset}
	for i := from; i < to; i++ {
		id := fmt.Sprintf("%s-%05d", dataset, i)
		b.Events = append(b.Events, pipeline.Event{
			ID:      id,
			Dataset: dataset,
			Doc:     fmt.Appendf(nil, `{"event":{"id":%q},"n":%d}`, id, i),
		})
	}
	return b
}

func TestConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		var c Config
		if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
			Target: &c, Lookuper: envconfig.MapLookuper(nil),
		}); err != nil {
			t.Fatal(err)
		}
		want := Config{Dir: "./out", MaxBytes: 64 << 20, MaxAge: time.Hour}
		if c != want {
			t.Errorf("defaults = %+v, want %+v", c, want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("defaults do not validate: %v", err)
		}
	})
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring naming the variable; "" for valid
	}{
		{"valid", Config{Dir: "x", MaxBytes: 1}, ""},
		{"empty dir", Config{Dir: " ", MaxBytes: 1}, "HWCAUDIT_FILE_DIR"},
		{"zero size", Config{Dir: "x"}, "HWCAUDIT_FILE_MAX_BYTES"},
		{"negative size", Config{Dir: "x", MaxBytes: -1}, "HWCAUDIT_FILE_MAX_BYTES"},
		{"negative age", Config{Dir: "x", MaxBytes: 1, MaxAge: -time.Second}, "HWCAUDIT_FILE_MAX_AGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestDatasetDir(t *testing.T) {
	tests := []struct{ in, want string }{
		{"huaweicloud.swr_audit", "huaweicloud.swr_audit"},
		{"", "unknown"},
		{"..", "_."},
		{".hidden", "_hidden"},
		{"a/b", "a_b"},
		{`..\..\etc`, "_._.._etc"},
		{"ünï", "__n__"},
	}
	for _, tt := range tests {
		if got := datasetDir(tt.in); got != tt.want {
			t.Errorf("datasetDir(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEmptyBatchCreatesNoFile(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Dir: dir, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []*pipeline.Batch{nil, {Stream: "x"}} {
		if err := s.Write(context.Background(), b); err != nil {
			t.Errorf("Write(%v) = %v", b, err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("dir holds %d entries after empty writes, want none", len(entries))
	}
}

func TestRotationBySize(t *testing.T) {
	line := len(`{"event":{"id":"ds-00000"},"n":0}` + "\n") // 34 bytes, all lines alike up to n=9
	tests := []struct {
		name      string
		maxBytes  int64
		batches   [][2]int // [from, to) per Write
		wantFiles []int    // lines per published file, in name order
	}{
		{"one file", 1 << 20, [][2]int{{0, 3}, {3, 6}}, []int{6}},
		{"exact fit rotates at size", int64(3 * line), [][2]int{{0, 3}, {3, 6}}, []int{3, 3}},
		{"batch split across files", int64(4 * line), [][2]int{{0, 10}}, []int{4, 4, 2}},
		{"a line bigger than max gets its own file", 10, [][2]int{{0, 3}}, []int{1, 1, 1}},
		{"a batch fills the file and continues in the next", int64(5 * line), [][2]int{{0, 3}, {3, 6}}, []int{5, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := New(Config{Dir: dir, MaxBytes: tt.maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.batches {
				if err := s.Write(context.Background(), events("ds", r[0], r[1])); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got []int
			n := 0
			for _, p := range visibleFiles(t, dir) {
				data, _ := os.ReadFile(p)
				c := bytes.Count(data, []byte("\n"))
				got = append(got, c)
				if tt.maxBytes >= int64(line) && int64(len(data)) > tt.maxBytes {
					t.Errorf("%s: %d bytes > MaxBytes %d", p, len(data), tt.maxBytes)
				}
				for ln := range bytes.Lines(data) {
					want := fmt.Sprintf(`{"event":{"id":"ds-%05d"},"n":%d}`+"\n", n, n)
					if string(ln) != want {
						t.Errorf("line %d = %q, want %q", n, ln, want)
					}
					n++
				}
			}
			if !slices.Equal(got, tt.wantFiles) {
				t.Errorf("lines per file = %v, want %v", got, tt.wantFiles)
			}
			if files, lines := len(visibleFiles(t, dir)), len(readVisible(t, dir)); files != len(tt.wantFiles) || lines != n {
				t.Errorf("%d files, %d lines published, want %d files, %d lines", files, lines, len(tt.wantFiles), n)
			}
		})
	}
}

func TestRotationByAge(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Dir: dir, MaxBytes: 1 << 20, MaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	write := func(from, to int) {
		t.Helper()
		l, err := s.log("ds")
		if err != nil {
			t.Fatal(err)
		}
		l.now = func() time.Time { return now }
		if err := s.Write(context.Background(), events("ds", from, to)); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 2)
	now = now.Add(30 * time.Second)
	write(2, 4)
	if n := len(visibleFiles(t, dir)); n != 0 {
		t.Fatalf("%d files published before MaxAge, want 0", n)
	}
	now = now.Add(31 * time.Second)
	write(4, 5)
	files := visibleFiles(t, dir)
	if len(files) != 1 || !strings.Contains(filepath.Base(files[0]), "ds-20240501T120000Z-") {
		t.Fatalf("after MaxAge: published %v, want one file started at 12:00:00", files)
	}
	s.Close(context.Background())
	if n := len(readVisible(t, dir)); n != 5 {
		t.Errorf("read back %d lines, want 5", n)
	}
}

func TestMultiLineAndEmptyDocs(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Dir: dir, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b := &pipeline.Batch{Stream: "s", Events: []pipeline.Event{
		{ID: "a", Dataset: "ds", Doc: []byte("{\n  \"a\": \"x y\"\n}")},
		{ID: "b", Dataset: "ds", Doc: []byte("{\"b\":\n")},
		{ID: "c", Dataset: "ds", Doc: []byte("  ")},
		{ID: "d", Dataset: "ds", Doc: []byte(`{"d":1}`)},
	}}
	err = s.Write(context.Background(), b)
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) || len(rej.Reasons) != 2 || rej.Reasons[1] == "" || rej.Reasons[2] == "" {
		t.Fatalf("Write = %v, want RejectedError for events 1 and 2", err)
	}
	s.Close(context.Background())
	got := readVisible(t, dir)
	want := [][]byte{[]byte(`{"a":"x y"}`), []byte(`{"d":1}`)}
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("stored %q, want %q", got, want)
	}
}

func TestWriteAfterClose(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir(), MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), events("ds", 0, 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	for _, ds := range []string{"ds", "other"} {
		err := s.Write(context.Background(), events(ds, 1, 2))
		if err == nil || !pipeline.IsPermanent(err) {
			t.Errorf("Write(%s) after Close = %v, want a permanent error", ds, err)
		}
	}
}

// TestRecover simulates what a crashed run leaves behind: in-progress files
// with and without torn tails, from another run.
func TestRecover(t *testing.T) {
	const foreign = "deadbeef"
	tests := []struct {
		name    string
		content string
		want    string // published content; "" means the file is removed
	}{
		{"torn tail", "{\"a\":1}\n{\"b\":2}\n{\"c\":", "{\"a\":1}\n{\"b\":2}\n"},
		{"complete", "{\"a\":1}\n", "{\"a\":1}\n"},
		{"only a partial line", "{\"a\":", ""},
		{"empty", "", ""},
		{"complete line without newline is not acknowledged", "{\"a\":1}\n{\"b\":2}", "{\"a\":1}\n"},
		{"tail longer than the read block", "{\"a\":1}\n" + strings.Repeat("x", 200<<10), "{\"a\":1}\n"},
		{"long lines", strings.Repeat("y", 100<<10) + "\n" + strings.Repeat("z", 70<<10), strings.Repeat("y", 100<<10) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dsDir := filepath.Join(root, "ds")
			os.MkdirAll(dsDir, 0o750)
			visible := "ds-20240501T120000Z-" + foreign + "-000007.ndjson"
			if err := os.WriteFile(filepath.Join(dsDir, "."+visible+inProgressExt), []byte(tt.content), 0o640); err != nil {
				t.Fatal(err)
			}
			// A file of this very process must be left alone: it may be in use.
			own := ".ds-20240501T120000Z-" + runID + "-999999.ndjson" + inProgressExt
			os.WriteFile(filepath.Join(dsDir, own), []byte("{\"own\":"), 0o640)

			s, err := New(Config{Dir: root, MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())

			data, err := os.ReadFile(filepath.Join(dsDir, visible))
			switch {
			case tt.want == "" && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("file published (err %v), want it removed", err)
			case tt.want != "" && err != nil:
				t.Errorf("not published: %v", err)
			case tt.want != "" && string(data) != tt.want:
				t.Errorf("published %d bytes %.60q…, want %d bytes", len(data), data, len(tt.want))
			}
			left := inProgressFiles(t, root)
			if len(left) != 1 || filepath.Base(left[0]) != own {
				t.Errorf("in-progress files after recovery = %v, want only this process's %s", left, own)
			}
		})
	}
}

func TestRecoverThenAppend(t *testing.T) {
	root := t.TempDir()
	s1, err := New(Config{Dir: root, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Write(context.Background(), events("ds", 0, 3)); err != nil {
		t.Fatal(err)
	}
	// "Crash": never Close s1 (but let go of its files, as a dead process
	// does); make its file look foreign and add a torn tail.
	crash(s1)
	left := inProgressFiles(t, root)
	if len(left) != 1 {
		t.Fatalf("in-progress files = %v, want 1", left)
	}
	foreign := strings.Replace(left[0], runID, "0badc0de", 1)
	if err := os.Rename(left[0], foreign); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(foreign, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"event":{"id":"torn`)
	f.Close()

	s2, err := New(Config{Dir: root, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Write(context.Background(), events("ds", 3, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ln := range readVisible(t, root) {
		var d struct{ Event struct{ ID string } }
		if err := json.Unmarshal(ln, &d); err != nil {
			t.Fatalf("torn line visible: %q", ln)
		}
		ids = append(ids, d.Event.ID)
	}
	// Files of two runs that started in the same second sort by their
	// random run tokens: across runs only the set is promised.
	slices.Sort(ids)
	want := []string{"ds-00000", "ds-00001", "ds-00002", "ds-00003", "ds-00004"}
	if !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
}

// TestNoPartialLineVisible reads the published files over and over while
// several goroutines write with frequent rotation.
func TestNoPartialLineVisible(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Dir: dir, MaxBytes: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var readerErr error
	var reads int
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			reads++
			for _, p := range visibleFiles(t, dir) {
				data, err := os.ReadFile(p)
				if err != nil {
					continue // rotated away? published files are never removed
				}
				if len(data) == 0 || data[len(data)-1] != '\n' {
					readerErr = fmt.Errorf("%s: partial line visible: %q", p, data)
					return
				}
				for ln := range bytes.Lines(data) {
					if !json.Valid(ln) {
						readerErr = fmt.Errorf("%s: invalid line visible: %q", p, ln)
						return
					}
				}
			}
		}
	})
	var writers sync.WaitGroup
	for w := range 4 {
		ds := fmt.Sprintf("ds%d", w%2)
		writers.Go(func() {
			for i := range 100 {
				b := events(ds, w*1000+i*5, w*1000+i*5+5)
				if err := s.Write(context.Background(), b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	if n := len(readVisible(t, dir)); n != 4*100*5 {
		t.Errorf("read back %d lines, want %d", n, 4*100*5)
	}
	files := len(visibleFiles(t, dir))
	if files < 10 {
		t.Errorf("%d files published, want at least 10", files)
	}
	t.Logf("reader passes: %d, files: %d", reads, files)
}

// TestFailedWriteKeepsDurablePrefix makes a write fail after an earlier one
// succeeded (the file descriptor is closed under the Log, as an I/O error
// would) and checks that the acknowledged lines are still published and the
// next Write goes to a new file.
func TestFailedWriteKeepsDurablePrefix(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, "ds", 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Append(ctx, [][]byte{[]byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.f.Close()
	l.mu.Unlock()
	if err := l.Append(ctx, [][]byte{[]byte(`{"b":2}`)}); err == nil {
		t.Fatal("Append on a broken file returned nil")
	}
	if got := readVisible(t, dir); len(got) != 1 || string(got[0]) != `{"a":1}` {
		t.Fatalf("after the failure: visible %q, want the acknowledged line", got)
	}
	if err := l.Append(ctx, [][]byte{[]byte(`{"b":2}`)}); err != nil {
		t.Fatalf("Append after a failure: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readVisible(t, dir); len(got) != 2 {
		t.Errorf("visible %q, want 2 lines", got)
	}
	if files := visibleFiles(t, dir); len(files) != 2 {
		t.Errorf("published %v, want the file before the failure and the one after it", files)
	}
}

func TestOpenLogRejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"", "a/b", ".x", `a\b`} {
		if _, err := OpenLog(t.TempDir(), p, 10, 0); err == nil {
			t.Errorf("OpenLog(prefix %q) succeeded", p)
		}
	}
}

// crash drops a sink's open files without publishing them, as a killed
// process would: their locks go with them.
func crash(s *Sink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.logs {
		l.mu.Lock()
		if l.f != nil {
			l.f.Close()
			l.f = nil
		}
		l.mu.Unlock()
	}
}

func TestRecoveryLeavesLiveWritersAlone(t *testing.T) {
	// Two exporters writing one directory (shards, or a backfill beside the
	// CronJob): opening the second must not publish, truncate or remove the
	// first one's file while it is being written.
	root := t.TempDir()
	s1, err := New(Config{Dir: root, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Write(context.Background(), events("ds", 0, 3)); err != nil {
		t.Fatal(err)
	}
	left := inProgressFiles(t, root)
	if len(left) != 1 {
		t.Fatalf("in-progress files = %v, want 1", left)
	}
	// The other process's file: same directory, another run id.
	foreign := strings.Replace(left[0], runID, "0badc0de", 1)
	if err := os.Rename(left[0], foreign); err != nil {
		t.Fatal(err)
	}
	s2, err := New(Config{Dir: root, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if got := inProgressFiles(t, root); len(got) != 1 || got[0] != foreign {
		t.Fatalf("after a second sink opened: in-progress files %v, want %v untouched", got, foreign)
	}
	if err := s2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Once its writer is gone, the file is a leftover like any other.
	crash(s1)
	if n, err := Recover(filepath.Dir(foreign)); err != nil || n != 1 {
		t.Fatalf("Recover after the writer died = %d, %v; want 1 file published", n, err)
	}
}
