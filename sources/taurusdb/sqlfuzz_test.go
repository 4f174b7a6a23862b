package taurusdb

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
)

// fuzzRecord is what a file reader returned for one record.
type fuzzRecord struct {
	raw, fields string
	reason      string
	end         int64
}

func readAll(t *testing.T, f *sqlFile, maxRecord int) []fuzzRecord {
	t.Helper()
	var out []fuzzRecord
	for range 1 << 16 {
		rec, err := f.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			return out // a gzip stream cut short; nothing more to compare
		}
		if len(rec.raw) > maxRecord {
			t.Fatalf("record of %d bytes over the cap %d", len(rec.raw), maxRecord)
		}
		if (rec.fields == nil) == (rec.reason == "") {
			t.Fatalf("record %q: fields %q and reason %q", rec.raw, rec.fields, rec.reason)
		}
		if rec.fields != nil && (!json.Valid(rec.fields) || rec.fields[0] != '{') {
			t.Fatalf("fields %q are not a JSON object", rec.fields)
		}
		out = append(out, fuzzRecord{string(rec.raw), string(rec.fields), rec.reason, f.offset()})
	}
	t.Fatal("more than 65536 records")
	return nil
}

// checkCSVAgainstStdlib compares parseCSVRecord with encoding/csv
// (strict quotes) on one record without carriage returns, which
// encoding/csv rewrites inside quoted fields.
func checkCSVAgainstStdlib(t *testing.T, rec string) {
	t.Helper()
	ours, err := parseCSVRecord([]byte(rec))
	r := csv.NewReader(strings.NewReader(rec))
	r.FieldsPerRecord = -1
	std, stdErr := r.Read()
	if stdErr == nil {
		if _, more := r.Read(); !errors.Is(more, io.EOF) {
			stdErr = errors.New("more than one record")
		}
	}
	if (err == nil) != (stdErr == nil) {
		t.Fatalf("record %q: ours %q, %v; encoding/csv %q, %v", rec, ours, err, std, stdErr)
	}
	if err == nil && !slices.Equal(ours, std) {
		t.Fatalf("record %q: ours %q, encoding/csv %q", rec, ours, std)
	}
}

// FuzzSQLFile feeds audit log files. The reader must not panic, keep
// every record under the cap, give each record fields or a reason, read
// the same records however the body is chunked, and, for a file that is
// not gzip, read from any record's end offset (a ranged resume) exactly
// the records that follow it. Mapped records must be valid documents.
func FuzzSQLFile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "sqlfiles", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("record_id,timestamp\n\"a\nb\",1\n\"unbalanced\n"))
	f.Add([]byte("{\"timestamp\":\"2025-06-01T00:00:00Z\"}\r\n\n{"))
	const maxRecord = 64
	s := goldenSQLStream()
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := openSQLFile(bytes.NewReader(b), SQLFields, maxRecord)
		if err != nil {
			if !errors.Is(err, errUnreadable) {
				t.Fatalf("openSQLFile: %v, not errUnreadable", err)
			}
			return
		}
		all := readAll(t, file, maxRecord)
		slow, err := openSQLFile(&oneByteReader{b: b}, SQLFields, maxRecord)
		if err != nil {
			t.Fatalf("read a byte at a time, the file is unreadable: %v", err)
		}
		again := readAll(t, slow, maxRecord)
		if len(again) != len(all) {
			t.Fatalf("%d records read whole, %d a byte at a time", len(all), len(again))
		}
		for i := range all {
			if all[i] != again[i] {
				t.Fatalf("record %d: %+v vs %+v", i, all[i], again[i])
			}
		}
		if !file.gzipped {
			// Every record's end in a small file, some 32 of them in a
			// large one: each resume reads the rest of the file.
			stride := max(1, len(all)/32)
			for i := 0; i < len(all); i += stride {
				r := all[i]
				if r.end > int64(len(b)) {
					t.Fatalf("record %d ends at %d, past the file's %d bytes", i, r.end, len(b))
				}
				rest := readAll(t, resumeSQLFile(bytes.NewReader(b[r.end:]), r.end, file.format, file.columns, maxRecord), maxRecord)
				if len(rest) != len(all)-i-1 {
					t.Fatalf("resumed after record %d (offset %d): %d records, want %d", i, r.end, len(rest), len(all)-i-1)
				}
				for j := range rest {
					if rest[j] != all[i+1+j] {
						t.Fatalf("resumed after record %d: record %d is %+v, want %+v", i, j, rest[j], all[i+1+j])
					}
				}
			}
		}
		for n, r := range all {
			if file.format != FormatJSONLines && len(r.raw) < maxRecord && !strings.Contains(r.raw, "\r") {
				checkCSVAgainstStdlib(t, r.raw)
			}
			if r.fields == "" {
				continue
			}
			raw := s.envelope(fileRef{id: "f", name: "n"}, int64(n), []byte(r.fields))
			var ev pipeline.Event
			if s.Map(raw, &ev) != nil {
				continue
			}
			if !json.Valid(ev.Doc) {
				t.Fatalf("invalid document for %q: %s", r.fields, ev.Doc)
			}
			ecstest.CheckDoc(t, raw, &ev, SQLDataset)
		}
	})
}
