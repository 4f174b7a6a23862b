package simulator

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentUse runs paging with drift, insertions and inspection at once;
// its value is under the race detector.
func TestConcurrentUse(t *testing.T) {
	cfg := testConfig()
	cfg.Faults = Faults{DriftPerPage: 1, ThrottleRate: 0.1, MalformedRate: 0.1}
	s := New(cfg)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				op := []string{"pull", "create", "delete"}[(g+i)%3]
				w := get(t, s, auditPath(testProject, testInstance)+fmt.Sprintf("?operation=%s&limit=5&offset=%d", op, 5*(i%6)))
				if w.Code != 200 && w.Code != 429 {
					t.Errorf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if err := s.InsertSWR(testInstance, "pull", 2); err != nil {
				t.Error(err)
			}
			_ = s.SWRRecords(testInstance, "pull")
			_ = s.Stats()
		}
	})
	wg.Wait()

	// Every event number was handed out once: ids stay unique.
	seen := make(map[int64]bool)
	for _, op := range []string{"pull", "create", "delete"} {
		for _, r := range s.SWRRecords(testInstance, op) {
			if seen[r.ID] {
				t.Fatalf("duplicate id %d", r.ID)
			}
			seen[r.ID] = true
		}
	}
	if st := s.Stats(); st.Requests != 400 || st.Pages+st.Throttled != 400 {
		t.Errorf("stats %+v", st)
	}
}
