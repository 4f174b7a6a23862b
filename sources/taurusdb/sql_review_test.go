package taurusdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// The tests of this file try to break the SQL stream: a fake listing API
// and a file host whose answers each test chooses.

// reviewFile is one audit log file of the fake API.
type reviewFile struct {
	id   string
	end  time.Time // end_time; begin_time is ten minutes before
	body []byte
}

// reviewHost serves the listing, the link requests and the files.
type reviewHost struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	files []reviewFile
	// serve, when set, answers a download instead of the default (a 200
	// with the body, or a 206 when Range is honoured).
	serve   func(w http.ResponseWriter, r *http.Request, f reviewFile) bool
	noRange bool // ignore Range: always a 200 with the whole body
	gets    []string
	ranges  []string
	// links, when set, answers the link request instead of the default.
	links func(ids []string) []string
}

func newReviewHost(t *testing.T, files []reviewFile) *reviewHost {
	h := &reviewHost{t: t, files: files}
	h.srv = httptest.NewServer(http.HandlerFunc(h.download))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *reviewHost) file(id string) (reviewFile, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.files {
		if f.id == id {
			return f, true
		}
	}
	return reviewFile{}, false
}

func (h *reviewHost) download(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/")
	f, ok := h.file(id)
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	h.gets = append(h.gets, id)
	h.ranges = append(h.ranges, r.Header.Get("Range"))
	serve := h.serve
	h.mu.Unlock()
	if serve != nil && serve(w, r, f) {
		return
	}
	if rg := r.Header.Get("Range"); rg != "" && !h.noRange {
		from, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
		if err != nil {
			h.t.Errorf("Range %q", rg)
		}
		if from >= int64(len(f.body)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(f.body)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(f.body)-1, len(f.body)))
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write(f.body[from:])
		return
	}
	_, _ = w.Write(f.body)
}

// Do answers the listing (filtered by end_time, paged) and link requests.
func (h *reviewHost) Do(_ context.Context, req huaweiapi.Request) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.HasSuffix(req.Path, "/audit-log-link") {
		var b struct{ IDs []string }
		if err := json.Unmarshal(req.Body, &b); err != nil {
			return nil, err
		}
		var links []string
		if h.links != nil {
			links = h.links(b.IDs)
		} else {
			for _, id := range b.IDs {
				links = append(links, h.srv.URL+"/"+id+"?Expires=1&Signature=s3cr3t-"+id)
			}
		}
		return json.Marshal(map[string][]string{"links": links})
	}
	from, err1 := time.Parse(queryLayout, req.Query.Get("start_time"))
	to, err2 := time.Parse(queryLayout, req.Query.Get("end_time"))
	offset, _ := strconv.Atoi(req.Query.Get("offset"))
	limit, _ := strconv.Atoi(req.Query.Get("limit"))
	if err1 != nil || err2 != nil {
		h.t.Fatalf("query %v", req.Query)
	}
	var in []map[string]any
	for _, f := range h.files {
		if f.end.Before(from) || f.end.After(to) {
			continue
		}
		in = append(in, map[string]any{"id": f.id, "name": "audit_" + f.id, "size": len(f.body),
			"begin_time": f.end.Add(-10 * time.Minute).Format(queryLayout), "end_time": f.end.Format(queryLayout)})
	}
	total := len(in)
	in = in[min(offset, len(in)):min(offset+limit, len(in))]
	return json.Marshal(map[string]any{"audit_logs": in, "total_count": total})
}

var reviewStart = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// stream returns a SQL stream reading h: files pages of filesPage, pages
// of pageRecords statements.
func (h *reviewHost) stream(filesPage, pageRecords int) *SQLStream {
	return h.streamWindow(filesPage, pageRecords, 100)
}

// streamWindow is stream with windows of at most maxRecords files: fewer
// than a second holds makes the window reader stream that second.
func (h *reviewHost) streamWindow(filesPage, pageRecords, maxRecords int) *SQLStream {
	cfg := Config{Instances: []string{simIns}, Endpoint: "https://gaussdb.example.com", PageSize: filesPage, SQL: true,
		SQLMaxRecordBytes: 1024, SQLPageRecords: pageRecords, SQLReadTimeout: 5 * time.Second}
	return NewSQLStreams(cfg, h, nil, "cn-north-4", simProject, Options{
		Window: window.Config{SettleDelay: time.Minute, MaxRecords: maxRecords},
		Start:  reviewStart,
		Now:    func() time.Time { return reviewStart.Add(48 * time.Hour) }})[0]
}

