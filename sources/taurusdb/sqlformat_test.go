package taurusdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
)

// goldenSQLStream maps the golden files' records.
func goldenSQLStream() *SQLStream {
	return &SQLStream{instance: goldenInstance, region: goldenRegion, project: goldenProject, now: fixedNow}
}

// readSQLFile reads a whole file as the reader does: its detected format
// and, per record, the ECS document or the dead-letter reason.
func readSQLFile(t testing.TB, body io.Reader, maxRecord int) string {
	var out bytes.Buffer
	f, err := openSQLFile(body, SQLFields, maxRecord)
	if err != nil {
		if !errors.Is(err, errUnreadable) {
			t.Fatalf("openSQLFile: %v, not errUnreadable", err)
		}
		fmt.Fprintf(&out, "# file dead-lettered: %v\n", err)
		return out.String()
	}
	fmt.Fprintf(&out, "# format %s, gzip %v, columns %s\n", f.format, f.gzipped, strings.Join(f.columns, ","))
	s := goldenSQLStream()
	ref := fileRef{id: "fa163ea0e2bet11e9d832166a2cf894c5br01", name: "317156_Audit"}
	for n := int64(0); ; n++ {
		rec, err := f.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", n, err)
		}
		if rec.fields == nil {
			fmt.Fprintf(&out, "# record %d dead-lettered (%d bytes kept): %s\n", n, len(rec.raw), rec.reason)
			continue
		}
		raw := s.envelope(ref, n, rec.fields)
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			fmt.Fprintf(&out, "# record %d map error: %v\n", n, err)
			continue
		}
		ecstest.CheckDoc(t, raw, &ev, SQLDataset)
		out.Write(ev.Doc)
		out.WriteByte('\n')
	}
	return out.String()
}

// TestSQLFormatDetection reads every file of testdata/sqlfiles (CSV with
// and without header, CRLF and BOM, JSON lines, gzip, multi-line SQL,
// malformed lines, records over the cap, unreadable files) and compares
// the format found and each record's document or dead letter with
// testdata/sqlgolden/<file>.ndjson (-update rewrites them).
func TestSQLFormatDetection(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "sqlfiles", "*"))
	if err != nil || len(files) < 10 {
		t.Fatalf("testdata/sqlfiles: %d files, %v", len(files), err)
	}
	ecs := ecstest.LoadECS(t)
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := readSQLFile(t, bytes.NewReader(b), 1024)
			for _, line := range strings.Split(got, "\n") {
				if strings.HasPrefix(line, "{") {
					ecs.Check(t, []byte(line))
				}
			}
			// One byte at a time: record boundaries must not depend on how
			// the body arrives.
			if again := readSQLFile(t, io.LimitReader(&oneByteReader{b: b}, int64(len(b))), 1024); again != got {
				t.Errorf("read a byte at a time, the file reads differently:\n%s\nvs\n%s", again, got)
			}
			ecstest.Golden(t, filepath.Join("testdata", "sqlgolden", name+".ndjson"), []byte(got))
		})
	}
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func TestSQLMapFields(t *testing.T) {
	s := goldenSQLStream()
	ref := fileRef{id: "file-1", name: "n"}
	for _, tc := range []struct {
		fields string
		want   map[string]any
		absent []string
	}{
		{`{"record_id":"9","timestamp":"2025-06-01 00:00:01","command_class":"SELECT","connection_status":"0","user":"app","ip":"192.168.1.2","host":"","sqltext":"SELECT 1"}`,
			map[string]any{"@timestamp": "2025-06-01T00:00:01.000Z", "event.type": "[access]", "event.action": "select", "event.outcome": "success",
				"user.name": "app", "source.ip": "192.168.1.2", "related.ip": "[192.168.1.2]", "related.user": "[app]", "huaweicloud.taurusdb_sql.sql": "SELECT 1"},
			[]string{"source.domain", "error.code"}},
		{`{"record_id":"9","timestamp":"2025-06-01T08:00:01+08:00","command_class":"insert","connection_status":"1064"}`,
			map[string]any{"@timestamp": "2025-06-01T00:00:01.000Z", "event.type": "[change error]", "event.outcome": "failure", "error.code": "1064"}, nil},
		{`{"timestamp":"2025-06-01T00:00:01Z","name":"CONNECT","host":"localhost","user":"root","external_user":"px"}`,
			map[string]any{"event.action": "connect", "event.type": "[info]", "event.outcome": "unknown", "source.domain": "localhost", "related.user": "[root px]"},
			[]string{"huaweicloud.taurusdb_sql.host", "source.ip"}},
		{`{"record_id":"9","timestamp":"1748736005123","ip":"not-an-ip","host":"10.1.2.3"}`,
			map[string]any{"@timestamp": "2025-06-01T00:00:05.123Z", "huaweicloud.taurusdb_sql.ip": "not-an-ip", "huaweicloud.taurusdb_sql.host": "10.1.2.3"},
			[]string{"source.ip", "source.domain"}},
	} {
		raw := s.envelope(ref, 3, []byte(tc.fields))
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			t.Fatalf("%s: %v", tc.fields, err)
		}
		ecstest.CheckDoc(t, raw, &ev, SQLDataset)
		ecstest.CheckFields(t, tc.fields, ev.Doc, tc.want, tc.absent)
	}
	// event.id: scoped by instance and file, by the record's ordinal and its
	// record_id (two statements sharing a record_id stay two events).
	id := func(fields string, f fileRef, n int64) string {
		var ev pipeline.Event
		if err := s.Map(s.envelope(f, n, []byte(fields)), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.ID
	}
	const withID, noID = `{"record_id":"9","timestamp":"2025-06-01T00:00:01Z"}`, `{"timestamp":"2025-06-01T00:00:01Z"}`
	first, again := id(withID, ref, 1), id(withID, ref, 1)
	if first != again || first == id(withID, ref, 2) || first == id(withID, fileRef{id: "file-2"}, 1) {
		t.Error("event.id must follow the ordinal and record_id within a file and differ across files")
	}
	if id(noID, ref, 1) == id(noID, ref, 2) {
		t.Error("records without record_id must get their ordinal's id")
	}
	for _, bad := range []string{`{"record_id":"1"}`, `{"timestamp":"yesterday"}`, `{"timestamp":"2025-06-01T00:00:01Z","user":{}}`} {
		var ev pipeline.Event
		if err := s.Map(s.envelope(ref, 1, []byte(bad)), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		}
	}
	for _, bad := range []string{``, `[]`, `{"audit_log_id":"x","n":1}`, `{"n":1,"record":{}}`} {
		var ev pipeline.Event
		if err := s.Map([]byte(bad), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		}
	}
}
