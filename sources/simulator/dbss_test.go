package simulator

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestTaurusDBAndDBSSValidation(t *testing.T) {
	cfg := testConfig()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { return start.Add(48 * time.Hour) }
	cfg.TaurusDB = TaurusDBConfig{Instances: []string{"tdb"}, Files: 50, Start: start}
	cfg.DBSS = DBSSConfig{Instances: []string{"dbss"}, Records: 50, Start: start}
	s := New(cfg)
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return strings.ReplaceAll(v.Encode(), "+", "%20")
	}
	tpath := "/v3/" + cfg.ProjectID + "/instances/tdb/audit-logs?"
	for _, tt := range []struct {
		query string
		code  int
	}{
		{q("start_time", "2025-01-01T08:00:00+0800", "end_time", "2025-01-02T08:00:00+0800", "limit", "100"), 200},
		{q("start_time", "2025-01-01T08:00:00+0800"), 400},
		{q("start_time", "2025-01-01T08:00:00Z", "end_time", "2025-01-02T08:00:00+0800"), 400},
		{"start_time=2025-01-01T08:00:00+0800&end_time=2025-01-02T08:00:00+0800", 400}, // '+' unescaped
		{q("start_time", "2025-01-01T08:00:00+0800", "end_time", "2025-03-01T08:00:00+0800"), 400},
		{q("start_time", "2025-01-02T08:00:00+0800", "end_time", "2025-01-01T08:00:00+0800"), 400},
		{q("start_time", "2025-01-01T08:00:00+0800", "end_time", "2025-01-02T08:00:00+0800", "limit", "0"), 400},
		{q("start_time", "2025-01-01T08:00:00+0800", "end_time", "2025-01-02T08:00:00+0800", "offset", "x"), 400},
	} {
		if w := get(t, s, tpath+tt.query); w.Code != tt.code {
			t.Errorf("taurusdb %s: %d %s, want %d", tt.query, w.Code, w.Body, tt.code)
		}
	}
	post := func(path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("X-Auth-Token", testToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	for _, path := range []string{"/v1/" + cfg.ProjectID + "/audit/dbss/operation-log", "/v1/" + cfg.ProjectID + "/dbss/dbss/audit/operate-log"} {
		for _, tt := range []struct {
			body string
			code int
		}{
			{`{"time":{"start_time":"2025-01-01 00:00:00","end_time":"2025-01-02 00:00:00"},"page":"1","size":"100"}`, 200},
			{`{"time":{"time_range":"HOUR"},"page":1,"size":10}`, 200},
			{`{"time":{"start_time":"2025-01-01 00:00:00"},"page":"1","size":"10"}`, 400},
			{`{"time":{"start_time":"2025-01-01T00:00:00Z","end_time":"2025-01-02 00:00:00"}}`, 400},
			{`{"time":{"time_range":"YEAR"}}`, 400},
			{`{"page":"0"}`, 400},
			{`{"size":"101"}`, 400},
			{`{"action":"RENAME"}`, 400},
			{`not json`, 400},
		} {
			w := post(path, tt.body)
			if w.Code != tt.code {
				t.Errorf("dbss %s %s: %d %s, want %d", path, tt.body, w.Code, w.Body, tt.code)
			}
			if w.Code == 400 && !strings.Contains(w.Body.String(), `{"error":{"error_code":`) {
				t.Errorf("dbss error body %s is not the documented shape", w.Body)
			}
			if w.Code == 200 && !strings.Contains(w.Body.String(), `"total_num":`) {
				t.Errorf("dbss body %s", w.Body)
			}
		}
	}
	if n := len(s.DBSSRecords("dbss")); n != 50 {
		t.Errorf("DBSSRecords: %d", n)
	}
	if n := len(s.TaurusDBRecords("tdb")); n != 50 {
		t.Errorf("TaurusDBRecords: %d", n)
	}
	// Deterministic: a second server from the same config serves the same.
	s2 := New(cfg)
	a, b := s.DBSSRecords("dbss"), s2.DBSSRecords("dbss")
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("record %d differs between two servers of one seed", i)
		}
	}
}
