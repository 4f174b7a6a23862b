package simulator

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const sqlTestInstance = "3d39c18788b54a919bab633874c159dfin07"

// sqlServer is a simulator serving SQL files on a clock the test moves.
type sqlServer struct {
	*Server
	mu  sync.Mutex
	now time.Time
}

func newSQLServer(sql TaurusDBSQLConfig) *sqlServer {
	s := &sqlServer{now: testStart.Add(24 * time.Hour)}
	cfg := testConfig()
	cfg.Now = func() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return s.now }
	cfg.TaurusDB = TaurusDBConfig{Instances: []string{sqlTestInstance}, Files: 3, Start: testStart, Interval: time.Minute, SQL: sql}
	s.Server = New(cfg)
	return s
}

func (s *sqlServer) advance(d time.Duration) { s.mu.Lock(); s.now = s.now.Add(d); s.mu.Unlock() }

// links asks for the links of ids with a token.
func (s *sqlServer) links(t *testing.T, body string) (*httptest.ResponseRecorder, []string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v3/"+testProject+"/instances/"+sqlTestInstance+"/audit-log-link", strings.NewReader(body))
	r.Header.Set("X-Auth-Token", testToken)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	var out struct {
		Links []string `json:"links"`
	}
	if w.Code == 200 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("links answer %s: %v", w.Body, err)
		}
	}
	return w, out.Links
}

// download GETs link with extra headers.
func (s *sqlServer) download(link string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, strings.TrimPrefix(link, "http://example.com"), nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestTaurusDBSQLLinksAndDownloads(t *testing.T) {
	s := newSQLServer(TaurusDBSQLConfig{Records: 30, Range: true, LinkTTL: 2 * time.Minute})
	files := s.TaurusDBRecords(sqlTestInstance)
	w, links := s.links(t, `{"ids":["`+files[1].ID+`","`+files[0].ID+`"]}`)
	if w.Code != 200 || len(links) != 2 || !strings.Contains(links[0], files[1].ID) || !strings.Contains(links[1], files[0].ID) {
		t.Fatalf("links: %d %s", w.Code, w.Body)
	}
	full := s.download(links[0])
	if full.Code != 200 {
		t.Fatalf("download: %d %s", full.Code, full.Body)
	}
	r := csv.NewReader(bytes.NewReader(full.Body.Bytes()))
	rows, err := r.ReadAll()
	if err != nil || len(rows) != 31 || strings.Join(rows[0], ",") != strings.Join(sqlFields, ",") {
		t.Fatalf("file: %d rows, %v; header %v", len(rows), err, rows[0])
	}
	recs := s.TaurusDBSQLRecords(sqlTestInstance, files[1].ID)
	for i, rec := range recs {
		if strings.Join(rows[i+1], "\x00") != strings.Join(rec.values(), "\x00") {
			t.Errorf("row %d is %q, want %q", i, rows[i+1], rec.values())
		}
	}
	// Range: the rest of the same bytes.
	body := full.Body.Bytes()
	for _, from := range []int{1, len(body) / 2, len(body) - 1} {
		part := s.download(links[0], "Range", "bytes="+itoa(from)+"-")
		if part.Code != http.StatusPartialContent || !bytes.Equal(part.Body.Bytes(), body[from:]) || !strings.HasPrefix(part.Header().Get("Content-Range"), "bytes "+itoa(from)+"-") {
			t.Errorf("range from %d: %d, %s, %d bytes", from, part.Code, part.Header().Get("Content-Range"), part.Body.Len())
		}
	}
	if past := s.download(links[0], "Range", "bytes="+itoa(len(body))+"-"); past.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %d", past.Code)
	}
	// An ETag, stable, per file; If-Match with another is a 412.
	etag := full.Header().Get("ETag")
	if etag == "" || s.download(links[0]).Header().Get("ETag") != etag || s.download(links[1]).Header().Get("ETag") == etag {
		t.Errorf("ETag %q: not stable per file", etag)
	}
	if w := s.download(links[0], "Range", "bytes=5-", "If-Match", etag); w.Code != http.StatusPartialContent {
		t.Errorf("If-Match with the file's ETag: %d", w.Code)
	}
	if w := s.download(links[0], "Range", "bytes=5-", "If-Match", `"other"`); w.Code != http.StatusPreconditionFailed {
		t.Errorf("If-Match with another ETag: %d", w.Code)
	}
	// Credentials are refused and counted.
	for _, h := range []string{"Authorization", "X-Auth-Token", "X-Sdk-Date"} {
		if w := s.download(links[0], h, "x"); w.Code != http.StatusBadRequest {
			t.Errorf("download with %s: %d", h, w.Code)
		}
	}
	if st := s.TaurusDBSQLStats(); st.CredentialLeaks != 3 || st.LinkRequests != 1 {
		t.Errorf("stats %+v", st)
	}
	// A tampered signature and an expired link are 403.
	if w := s.download(strings.Replace(links[0], "Signature=", "Signature=0", 1)); w.Code != http.StatusForbidden {
		t.Errorf("tampered link: %d", w.Code)
	}
	s.advance(2 * time.Minute)
	if w := s.download(links[1]); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "expired") {
		t.Errorf("expired link: %d %s", w.Code, w.Body)
	}
	// The link endpoint's limits.
	many := `{"ids":[` + strings.TrimSuffix(strings.Repeat(`"`+files[0].ID+`",`, 51), ",") + `]}`
	for _, bad := range []string{many, `{"ids":[]}`, `{"ids":["nope"]}`, `not json`} {
		if w, _ := s.links(t, bad); w.Code != http.StatusBadRequest {
			t.Errorf("links %.40s: %d", bad, w.Code)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestTaurusDBSQLFormats: each format carries the same records; gzip is
// the plain file compressed; the unreadable one is binary.
func TestTaurusDBSQLFormats(t *testing.T) {
	read := func(cfg TaurusDBSQLConfig) []byte {
		s := newSQLServer(cfg)
		id := s.TaurusDBRecords(sqlTestInstance)[0].ID
		var b bytes.Buffer
		if err := s.WriteTaurusDBSQLFile(&b, sqlTestInstance, id); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	plain := read(TaurusDBSQLConfig{Records: 25})
	zr, err := gzip.NewReader(bytes.NewReader(read(TaurusDBSQLConfig{Records: 25, Gzip: true})))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain) {
		t.Errorf("gzip file does not hold the plain file: %v", err)
	}
	noHeader := read(TaurusDBSQLConfig{Records: 25, Format: SQLCSV})
	if !bytes.Equal(plain[bytes.IndexByte(plain, '\n')+1:], noHeader) {
		t.Error("the CSV without header is not the CSV with header minus its first row")
	}
	lines := strings.Split(strings.TrimSuffix(string(read(TaurusDBSQLConfig{Records: 25, Format: SQLJSONLines, MalformedEvery: 10})), "\n"), "\n")
	if len(lines) != 25 {
		t.Fatalf("%d JSON lines", len(lines))
	}
	for i, l := range lines {
		var m map[string]string
		err := json.Unmarshal([]byte(l), &m)
		if bad := (i+1)%10 == 0; bad != (err != nil) || (!bad && len(m) != len(sqlFields)) {
			t.Errorf("line %d (malformed %v): %v, %d fields", i, bad, err, len(m))
		}
	}
	if u := read(TaurusDBSQLConfig{Records: 25, Format: SQLUnreadable}); bytes.IndexByte(u, 0) < 0 {
		t.Error("the unreadable file has no NUL byte")
	}
}
