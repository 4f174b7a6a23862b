// Package ecstest holds the checks every source's mapping tests run on the
// ECS documents they produce: one JSON object without duplicate keys, a UTC
// @timestamp that agrees with the Event, the event id and dataset, and field
// names and categorization values that ECS defines (read from ecs_flat.yml).
package ecstest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// Update is the -update flag of the test binaries that import ecstest:
// golden files are rewritten from the current mapping.
var Update = flag.Bool("update", false, "rewrite testdata/golden from the current mapping")

// CheckDoc verifies what every mapped document must satisfy.
func CheckDoc(t testing.TB, raw []byte, ev *pipeline.Event, dataset string) {
	t.Helper()
	if err := CheckJSONObject(ev.Doc); err != nil {
		t.Fatalf("document is not a JSON object without duplicate keys: %v\n%s", err, ev.Doc)
	}
	if bytes.ContainsAny(ev.Doc, "\n\r") {
		t.Errorf("document contains a raw line break, which breaks NDJSON")
	}
	f := FlatDoc(t, ev.Doc)
	ts, _ := f["@timestamp"].(string)
	parsed, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || !strings.HasSuffix(ts, "Z") {
		t.Errorf("@timestamp %q is not an RFC 3339 UTC time (%v)", ts, err)
	}
	if !parsed.Equal(ev.Timestamp.Truncate(time.Millisecond)) || ev.Timestamp.Location() != time.UTC {
		t.Errorf("@timestamp %q disagrees with Event.Timestamp %v", ts, ev.Timestamp)
	}
	if ev.ID == "" || f["event.id"] != ev.ID {
		t.Errorf("event.id %v, Event.ID %q", f["event.id"], ev.ID)
	}
	if ev.Dataset != dataset || f["event.dataset"] != dataset {
		t.Errorf("dataset %q / %v, want %s", ev.Dataset, f["event.dataset"], dataset)
	}
	if f["event.original"] != string(raw) && utf8.Valid(raw) {
		t.Errorf("event.original is not the raw record")
	}
}

// Golden compares got with the golden file at path, or rewrites the file
// when -update is set.
func Golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestMapGolden -update to create it)", err)
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s line %d differs (review, then go test -run TestMapGolden -update):\n got %.600s\nwant %.600s", path, i+1, gl, wl)
		}
	}
}

// CheckJSONObject reports an error unless doc is exactly one JSON object in
// which no object repeats a key.
func CheckJSONObject(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("starts with %v", tok)
	}
	if err := walkObject(dec); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the object (%v)", err)
	}
	return nil
}

func walkObject(dec *json.Decoder) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k := tok.(string)
		if seen[k] {
			return fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		if err := walkValue(dec); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func walkValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec)
	case json.Delim('['):
		for dec.More() {
			if err := walkValue(dec); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	return nil
}

// FlatDoc decodes doc into dotted field names. An array of scalars is the
// value of its field; objects inside arrays add their members' names.
func FlatDoc(t testing.TB, doc []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	out := map[string]any{}
	flatten("", v, out)
	return out
}

func flatten(prefix string, v any, out map[string]any) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			flatten(join(k), c, out)
		}
	case []any:
		scalars := true
		for _, c := range v {
			switch c.(type) {
			case map[string]any, []any:
				scalars = false
				flatten(prefix, c, out)
			}
		}
		if scalars {
			out[prefix] = v
		}
	default:
		out[prefix] = v
	}
}

// Schema is what the checks need of ecs_flat.yml.
type Schema struct {
	path    string // where it was read from
	fields  map[string]bool
	allowed map[string][]string // field → allowed values
	types   map[string]string   // field → ECS data type ("keyword", "date", …)
	arrays  map[string]bool     // fields ECS normalizes to arrays
	// expectedTypes lists, for each event.category value, the event.type
	// values ECS expects with it.
	expectedTypes map[string][]string
}