// csvFile is a CSV file with a header and n statements of file id.
func csvFile(id string, n int, crlf bool) []byte {
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	var b bytes.Buffer
	b.WriteString("record_id,timestamp,sqltext" + eol)
	for i := range n {
		sql := fmt.Sprintf("SELECT %d FROM %s", i, id)
		if i%3 == 1 {
			sql = fmt.Sprintf("\"UPDATE t\nSET a = 'x, \"\"y\"\"'\nWHERE id = %d\"", i)
		}
		fmt.Fprintf(&b, "%s-%d,2025-06-01 00:00:%02d,%s%s", id, i, i%60, sql, eol)
	}
	return b.Bytes()
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

// reviewPage is what one Next returned, by identity.
type reviewPage struct {
	cursor []byte
	items  []string // "id/n" of statements, "dl:reason-prefix/raw" of dead letters
}

// drainItems reads r to io.EOF (at most max pages) and returns its pages.
func drainItems(t *testing.T, r pipeline.Reader, max int) []reviewPage {
	t.Helper()
	var out []reviewPage
	for range max {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		rp := reviewPage{cursor: p.Cursor}
		for _, raw := range p.Records {
			var e sqlEntry
			if err := e.decode(raw); err != nil {
				t.Fatal(err)
			}
			rp.items = append(rp.items, e.AuditLogID+"/"+strconv.FormatInt(e.N, 10)+"/"+e.RecordID)
		}
		for _, inv := range p.Invalid {
			rp.items = append(rp.items, "dl:"+string(inv.Raw))
		}
		out = append(out, rp)
	}
	t.Fatalf("no io.EOF after %d pages", max)
	return nil
}

// TestSQLReviewResumeAtEveryCursor reads the whole stream once, then
// resumes at the cursor of every page it returned (a crash right after
// that page's checkpoint) and checks that the resumed run delivers exactly
// what followed that page: nothing lost, nothing repeated. Files share end
// seconds and the files page is small, so cursors fall between files of
// one second, inside files, and on file ends.
func TestSQLReviewResumeAtEveryCursor(t *testing.T) {
	base := reviewStart.Add(time.Hour)
	mk := func(gz bool, crlf bool) []reviewFile {
		var fs []reviewFile
		// Seconds with several files (A..D at +0s, E,F at +1s), files
		// with no statement and with only a header, a JSON lines file.
		add := func(id string, end time.Time, body []byte) {
			if gz {
				body = gzipped(body)
			}
			fs = append(fs, reviewFile{id: id, end: end, body: body})
		}
		add("a", base, csvFile("a", 7, crlf))
		add("b", base, csvFile("b", 0, crlf))
		add("c", base, csvFile("c", 5, crlf))
		add("d", base, csvFile("d", 11, crlf))
		add("d2", base, csvFile("d2", 2, crlf))
		add("e", base.Add(time.Second), []byte{})
		add("f", base.Add(time.Second), csvFile("f", 4, crlf))
		add("g", base.Add(time.Hour), []byte("\ufeff{\"record_id\":\"g-0\",\"timestamp\":\"2025-06-01 00:00:00\"}\n{\"record_id\":\"g-1\",\"timestamp\":\"2025-06-01 00:00:01\"}\nnot json\n{\"record_id\":\"g-3\",\"timestamp\":\"2025-06-01 00:00:03\"}"))
		add("h", base.Add(2*time.Hour), csvFile("h", 9, crlf))
		add("i", base.Add(3*time.Hour), noHeaderFile("i", "", 6))
		return fs
	}
	for _, tc := range []struct {
		name        string
		gz, crlf    bool
		noRange     bool
		filesPage   int
		pageRecords int
		maxWindow   int // window.Config.MaxRecords
	}{
		{"range", false, false, false, 2, 3, 100},
		{"range crlf", false, true, false, 3, 4, 100},
		{"no range", false, false, true, 2, 3, 100},
		{"gzip", true, false, false, 2, 5, 100},
		{"one file a page", false, false, false, 1, 2, 100},
		// Windows of four files: the second of a..d2 is streamed.
		{"streamed second", false, false, false, 2, 3, 4},
		{"streamed second one file a page", false, false, false, 1, 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newReviewHost(t, mk(tc.gz, tc.crlf))
			h.noRange = tc.noRange
			s := h.streamWindow(tc.filesPage, tc.pageRecords, tc.maxWindow)
			r, err := s.Open(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			full := drainItems(t, r, 1000)
			var all []string
			for _, p := range full {
				all = append(all, p.items...)
			}
			// Every statement of every file, once.
			want := 7 + 5 + 11 + 2 + 4 + 3 + 9 + 1 + 6 // g's "not json" is a dead letter
			if len(all) != want {
				t.Fatalf("read whole: %d items, want %d: %v", len(all), want, all)
			}
			for i, p := range full {
				r, err := s.Open(context.Background(), p.cursor)
				if err != nil {
					t.Fatalf("open at page %d's cursor %s: %v", i, p.cursor, err)
				}
				var got []string
				for _, q := range drainItems(t, r, 1000) {
					got = append(got, q.items...)
				}
				_ = r.(io.Closer).Close()
				var rest []string
				for _, q := range full[i+1:] {
					rest = append(rest, q.items...)
				}
				if !slices.Equal(got, rest) {
					t.Errorf("resumed after page %d (cursor %s):\n got %v\nwant %v", i, p.cursor, got, rest)
				}
			}
		})
	}
}

// resumeMidFile reads the stream until the first page whose cursor is
// inside a file and returns that cursor and everything a clean read
// delivers after it.
func resumeMidFile(t *testing.T, s *SQLStream) ([]byte, []string) {
	t.Helper()
	r, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	full := drainItems(t, r, 1000)
	for i, p := range full {
		var c sqlCursor
		if err := json.Unmarshal(p.cursor, &c); err != nil {
			t.Fatal(err)
		}
		if c.File != nil && c.File.Records > 0 && c.File.Offset > 0 {
			var rest []string
			for _, q := range full[i+1:] {
				rest = append(rest, q.items...)
			}
			return p.cursor, rest
		}
	}
	t.Fatal("no page ended inside a file")
	return nil, nil
}

// resumeItems opens s at cursor and reads it to the end, failing after
// tries retryable errors in a row (a stream stuck on one file).
func resumeItems(t *testing.T, s *SQLStream, cursor []byte, tries int) ([]string, error) {
	t.Helper()
	r, err := s.Open(context.Background(), cursor)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.(io.Closer).Close() }()
	var got []string
	fails := 0
	for range 1000 {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			if fails++; fails >= tries {
				return got, err
			}
			continue
		}
		fails = 0
		for _, raw := range p.Records {
			var e sqlEntry
			if err := e.decode(raw); err != nil {
				t.Fatal(err)
			}
			got = append(got, e.AuditLogID+"/"+strconv.FormatInt(e.N, 10)+"/"+e.RecordID)
		}
		for _, inv := range p.Invalid {
			got = append(got, "dl:"+string(inv.Raw))
		}
	}
	t.Fatal("no io.EOF")
	return nil, nil
}

