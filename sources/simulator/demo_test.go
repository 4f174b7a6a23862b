package simulator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDemoConfig(t *testing.T) {
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("CST", 8*3600))
	cfg := DemoConfig(base)
	s := New(cfg)
	from := base.Add(-24 * time.Hour)
	for _, inst := range cfg.SWR.Instances {
		for _, op := range []string{"pull", "create", "delete"} {
			recs := s.SWRRecords(inst, op)
			if len(recs) != 3000 {
				t.Errorf("%s %s: %d records", inst, op, len(recs))
			}
			first, last := recs[0].OpTime, recs[len(recs)-1].OpTime
			if !first.After(from) || !last.Before(base) {
				t.Errorf("%s %s: records span %v..%v, outside the 24 hours before %v", inst, op, first, last, base)
			}
		}
	}

	// The DBSS SQL audit and alarm logs lie within the window the
	// exporter's default start time reads, settled.
	ins := cfg.DBSS.Instances[0]
	sqls, alarms := s.DBSSSQLRecords(ins), s.DBSSAlarms(ins)
	if len(sqls) != DemoDBSSSQLRecords || len(alarms) != DemoDBSSAlarms {
		t.Errorf("DBSS: %d SQL records, %d alarms; want %d, %d", len(sqls), len(alarms), DemoDBSSSQLRecords, DemoDBSSAlarms)
	}
	settled := base.Add(-5 * time.Minute)
	if first, last := sqls[0].Time, sqls[len(sqls)-1].Time; !first.After(from) || !last.Before(settled) {
		t.Errorf("DBSS SQL records span %v..%v, outside the 24 hours before %v", first, last, base)
	}
	if first, last := alarms[0].Time, alarms[len(alarms)-1].Time; !first.After(from) || !last.Before(settled) {
		t.Errorf("DBSS alarms span %v..%v, outside the 24 hours before %v", first, last, base)
	}

	r := httptest.NewRequest(http.MethodGet, auditPath(DemoProjectID, cfg.SWR.Instances[0])+"?operation=pull&limit=100", nil)
	r.Header.Set("X-Auth-Token", DemoToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("demo token: %d %s", w.Code, w.Body)
	}
}

func BenchmarkAuditLogsPage(b *testing.B) {
	cfg := DemoConfig(time.Now())
	s := New(cfg)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			target := auditPath(DemoProjectID, cfg.SWR.Instances[i%2]) + fmt.Sprintf("?operation=pull&limit=100&offset=%d", 100*(i%30))
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.Header.Set("X-Auth-Token", DemoToken)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
			i++
		}
	})
	b.ReportMetric(float64(s.Stats().Records)/b.Elapsed().Seconds(), "records/s")
}
