package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

func TestConfig(t *testing.T) {
	var c Config
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target: &c, Lookuper: envconfig.MapLookuper(nil),
	}); err != nil {
		t.Fatal(err)
	}
	if c.URL != "file://./out/deadletter" {
		t.Errorf("default URL = %q", c.URL)
	}
	tests := []struct {
		url     string
		wantDir string // "" means an error naming HWCAUDIT_DEADLETTER
	}{
		{"file://./out/deadletter", "out/deadletter"},
		{"file:///var/lib/hwcaudit/dl", "/var/lib/hwcaudit/dl"},
		{"file://../dl", "../dl"},
		{"file:dl", "dl"},
		{"file://dl", ""}, // "dl" would be a host
		{"file://", ""},
		{"./dl", ""},
		{"kafka://broker/topic", ""},
		{"file://./a%20b", "a b"},
		{"::", ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			loc, err := Config{URL: tt.url}.location()
			if tt.wantDir == "" {
				if err == nil || !strings.Contains(err.Error(), "HWCAUDIT_DEADLETTER") {
					t.Errorf("location() = %+v, %v; want an error naming HWCAUDIT_DEADLETTER", loc, err)
				}
				return
			}
			if err != nil || loc.dir != tt.wantDir || loc.s3 != nil {
				t.Errorf("location() = %+v, %v; want dir %q", loc, err, tt.wantDir)
			}
			if err := (Config{URL: tt.url}).Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestPut(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(Config{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 123e6, time.FixedZone("CST", 8*3600))
	letters := []pipeline.DeadLetter{
		{Stream: "swr/ins-1/pull", Stage: "map", Reason: "bad time", Time: at, Original: []byte(`{"x":"<a>\n"}`)},
		{Stream: "swr/ins-1/pull", Stage: "sink:es", Reason: "too large", Time: at, EventID: "e1", Original: []byte{0xff, 0xfe, 'a'}},
		{Stream: "s", Stage: "map", Reason: "empty", Time: at},
	}
	if err := w.Put(context.Background(), letters); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "deadletter-*.ndjson"))
	if len(files) != 1 {
		t.Fatalf("files %v, want one", files)
	}
	data, _ := os.ReadFile(files[0])
	want := `{"@timestamp":"2024-05-01T04:00:00.123Z","stream":"swr/ins-1/pull","stage":"map","reason":"bad time","original":"{\"x\":\"<a>\\n\"}"}
{"@timestamp":"2024-05-01T04:00:00.123Z","stream":"swr/ins-1/pull","stage":"sink:es","reason":"too large","event_id":"e1","original_base64":"//5h"}
{"@timestamp":"2024-05-01T04:00:00.123Z","stream":"s","stage":"map","reason":"empty","original":""}
`
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	for ln := range bytes.Lines(data) {
		var v map[string]any
		if err := json.Unmarshal(ln, &v); err != nil {
			t.Errorf("line %q: %v", ln, err)
		}
	}
	if err := w.Put(context.Background(), letters); err == nil || !pipeline.IsPermanent(err) {
		t.Errorf("Put after Close = %v, want a permanent error", err)
	}
}

func TestPutCancelled(t *testing.T) {
	dir := t.TempDir()
	w, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Put(ctx, []pipeline.DeadLetter{{Stream: "s"}}); err == nil {
		t.Error("Put with a cancelled context returned nil")
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Every stored letter is in a visible file once Close returned.
	if files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson")); len(files) != 0 {
		t.Errorf("a cancelled Put stored letters: %v", files)
	}
}

func TestZeroTimeUsesNow(t *testing.T) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := encode(pipeline.DeadLetter{Stream: "s"}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"@timestamp":"2024-01-02T03:04:05Z"`)) {
		t.Errorf("encoded %s", b)
	}
}