// TestSQLReviewRangeAnsweredFromElsewhere: a server (or a proxy before
// it) answers every ranged request with a 206 whose Content-Range starts
// at 0 and the whole file. The reader must not retry that forever: it
// reads the file from its start and skips what it delivered.
func TestSQLReviewRangeAnsweredFromElsewhere(t *testing.T) {
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: csvFile("a", 20, false)}})
	s := h.stream(5, 4)
	cursor, rest := resumeMidFile(t, s)
	h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
		if r.Header.Get("Range") == "" {
			return false
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(f.body)-1, len(f.body)))
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write(f.body)
		return true
	}
	got, err := resumeItems(t, s, cursor, 5)
	if err != nil {
		t.Fatalf("stuck: %v", err)
	}
	if !slices.Equal(got, rest) {
		t.Errorf("got %v\nwant %v", got, rest)
	}
}

// TestSQLReviewRewrittenFileRanged: between the run that stopped in the
// middle of a file and the resume, the file was written again with other
// bytes (same records, longer statements). The server honours Range and
// If-Match as OBS does: the reader must not parse the new file from the
// old offset (the middle of a line), but read it from its start.
func TestSQLReviewRewrittenFileRanged(t *testing.T) {
	v1 := csvFile("a", 20, false)
	v2 := bytes.ReplaceAll(v1, []byte("SELECT "), []byte("SELECT /* rewritten */ "))
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: v1}})
	etag := func(b []byte) string { return fmt.Sprintf("\"%x\"", len(b)) }
	h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
		w.Header().Set("ETag", etag(f.body))
		if m := r.Header.Get("If-Match"); m != "" && m != etag(f.body) {
			w.WriteHeader(http.StatusPreconditionFailed)
			return true
		}
		return false
	}
	s := h.stream(5, 4)
	cursor, _ := resumeMidFile(t, s)
	h.mu.Lock()
	h.files[0].body = v2
	h.mu.Unlock()
	got, err := resumeItems(t, s, cursor, 5)
	if err != nil {
		t.Fatal(err)
	}
	var c sqlCursor
	_ = json.Unmarshal(cursor, &c)
	var want []string
	for i := c.File.Records; i < 20; i++ {
		want = append(want, fmt.Sprintf("a/%d/a-%d", i, i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("resumed in the rewritten file:\n got %v\nwant %v", got, want)
	}
}

// noHeaderFile is a CSV file without header, in SQLFields order, whose
// first record is first and whose n records after it are well formed.
func noHeaderFile(id, first string, n int) []byte {
	var b bytes.Buffer
	b.WriteString(first)
	for i := range n {
		fmt.Fprintf(&b, "%s-%d,42,0,QUERY,2025-06-01T00:00:%02dZ,select,SELECT %d,app,,,192.168.1.20,shop\n", id, i+1, i, i)
	}
	return b.Bytes()
}

// TestSQLReviewFirstRecordDoesNotDecideTheFile: in a file without header
// row, the first record is over the record cap, or malformed: that record
// is dead-lettered, the statements after it are delivered, instead of the
// whole file being dead-lettered (its statements never reaching anyone).
func TestSQLReviewFirstRecordDoesNotDecideTheFile(t *testing.T) {
	long := "1,42,0,QUERY,2025-06-01T00:00:00Z,select,SELECT '" + strings.Repeat("x", 3000) + "',app,,,1.2.3.4,shop\n"
	short := "1,42,0,QUERY,2025-06-01T00:00:00Z\n"
	h := newReviewHost(t, []reviewFile{
		{id: "long", end: reviewStart.Add(time.Hour), body: noHeaderFile("long", long, 5)},
		{id: "short", end: reviewStart.Add(2 * time.Hour), body: noHeaderFile("short", short, 5)},
		{id: "quote", end: reviewStart.Add(3 * time.Hour), body: noHeaderFile("quote", "1,4\"2,0\n", 5)},
	})
	s := h.stream(5, 100)
	r, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got, letters []string
	for _, p := range drainItems(t, r, 100) {
		for _, it := range p.items {
			if strings.HasPrefix(it, "dl:") {
				letters = append(letters, it)
				continue
			}
			got = append(got, it)
		}
	}
	var want []string
	for _, id := range []string{"long", "short", "quote"} {
		for i := range 5 {
			want = append(want, fmt.Sprintf("%s/%d/%s-%d", id, i+1, id, i+1))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("statements\n got %v\nwant %v", got, want)
	}
	if len(letters) != 3 {
		t.Errorf("%d dead letters, want the 3 first records: %.300q", len(letters), letters)
	}
	for _, l := range letters {
		if strings.Contains(l, `"id":`) {
			t.Errorf("a whole file was dead-lettered: %.200s", l)
		}
	}
}

// TestSQLReviewFileListedAgainLater: a file read whole is listed again
// with a later end_time (it was still being written, and grew) before the
// stream moved past its old second. The reader must read it again, not
// take it for the file it finished: the window reader keys a file by id
// and time, and so must the cursor's done list.
func TestSQLReviewFileListedAgainLater(t *testing.T) {
	T := reviewStart.Add(time.Hour)
	h := newReviewHost(t, []reviewFile{
		{id: "x", end: T, body: csvFile("x", 3, false)},
		{id: "y", end: T.Add(time.Second), body: csvFile("y", 10, false)},
	})
	s := h.stream(5, 4)
	r, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Until the first page inside y.
	var cursor []byte
	for range 20 {
		p, err := r.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var c sqlCursor
		_ = json.Unmarshal(p.Cursor, &c)
		if c.File != nil && c.File.ID == "y" && c.File.Records > 0 {
			cursor = p.Cursor
			break
		}
	}
	if cursor == nil {
		t.Fatal("no cursor inside y")
	}
	h.mu.Lock()
	h.files[0] = reviewFile{id: "x", end: T.Add(time.Second), body: csvFile("x", 6, false)}
	h.mu.Unlock()
	got, err := resumeItems(t, s, cursor, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 6; i++ {
		if id := fmt.Sprintf("x/%d/x-%d", i, i); !slices.Contains(got, id) {
			t.Errorf("statement %s of the grown file lost: %v", id, got)
		}
	}
}

// TestSQLReviewFileWithoutID: a listed file without an id (no link can
// be asked for it) is dead-lettered by the SQL stream with the reason,
// not passed over in silence; the files after it are read.
func TestSQLReviewFileWithoutID(t *testing.T) {
	h := newReviewHost(t, []reviewFile{
		{id: "a", end: reviewStart.Add(time.Hour), body: csvFile("a", 2, false)},
		{id: "b", end: reviewStart.Add(2 * time.Hour), body: csvFile("b", 2, false)},
	})
	inner := h
	api := doerFunc(func(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
		out, err := inner.Do(ctx, req)
		if err != nil || strings.HasSuffix(req.Path, "/audit-log-link") {
			return out, err
		}
		// Drop a's id from the listing.
		return bytes.Replace(out, []byte(`"id":"a",`), nil, 1), nil
	})
	s := h.stream(5, 10)
	s.api = api
	s.files = NewSQLStreams(Config{Instances: []string{simIns}, Endpoint: "https://gaussdb.example.com", PageSize: 5, SQL: true}, api, nil, "cn-north-4", simProject,
		Options{Window: window.Config{SettleDelay: time.Minute, MaxRecords: 100}, Start: reviewStart, Now: func() time.Time { return reviewStart.Add(48 * time.Hour) }})[0].files
	r, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	var reasons []string
	for range 20 {
		p, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range p.Records {
			var e sqlEntry
			_ = e.decode(raw)
			items = append(items, e.AuditLogID+"/"+e.RecordID)
		}
		for _, inv := range p.Invalid {
			reasons = append(reasons, inv.Reason)
		}
	}
	if !slices.Equal(items, []string{"b/b-0", "b/b-1"}) {
		t.Errorf("statements %v, want b's two", items)
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "id") {
		t.Errorf("dead letters %q, want one for the file without id", reasons)
	}
}

// TestSQLReviewRequestTimeoutRetried: a download answered 408 (the
// server timed the request out) is a transient failure: retried, not the
// whole file dead-lettered.
func TestSQLReviewRequestTimeoutRetried(t *testing.T) {
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: csvFile("a", 3, false)}})
	n := 0
	h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
		if n++; n == 1 {
			w.WriteHeader(http.StatusRequestTimeout)
			return true
		}
		return false
	}
	got, err := resumeItems(t, h.stream(5, 10), nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a/0/a-0", "a/1/a-1", "a/2/a-2"}) {
		t.Errorf("got %v", got)
	}
}