// ecsFlatPath is the ECS field list the check reads: shared/ecs/ecs_flat.yml
// beside the repository, as CI lays it out, or HWCAUDIT_ECS_FLAT.
func ecsFlatPath() string {
	if p := os.Getenv("HWCAUDIT_ECS_FLAT"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "ecs", "ecs_flat.yml")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// LoadECS parses ecs_flat.yml just enough: top-level keys sit at column 0
// ("event.kind:"), a field's attributes at column 2 ("  type: keyword",
// "  normalize:" followed by "  - array"), allowed values are "  - "
// entries under "  allowed_values:" whose "    name:" is the value, and
// whose "    expected_event_types:" list precedes the name (keys are
// sorted).
func LoadECS(t testing.TB) *Schema {
	t.Helper()
	path := ecsFlatPath()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) || path == "" {
		t.Skipf("ECS field list %q is absent (expected ../shared/ecs/ecs_flat.yml beside the repository, or HWCAUDIT_ECS_FLAT); skipping the ECS schema check", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ecs := &Schema{path: path, fields: map[string]bool{}, allowed: map[string][]string{}, expectedTypes: map[string][]string{},
		types: map[string]string{}, arrays: map[string]bool{}}
	var field string
	var attr string // the field's attribute being read ("normalize", …)
	var inAllowed, inTypes bool
	var entryName string
	var entryTypes []string
	endEntry := func() {
		if entryName != "" {
			ecs.allowed[field] = append(ecs.allowed[field], entryName)
			if field == "event.category" {
				ecs.expectedTypes[entryName] = entryTypes
			}
		}
		entryName, entryTypes, inTypes = "", nil, false
	}
	unquote := func(s string) string { return strings.Trim(strings.TrimSpace(s), `'"`) }
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line[0] != ' ' {
			endEntry()
			inAllowed = false
			field = unquote(strings.TrimSuffix(line, ":"))
			ecs.fields[field] = true
			attr = ""
			continue
		}
		if len(line) > 2 && line[:2] == "  " && line[2] != ' ' && line[2] != '-' {
			var val string
			attr, val, _ = strings.Cut(line[2:], ":")
			if attr == "type" {
				ecs.types[field] = unquote(val)
			}
		} else if attr == "normalize" && line == "  - array" {
			ecs.arrays[field] = true
		}
		if line == "  allowed_values:" {
			inAllowed = true
			continue
		}
		if !inAllowed {
			continue
		}
		switch {
		case strings.HasPrefix(line, "  - "):
			endEntry()
			line = "    " + line[4:]
		case strings.HasPrefix(line, "  ") && line[2] != ' ':
			endEntry()
			inAllowed = false
			continue
		}
		switch {
		case strings.HasPrefix(line, "    name:"):
			entryName = unquote(strings.TrimPrefix(line, "    name:"))
			inTypes = false
		case line == "    expected_event_types:":
			inTypes = true
		case inTypes && strings.HasPrefix(line, "    - "):
			entryTypes = append(entryTypes, unquote(line[6:]))
		case strings.HasPrefix(line, "    ") && line[4] != ' ':
			inTypes = false
		}
	}
	endEntry()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// Sanity: a parser that found nothing would make every check pass.
	for _, f := range []string{"@timestamp", "event.kind", "event.category", "event.type", "event.outcome", "cloud.project.id"} {
		if !ecs.fields[f] {
			t.Fatalf("%s: parsed %d fields but not %s; has the format changed?", path, len(ecs.fields), f)
		}
	}
	for _, f := range []string{"event.kind", "event.category", "event.type", "event.outcome"} {
		if len(ecs.allowed[f]) < 3 {
			t.Fatalf("%s: parsed allowed values of %s as %v; has the format changed?", path, f, ecs.allowed[f])
		}
	}
	if !slices.Contains(ecs.expectedTypes["api"], "access") {
		t.Fatalf("%s: parsed expected event types of category api as %v", path, ecs.expectedTypes["api"])
	}
	for f, typ := range map[string]string{"@timestamp": "date", "file.size": "long", "source.ip": "ip", "user.name": "keyword", "event.category": "keyword"} {
		if ecs.types[f] != typ {
			t.Fatalf("%s: parsed the type of %s as %q, want %s; has the format changed?", path, f, ecs.types[f], typ)
		}
	}
	if !ecs.arrays["related.user"] || !ecs.arrays["event.category"] || ecs.arrays["user.name"] || ecs.arrays["event.kind"] {
		t.Fatalf("%s: parsed array normalization wrong (related.user %v, event.category %v, user.name %v, event.kind %v)", path,
			ecs.arrays["related.user"], ecs.arrays["event.category"], ecs.arrays["user.name"], ecs.arrays["event.kind"])
	}
	return ecs
}

// Check reports, as test errors, what Problems finds in doc.
func (ecs *Schema) Check(t testing.TB, doc []byte) {
	t.Helper()
	for _, p := range ecs.Problems(t, doc) {
		t.Errorf("%s\n%s", p, doc)
	}
}

// Problems lists what doc does against ECS: fields it does not define
// (outside the huaweicloud.* custom namespace), values whose JSON form does
// not fit the field's ECS type, an array where ECS keeps one value or one
// value where it normalizes to an array, and categorization values it does
// not allow or expect together.
func (ecs *Schema) Problems(t testing.TB, doc []byte) []string {
	t.Helper()
	var out []string
	f := FlatDoc(t, doc)
	for _, name := range slices.Sorted(maps.Keys(f)) {
		if strings.HasPrefix(name, "huaweicloud.") {
			continue
		}
		if !ecs.fields[name] {
			out = append(out, fmt.Sprintf("field %s is not in ECS (%s)", name, ecs.path))
			continue
		}
		out = append(out, ecs.valueProblems(name, f[name])...)
	}
	values := func(k string) []string {
		switch v := f[k].(type) {
		case string:
			return []string{v}
		case []any:
			var out []string
			for _, e := range v {
				out = append(out, fmt.Sprint(e))
			}
			return out
		}
		return nil
	}
	for _, k := range []string{"event.kind", "event.category", "event.type", "event.outcome"} {
		vs := values(k)
		if len(vs) == 0 {
			out = append(out, k+" is missing")
		}
		for _, v := range vs {
			if !slices.Contains(ecs.allowed[k], v) {
				out = append(out, fmt.Sprintf("%s %q is not one of ECS's %v", k, v, ecs.allowed[k]))
			}
		}
	}
	for _, cat := range values("event.category") {
		for _, typ := range values("event.type") {
			if !slices.Contains(ecs.expectedTypes[cat], typ) {
				out = append(out, fmt.Sprintf("event.type %q is not expected with event.category %q (ECS expects %v)", typ, cat, ecs.expectedTypes[cat]))
			}
		}
	}
	return out
}

// valueProblems checks one field's value, as FlatDoc decoded it, against
// the field's ECS type and array normalization.
func (ecs *Schema) valueProblems(name string, v any) []string {
	elems := []any{v}
	if arr, ok := v.([]any); ok {
		if !ecs.arrays[name] {
			return []string{fmt.Sprintf("%s is an array; ECS keeps one value in it", name)}
		}
		elems = arr
	} else if ecs.arrays[name] {
		return []string{fmt.Sprintf("%s is %v; ECS normalizes it to an array", name, v)}
	}
	var out []string
	for _, e := range elems {
		if why := typeMismatch(ecs.types[name], e); why != "" {
			out = append(out, fmt.Sprintf("%s = %v: %s", name, e, why))
		}
	}
	return out
}

// typeMismatch says why v, a value encoding/json decoded, cannot be a
// value of ECS type typ as written by our mappers, or "".
func typeMismatch(typ string, v any) string {
	switch typ {
	case "keyword", "constant_keyword", "wildcard", "match_only_text", "text":
		if _, ok := v.(string); !ok {
			return fmt.Sprintf("ECS type %s wants a string, got %T", typ, v)
		}
	case "date":
		s, ok := v.(string)
		if _, err := time.Parse(time.RFC3339Nano, s); !ok || err != nil {
			return "ECS type date: want an RFC 3339 time"
		}
	case "long", "integer", "short", "byte", "unsigned_long":
		n, ok := v.(float64)
		if !ok || n != math.Trunc(n) || (typ != "long" && typ != "unsigned_long" && math.Abs(n) > math.MaxInt32) || (typ == "unsigned_long" && n < 0) {
			return fmt.Sprintf("ECS type %s wants an integer", typ)
		}
	case "float", "double", "half_float", "scaled_float":
		if _, ok := v.(float64); !ok {
			return fmt.Sprintf("ECS type %s wants a number", typ)
		}
	case "ip":
		s, ok := v.(string)
		if _, err := netip.ParseAddr(s); !ok || err != nil {
			return "ECS type ip wants an IPv4 or IPv6 address"
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return "ECS type boolean wants true or false"
		}
	case "object", "flattened", "nested":
		return fmt.Sprintf("ECS type %s holds fields, not a value", typ)
	default:
		return fmt.Sprintf("ECS type %q is not one the check knows", typ)
	}
	return ""
}

// PageFiles lists the API pages a source's tests map: testdata/pages/*.json.
func PageFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "pages", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/pages/*.json (%v)", err)
	}
	return files
}

// MapGolden maps every record of every page (records decodes one page file)
// and compares the documents, one per line, with
// testdata/golden/<page>.ndjson. A record that fails to map is written as a
// "# record N: error" line, so the golden file pins errors too. Every
// document is then checked against the ECS schema (LoadECS, Schema.Check)
// in the subtest "ecs", which is skipped, visibly, only where ecs_flat.yml
// is absent.
func MapGolden(t *testing.T, dataset string, records func(testing.TB, string) [][]byte, mapRecord func([]byte, *pipeline.Event) error) {
	t.Helper()
	var docs [][]byte
	for _, page := range PageFiles(t) {
		name := strings.TrimSuffix(filepath.Base(page), ".json")
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			for i, raw := range records(t, page) {
				var ev pipeline.Event
				if err := mapRecord(raw, &ev); err != nil {
					fmt.Fprintf(&got, "# record %d: %v\n", i, err)
					continue
				}
				CheckDoc(t, raw, &ev, dataset)
				docs = append(docs, ev.Doc)
				got.Write(ev.Doc)
				got.WriteByte('\n')
			}
			Golden(t, filepath.Join("testdata", "golden", name+".ndjson"), got.Bytes())
		})
	}
	t.Run("ecs", func(t *testing.T) {
		ecs := LoadECS(t)
		if len(docs) == 0 {
			t.Fatal("no page record mapped to a document")
		}
		for _, doc := range docs {
			ecs.Check(t, doc)
		}
	})
}

// CheckFields reports each field of want whose value in doc (flattened,
// compared as printed) differs, and each field of absent that doc has. raw
// names the record in the messages.
func CheckFields(t testing.TB, raw string, doc []byte, want map[string]any, absent []string) {
	t.Helper()
	f := FlatDoc(t, doc)
	for k, v := range want {
		if fmt.Sprint(f[k]) != fmt.Sprint(v) {
			t.Errorf("%s: %s = %v, want %v", raw, k, f[k], v)
		}
	}
	for _, k := range absent {
		if v, ok := f[k]; ok {
			t.Errorf("%s: %s = %v, want it absent", raw, k, v)
		}
	}
}

// FuzzMap fuzzes mapRecord, seeded with every record of every page and
// with seeds: a document it maps must be valid JSON and pass CheckDoc.
func FuzzMap(f *testing.F, dataset string, records func(testing.TB, string) [][]byte, mapRecord func([]byte, *pipeline.Event) error, seeds ...[]byte) {
	f.Helper()
	for _, p := range PageFiles(f) {
		for _, raw := range records(f, p) {
			f.Add(raw)
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev pipeline.Event
		if err := mapRecord(raw, &ev); err != nil {
			return
		}
		if !json.Valid(ev.Doc) {
			t.Fatalf("invalid JSON for %q: %s", raw, ev.Doc)
		}
		CheckDoc(t, raw, &ev, dataset)
	})
}

// CPUTime is the CPU time, user and system, the process has used so far.
// The mapping benchmarks divide their records by the CPU time of their
// loop, so that their rate per CPU-second counts the work the garbage
// collector does on other cores too.
func CPUTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PageBodies cuts recs into pages of perPage records and encodes each
// page's API answer with body, which receives the page's records in the
// order given.
func PageBodies(tb testing.TB, recs [][]byte, perPage int, body func(recs []json.RawMessage) any) [][]byte {
	tb.Helper()
	var out [][]byte
	for start := 0; start+perPage <= len(recs); start += perPage {
		page := make([]json.RawMessage, perPage)
		for j := range page {
			page[j] = recs[start+j]
		}
		data, err := json.Marshal(body(page))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// BenchmarkMap measures a source's transform stage as the pipeline runs
// it: each iteration splits one of bodies into its records, oldest first,
// with split (the source's page decoder), and maps them with
// pipeline.MapRecords. It fails on any dead letter and reports records/op,
// records/s on one goroutine, and records per CPU-second of the process.
func BenchmarkMap(b *testing.B, m pipeline.Mapper, stream string, bodies [][]byte, perPage int, split func(page int, body []byte) ([][]byte, error)) {
	b.Helper()
	b.ReportAllocs()
	now := time.Now()
	var events []pipeline.Event
	pages := 0
	cpu0 := CPUTime(b)
	for b.Loop() {
		i := pages % len(bodies)
		recs, err := split(i, bodies[i])
		if err != nil {
			b.Fatal(err)
		}
		var letters []pipeline.DeadLetter
		events, letters = pipeline.MapRecords(m, stream, recs, now, events[:0], nil)
		if len(letters) > 0 {
			b.Fatalf("%d dead letters, the first: %s", len(letters), letters[0].Reason)
		}
		if len(events) != perPage {
			b.Fatalf("%d events for a page of %d", len(events), perPage)
		}
		pages++
	}
	b.ReportMetric(float64(perPage), "records/op")
	b.ReportMetric(float64(pages*perPage)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(pages*perPage)/(CPUTime(b)-cpu0).Seconds(), "records/CPU-s")
}
