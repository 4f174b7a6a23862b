package simulator

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestTaurusDBListingVariants: the switches for what the documents leave
// open change what the TaurusDB list serves as they say.
func TestTaurusDBListingVariants(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	list := func(tc TaurusDBConfig, from, to time.Time) (ends []time.Time, total int64) {
		t.Helper()
		cfg := testConfig()
		cfg.Now = func() time.Time { return start.Add(48 * time.Hour) }
		tc.Instances, tc.Files, tc.Start, tc.MaxFileSpan = []string{"tdb"}, 40, start.Add(3*time.Hour), 2*time.Hour
		cfg.TaurusDB = tc
		s := New(cfg)
		q := url.Values{"start_time": {from.Format(taurusTimeLayout)}, "end_time": {to.Format(taurusTimeLayout)}, "limit": {"100"}}
		w := get(t, s, "/v3/"+cfg.ProjectID+"/instances/tdb/audit-logs?"+strings.ReplaceAll(q.Encode(), "+", "%20"))
		var p struct {
			AuditLogs []struct {
				EndTime string `json:"end_time"`
			} `json:"audit_logs"`
			Total int64 `json:"total_count"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		for _, l := range p.AuditLogs {
			e, _ := time.Parse(taurusTimeLayout, l.EndTime)
			ends = append(ends, e)
		}
		return ends, p.Total
	}
	from, to := start.Add(4*time.Hour), start.Add(6*time.Hour)
	byEnd, _ := list(TaurusDBConfig{}, from, to)
	byBegin, _ := list(TaurusDBConfig{Filter: FilterBegin}, from, to)
	byOverlap, _ := list(TaurusDBConfig{Filter: FilterOverlap}, from, to)
	if len(byOverlap) <= len(byEnd) || len(byOverlap) < len(byBegin) {
		t.Errorf("overlap lists %d files, end %d, begin %d", len(byOverlap), len(byEnd), len(byBegin))
	}
	ahead := 0
	for _, e := range byBegin {
		if e.After(to) {
			ahead++
		}
	}
	if ahead == 0 {
		t.Error("a begin_time filter lists no file that ends after the range")
	}
	asc, _ := list(TaurusDBConfig{Listing: Listing{Order: OldestFirst}}, from, to)
	for i := 1; i < len(asc); i++ {
		if asc[i].Before(asc[i-1]) {
			t.Fatalf("oldest first: %s after %s", asc[i], asc[i-1])
		}
	}
	for i := 1; i < len(byEnd); i++ {
		if byEnd[i].After(byEnd[i-1]) {
			t.Fatalf("newest first: %s after %s", byEnd[i], byEnd[i-1])
		}
	}
	// An exclusive start drops a file that ends exactly at it.
	edge := byEnd[len(byEnd)-1]
	incl, _ := list(TaurusDBConfig{}, edge, to)
	excl, _ := list(TaurusDBConfig{Listing: Listing{StartExclusive: true}}, edge, to)
	if len(excl) >= len(incl) {
		t.Errorf("exclusive start lists %d, inclusive %d", len(excl), len(incl))
	}
	if _, total := list(TaurusDBConfig{Listing: Listing{TotalExtra: 5}}, from, to); total != int64(len(byEnd))+5 {
		t.Errorf("total %d with TotalExtra 5 for %d files", total, len(byEnd))
	}
}