// TestSQLReviewRangedResumeWithoutHeader: a CSV file without header row,
// resumed by Range in its middle: the rest is parsed with the configured
// columns, as its start was.
func TestSQLReviewRangedResumeWithoutHeader(t *testing.T) {
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: noHeaderFile("a", "", 12)}})
	s := h.stream(5, 5)
	cursor, rest := resumeMidFile(t, s)
	got, err := resumeItems(t, s, cursor, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, rest) {
		t.Errorf("resumed by range:\n got %.400v\nwant %v", got, rest)
	}
	if !slices.ContainsFunc(h.ranges, func(r string) bool { return r != "" }) {
		t.Error("no ranged request")
	}
}

// TestSQLReviewGzipServedWithContentEncoding: a .gz object served with
// Content-Encoding: gzip by a server that compresses again on the way
// (the reader asks for identity; not every server listens): the body is
// gzip twice, and the statements inside must still be read.
func TestSQLReviewGzipServedWithContentEncoding(t *testing.T) {
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: gzipped(csvFile("a", 4, false))}})
	h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(gzipped(f.body))
		return true
	}
	got, err := resumeItems(t, h.stream(5, 10), nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a/0/a-0", "a/1/a-1", "a/2/a-2", "a/3/a-3"}) {
		t.Errorf("got %.300v", got)
	}
}

// TestSQLReviewGzipHeaderCut: the connection drops inside a gzip file's
// header: a transient failure, retried, not the file dead-lettered.
func TestSQLReviewGzipHeaderCut(t *testing.T) {
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: gzipped(csvFile("a", 4, false))}})
	n := 0
	h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
		if n++; n > 1 {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
		_, _ = w.Write(f.body[:5])
		return true // shorter than its Content-Length: the connection closes
	}
	got, err := resumeItems(t, h.stream(5, 10), nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a/0/a-0", "a/1/a-1", "a/2/a-2", "a/3/a-3"}) {
		t.Errorf("got %.300v", got)
	}
}

// TestSQLReviewChaos reads files from a host that misbehaves at random
// (seeded): drops the connection in the middle of a body, answers 503,
// 403 (an expired link), ignores Range, answers another range or a part
// of the rest, while
// runs are killed at random pages and resume from the cursor of a page
// they returned. Every statement arrives, none is dead-lettered, and the
// stream ends.
func TestSQLReviewChaos(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			base := reviewStart.Add(time.Hour)
			var files []reviewFile
			want := map[string]bool{}
			for i := range 6 {
				id := fmt.Sprintf("f%d", i)
				n := 20 + rng.IntN(60)
				body := csvFile(id, n, i%2 == 0)
				switch i % 3 {
				case 1:
					body = noHeaderFile(id, "", n)
				case 2:
					if seed%2 == 0 {
						body = gzipped(body)
					}
				}
				files = append(files, reviewFile{id: id, end: base.Add(time.Duration(i/2) * time.Second), body: body})
				for j := range n {
					if i%3 == 1 {
						want[fmt.Sprintf("%s/%d/%s-%d", id, j, id, j+1)] = true
					} else {
						want[fmt.Sprintf("%s/%d/%s-%d", id, j, id, j)] = true
					}
				}
			}
			h := newReviewHost(t, files)
			var mu sync.Mutex
			h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
				mu.Lock()
				roll := rng.IntN(10)
				cut := 1 + rng.IntN(len(f.body))
				mu.Unlock()
				w.Header().Set("ETag", `"`+f.id+`"`)
				switch roll {
				case 0:
					w.WriteHeader(http.StatusServiceUnavailable)
				case 1:
					w.WriteHeader(http.StatusForbidden)
				case 2, 3: // cut short
					w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
					_, _ = w.Write(f.body[:cut-1])
				case 4: // Range ignored
					_, _ = w.Write(f.body)
				case 5: // another range
					if r.Header.Get("Range") == "" {
						return false
					}
					w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(f.body)-1, len(f.body)))
					w.WriteHeader(http.StatusPartialContent)
					_, _ = w.Write(f.body)
				case 6: // a part of the rest
					rg := r.Header.Get("Range")
					if rg == "" {
						return false
					}
					from, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
					to := min(from+1+cut%200, len(f.body))
					w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to-1, len(f.body)))
					w.WriteHeader(http.StatusPartialContent)
					_, _ = w.Write(f.body[from:to])
				default:
					return false
				}
				return true
			}
			s := h.stream(2, 7)
			seen := map[string]int{}
			var cursor []byte
			ended := false
			for run := 0; run < 300 && !ended; run++ {
				r, err := s.Open(context.Background(), cursor)
				if err != nil {
					t.Fatal(err)
				}
				var cursors [][]byte
				stop := 1 + rng.IntN(15)
				for fails := 0; len(cursors) < stop; {
					p, err := r.Next(context.Background())
					if errors.Is(err, io.EOF) {
						ended = true
						break
					}
					if err != nil {
						if pipeline.IsPermanent(err) {
							t.Fatalf("permanent: %v", err)
						}
						if strings.Contains(err.Error(), "s3cr3t") {
							t.Fatalf("error shows the link's signature: %v", err)
						}
						if fails++; fails > 50 {
							t.Fatalf("stuck: %v", err)
						}
						continue
					}
					cursors = append(cursors, p.Cursor)
					for _, inv := range p.Invalid {
						t.Errorf("dead letter: %s: %.200s", inv.Reason, inv.Raw)
					}
					for _, raw := range p.Records {
						var e sqlEntry
						if err := e.decode(raw); err != nil {
							t.Fatal(err)
						}
						seen[e.AuditLogID+"/"+strconv.FormatInt(e.N, 10)+"/"+e.RecordID]++
					}
				}
				_ = r.(io.Closer).Close()
				if len(cursors) > 0 {
					cursor = cursors[rng.IntN(len(cursors))]
				}
			}
			if !ended {
				t.Fatal("the stream did not end in 300 runs")
			}
			for id := range want {
				if seen[id] == 0 {
					t.Errorf("statement %s lost", id)
				}
			}
			for id := range seen {
				if !want[id] {
					t.Errorf("statement %s delivered but not in any file", id)
				}
			}
		})
	}
}

// TestSQLReviewLinkRefusedForOneFile: the link request for one file is
// refused because that file no longer exists (it expired between the
// listing and the download: the SQL stream may lag days behind). The
// file is dead-lettered with the API's reason and the stream goes on,
// instead of failing on it forever. A refusal that does not name the file
// (permissions, a malformed request) still fails the stream.
func TestSQLReviewLinkRefusedForOneFile(t *testing.T) {
	h := newReviewHost(t, []reviewFile{
		{id: "gone", end: reviewStart.Add(time.Hour), body: csvFile("gone", 2, false)},
		{id: "b", end: reviewStart.Add(2 * time.Hour), body: csvFile("b", 2, false)},
	})
	for _, tc := range []struct {
		name   string
		err    error
		letter bool
	}{
		{"404", pipeline.Permanent(&huaweiapi.APIError{Status: 404, Code: "DBS.280022", Message: "The audit log does not exist."}), true},
		{"400 naming the id", pipeline.Permanent(&huaweiapi.APIError{Status: 400, Code: "DBS.280001", Message: "Invalid parameter: audit log gone does not exist."}), true},
		{"403", pipeline.Permanent(&huaweiapi.APIError{Status: 403, Code: "DBS.280024", Message: "Insufficient permissions."}), false},
		{"400 not naming it", pipeline.Permanent(&huaweiapi.APIError{Status: 400, Code: "DBS.280001", Message: "Invalid parameter."}), false},
		{"gateway 404", pipeline.Permanent(&huaweiapi.APIError{Status: 404, Code: "APIGW.0101", Message: "The API does not exist or has not been published in the environment"}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := h.stream(5, 10)
			s.api = doerFunc(func(ctx context.Context, req huaweiapi.Request) ([]byte, error) {
				if strings.HasSuffix(req.Path, "/audit-log-link") && strings.Contains(string(req.Body), `"gone"`) {
					return nil, tc.err
				}
				return h.Do(ctx, req)
			})
			r, err := s.Open(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var items, reasons []string
			for range 20 {
				p, err := r.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if tc.letter {
						t.Fatalf("Next: %v", err)
					}
					if !pipeline.IsPermanent(err) {
						t.Errorf("%v: not permanent", err)
					}
					return
				}
				for _, raw := range p.Records {
					var e sqlEntry
					_ = e.decode(raw)
					items = append(items, e.AuditLogID+"/"+e.RecordID)
				}
				for _, inv := range p.Invalid {
					reasons = append(reasons, inv.Reason)
				}
			}
			if !tc.letter {
				t.Fatal("the stream went on past a refusal that does not name the file")
			}
			if !slices.Equal(items, []string{"b/b-0", "b/b-1"}) || len(reasons) != 1 || !strings.Contains(reasons[0], "does not exist") {
				t.Errorf("statements %v, dead letters %q", items, reasons)
			}
		})
	}
}

// TestSQLReviewCancelWhileSkipping: a resume without Range skips the
// records delivered, reading the file again from its start. Ending the
// run (ctx) ends that read too, instead of downloading to the position.
func TestSQLReviewCancelWhileSkipping(t *testing.T) {
	body := csvFile("a", 400, false)
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: body}})
	h.noRange = true
	s := h.stream(5, 390)
	cursor, _ := resumeMidFile(t, s)
	h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
		// Slowly: 64 bytes every 10ms (the whole file takes seconds).
		for i := 0; i < len(f.body); i += 64 {
			if _, err := w.Write(f.body[i:min(i+64, len(f.body))]); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return true
			case <-time.After(10 * time.Millisecond):
			}
		}
		return true
	}
	r, err := s.Open(context.Background(), cursor)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.(io.Closer).Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = r.Next(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Next returned %s after its ctx ended (%v)", took, err)
	}
	if err == nil {
		t.Error("Next succeeded although its ctx ended while skipping")
	}
}

// TestSQLReviewRangeAnsweredCompressed: a server that compresses on the
// way (Content-Encoding: gzip, though the reader asks for identity)
// answers a ranged resume with the compressed rest, whose bytes are no
// record: the reader must not parse them as text.
func TestSQLReviewRangeAnsweredCompressed(t *testing.T) {
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: csvFile("a", 20, false)}})
	s := h.stream(5, 4)
	cursor, rest := resumeMidFile(t, s)
	h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
		rg := r.Header.Get("Range")
		if rg == "" {
			return false
		}
		from, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(f.body)-1, len(f.body)))
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write(gzipped(f.body[from:]))
		return true
	}
	got, err := resumeItems(t, s, cursor, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, rest) {
		t.Errorf("got %.300v\nwant %v", got, rest)
	}
}

// TestSQLReviewRepeatedRecordIDKeepsBothStatements: two different
// statements of one file with the same record_id (the documents do not say
// record_id is unique within a file; a counter restarted by a failover in
// the middle of the half hour would repeat) get the same event.id, so a
// sink that dedupes by it keeps one: the other is lost without a trace.
func TestSQLReviewRepeatedRecordIDKeepsBothStatements(t *testing.T) {
	s := goldenSQLStream()
	ref := fileRef{id: "f"}
	var ids []string
	for n, sql := range []string{"SELECT 1", "DROP TABLE t"} {
		raw := s.envelope(ref, int64(n), []byte(`{"record_id":"7","timestamp":"2025-06-01T00:00:00Z","sqltext":"`+sql+`"}`))
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	if ids[0] == ids[1] {
		t.Errorf("two statements, one event.id %s", ids[0])
	}
}

// TestSQLReviewRangeAnsweredShort: a server (a CDN before OBS) answers an
// open-ended range with a 206 of only part of the rest (Content-Range
// bytes N-M/size, M+1 < size). Reading that body to its end is not the
// file's end: the statements after M must not be lost.
func TestSQLReviewRangeAnsweredShort(t *testing.T) {
	h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: csvFile("a", 20, false)}})
	s := h.stream(5, 4)
	cursor, rest := resumeMidFile(t, s)
	h.serve = func(w http.ResponseWriter, r *http.Request, f reviewFile) bool {
		rg := r.Header.Get("Range")
		if rg == "" {
			return false
		}
		from, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		to := min(from+100, len(f.body))
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to-1, len(f.body)))
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write(f.body[from:to])
		return true
	}
	got, err := resumeItems(t, s, cursor, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, rest) {
		t.Errorf("got %.300v\nwant %v", got, rest)
	}
}

func TestSQLReviewRestOfFile(t *testing.T) {
	for _, tc := range []struct {
		h    string
		off  int64
		want bool
	}{
		{"bytes 10-99/100", 10, true},
		{"bytes 10-99/*", 10, true},
		{"bytes 10-49/100", 10, false}, // a part of the rest
		{"bytes 0-99/100", 10, false},  // from elsewhere
		{"bytes 10-99/99", 10, false},
		{"bytes */100", 10, false},
		{"bytes 10-9/100", 10, false},
		{"", 10, false},
		{"items 10-99/100", 10, false},
	} {
		if got := restOfFile(tc.h, tc.off); got != tc.want {
			t.Errorf("restOfFile(%q, %d) = %v", tc.h, tc.off, got)
		}
	}
}

// TestSQLReviewLinkShapeFailsTheStream: answers that would be the same
// for every file (links of plain http to a remote host, two links for one
// id) fail the stream with a permanent error, keeping its checkpoint,
// rather than dead-lettering every file as it comes: after the fix (or an
// understanding of the answer) the files are still there to read. No
// link for the id concerns that file: it is dead-lettered.
func TestSQLReviewLinkShapeFailsTheStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		links  func(h *reviewHost, id string) []string
		letter bool
	}{
		{"http link", func(h *reviewHost, id string) []string {
			return []string{"http://obs.example.com/" + id + "?Signature=s3cr3t"}
		}, false},
		{"two links", func(h *reviewHost, id string) []string {
			return []string{h.srv.URL + "/" + id + "?Signature=s3cr3t", h.srv.URL + "/" + id + "?Signature=s3cr3t2"}
		}, false},
		{"no link", func(h *reviewHost, id string) []string { return nil }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newReviewHost(t, []reviewFile{{id: "a", end: reviewStart.Add(time.Hour), body: csvFile("a", 2, false)}})
			h.links = func(ids []string) []string { return tc.links(h, ids[0]) }
			s := h.stream(5, 10)
			r, err := s.Open(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var letters []string
			for range 10 {
				p, err := r.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if strings.Contains(err.Error(), "s3cr3t") {
						t.Errorf("error shows the signature: %v", err)
					}
					if tc.letter || !pipeline.IsPermanent(err) {
						t.Fatalf("Next: %v (permanent %v)", err, pipeline.IsPermanent(err))
					}
					return
				}
				for _, inv := range p.Invalid {
					letters = append(letters, inv.Reason)
				}
			}
			if !tc.letter {
				t.Fatalf("the file was dead-lettered (%q) instead of the stream failing", letters)
			}
			if len(letters) != 1 {
				t.Errorf("dead letters %q, want one", letters)
			}
		})
	}
}
