package dbss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// listAPI serves the SQL audit or alarm list of one instance from memory,
// with the misbehaviours the adversarial tests below need. Records are
// ascending by time; each is the JSON of the "sql" object or the alarm.
type listAPI struct {
	kind  Kind
	recs  []string
	times []time.Time

	mu    sync.Mutex
	calls int // answered requests of the current path
	// currentAnswers, when > 0, is how many requests the current path
	// answers; after them it is gone (404), as when the newer API is
	// withdrawn or a gateway route is dropped between two pages.
	currentAnswers int
	// legacyDesc lists newest first on the older path, whatever
	// time_order asks.
	legacyDesc bool
	// ignorePage serves the first page whatever "page" asks.
	ignorePage bool
	// totalCap caps the total (a search backend counting up to 10,000)
	// and listCap the records listed, when > 0.
	totalCap, listCap int
	// throttlePage, when > 0, is a page the current path answers 429
	// once, before anything else.
	throttlePage int
	// throttled is closed when the throttled page was asked for,
	// fellBack when the older path first answered after the newer one
	// was gone; both set with throttlePage.
	throttled, fellBack chan struct{}
	fellBackDone        bool
	// requests counts every request.
	requests int
}

func (a *listAPI) Do(_ context.Context, req huaweiapi.Request) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	if a.requests > 100000 {
		return nil, pipeline.Permanent(errors.New("runaway: more than 100000 requests"))
	}
	current := strings.HasPrefix(req.Path, "/v2/")
	if current && a.throttlePage > 0 && strings.Contains(string(req.Body), `"page":`+strconv.Itoa(a.throttlePage)+`,`) {
		// Throttled once, answered only after a request of the next page
		// fell back to the older path (or a second passed).
		a.throttlePage = 0
		close(a.throttled)
		a.mu.Unlock()
		select {
		case <-a.fellBack:
		case <-time.After(time.Second):
		}
		a.mu.Lock()
		return nil, &huaweiapi.APIError{Status: http.StatusTooManyRequests, Code: "APIGW.0308", Message: "throttled"}
	}
	if !current && a.fellBack != nil && a.calls >= a.currentAnswers {
		defer func() {
			if !a.fellBackDone {
				a.fellBackDone = true
				close(a.fellBack)
			}
		}()
	}
	if current && a.currentAnswers > 0 {
		if a.calls >= a.currentAnswers {
			if a.throttled != nil {
				// Gone only once the throttled request arrived.
				a.mu.Unlock()
				select {
				case <-a.throttled:
				case <-time.After(time.Second):
				}
				a.mu.Lock()
			}
			return nil, &huaweiapi.APIError{Status: http.StatusNotFound, Code: "APIGW.0101", Message: "The API does not exist"}
		}
		a.calls++
	}
	var q struct {
		Time struct {
			StartTime string `json:"start_time"`
			EndTime   string `json:"end_time"`
		} `json:"time"`
		Page, Size int
	}
	if err := json.Unmarshal(req.Body, &q); err != nil {
		return nil, pipeline.Permanent(err)
	}
	from, err1 := time.Parse(bodyLayout, q.Time.StartTime)
	to, err2 := time.Parse(bodyLayout, q.Time.EndTime)
	if err1 != nil || err2 != nil || q.Page < 1 || q.Size < 1 {
		return nil, pipeline.Permanent(fmt.Errorf("bad request %s", req.Body))
	}
	var match []string
	for i, at := range a.times {
		if !at.Before(from) && !at.After(to) {
			match = append(match, a.recs[i])
		}
	}
	if !current && a.legacyDesc {
		slices.Reverse(match)
	}
	total := len(match)
	if a.listCap > 0 && len(match) > a.listCap {
		match = match[:a.listCap]
	}
	if a.totalCap > 0 {
		total = min(total, a.totalCap)
	}
	off := (q.Page - 1) * q.Size
	if a.ignorePage {
		off = 0
	}
	page := match[min(off, len(match)):min(off+q.Size, len(match))]
	var b strings.Builder
	if a.kind == SQL {
		fmt.Fprintf(&b, `{"total":%d,"count":%d,"sqls":[`, total, total)
		for i, r := range page {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"sql":` + r + `}`)
		}
	} else {
		fmt.Fprintf(&b, `{"total_num":%d,"alarm_log":[`, total)
		b.WriteString(strings.Join(page, ","))
	}
	b.WriteString("]}")
	return []byte(b.String()), nil
}

var reviewStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// sqlRecords returns n SQL records, perSecond to a second, from start,
// each told apart by its statement (no id, as the position design
// assumes possible).
func sqlRecords(n, perSecond int, start time.Time) ([]string, []time.Time) {
	recs, times := make([]string, n), make([]time.Time, n)
	for i := range n {
		at := start.Add(time.Duration(i/perSecond) * time.Second)
		recs[i] = `{"sql_statement":"SELECT ` + strconv.Itoa(i) + `","query_type":"SELECT","sql_response":"SUCCESS","start_time":"` + at.Format(bodyLayout) + `"}`
		times[i] = at
	}
	return recs, times
}

// alarmRecords returns n alarms without id, perSecond to a second.
func alarmRecords(n, perSecond int, start time.Time) ([]string, []time.Time) {
	recs, times := make([]string, n), make([]time.Time, n)
	for i := range n {
		at := start.Add(time.Duration(i/perSecond) * time.Second)
		recs[i] = `{"alarm_time":"` + at.Format(bodyLayout) + `","alarm_type":"RISK_RULE","alarm_description":"alarm ` + strconv.Itoa(i) + `"}`
		times[i] = at
	}
	return recs, times
}

func reviewStream(api huaweiapi.Doer, k Kind, pageSize, maxRecords int, now time.Time) *Stream {
	return reviewStreamConcurrent(api, k, pageSize, maxRecords, 1, now)
}

// reviewStreamConcurrent is reviewStream asking up to concurrency pages
// of a window at once.
func reviewStreamConcurrent(api huaweiapi.Doer, k Kind, pageSize, maxRecords, concurrency int, now time.Time) *Stream {
	cfg := Config{Instances: []string{"ins"}, Endpoint: "http://dbss.test", PageSize: pageSize, Streams: []string{string(k)}}
	return NewStreams(cfg, api, "cn-north-4", "proj", Options{
		Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: maxRecords, Concurrency: concurrency},
		Start:  reviewStart,
		Now:    func() time.Time { return now },
	})[0]
}

// missing returns the records of want that got does not hold.
func missing(want []string, got [][]byte) []string {
	seen := map[string]bool{}
	for _, g := range got {
		seen[string(g)] = true
	}
	var out []string
	for _, w := range want {
		if !seen[w] {
			out = append(out, w)
		}
	}
	return out
}

// TestFallbackInTheMiddleOfAWindow: the newer path answers the first page
// of a window and is then gone; the older path lists newest first. SQL
// records (and alarms without id) are keyed by their position in the
// listing, so a listing whose first page came from one path and the rest
// from the other would hold every position once, some records twice and
// others never: the window must be read again on the older path alone.
func TestFallbackInTheMiddleOfAWindow(t *testing.T) {
	for _, k := range []Kind{SQL, Alarm} {
		for _, perSecond := range []int{1, 40} { // a window of many seconds; one dense second, streamed
			for _, conc := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/per-second=%d/concurrency=%d", k, perSecond, conc), func(t *testing.T) {
					gen := sqlRecords
					if k == Alarm {
						gen = alarmRecords
					}
					recs, times := gen(30, perSecond, reviewStart.Add(10*time.Second))
					api := &listAPI{kind: k, recs: recs, times: times, currentAnswers: 1, legacyDesc: true}
					s := reviewStreamConcurrent(api, k, 10, 100, conc, reviewStart.Add(time.Hour))
					got, _ := windowtest.Drain(t, s, nil)
					if !s.UsesLegacyPath() {
						t.Fatal("the stream did not fall back to the older path")
					}
					if m := missing(recs, got); len(m) > 0 {
						t.Errorf("%d of %d records never delivered, e.g. %s", len(m), len(recs), m[0])
					}
				})
			}
		}
	}
}

// drainErr reads s from nil until io.EOF or an error that is permanent or
// repeats more than 20 times, returning the records and the last error.
func drainErr(s *Stream) ([][]byte, error) {
	rd, err := s.Open(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	fails := 0
	for {
		p, err := rd.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			if fails++; pipeline.IsPermanent(err) || fails > 20 {
				return out, err
			}
			continue
		}
		out = append(out, p.Records...)
	}
}

// TestAlarmsWithoutIDWhenTheAPIIgnoresPage: an API that serves its first
// page whatever "page" asks lists alarms without id again and again at new
// positions, which the window cannot tell from new alarms. As for the SQL
// audit, alarms listed at or after the total must stop the stream with an
// error, not page on for millions of records.
func TestAlarmsWithoutIDWhenTheAPIIgnoresPage(t *testing.T) {
	recs, times := alarmRecords(25, 25, reviewStart.Add(10*time.Second))
	api := &listAPI{kind: Alarm, recs: recs, times: times, ignorePage: true}
	s := reviewStream(api, Alarm, 10, 100, reviewStart.Add(time.Hour))
	got, err := drainErr(s)
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), `ignore "page"`) {
		t.Errorf("got %v after %d requests, want a permanent error saying the API may ignore \"page\"", err, api.requests)
	}
	if len(got) > 10*len(recs) {
		t.Errorf("delivered %d records of %d before stopping", len(got), len(recs))
	}
}

// TestWindowAboveTheListCap: the API may list only the first 10,000
// records of a query, its total counting all or capped at 10,000 too.
// HWCAUDIT_WINDOW_MAX_RECORDS accepts up to 1,000,000; a window of more
// than 10,000 records that is not split can never be listed whole (the
// stream stalls on it) or, with a capped total, looks whole and loses the
// rest. Windows of the SQL and alarm streams are split below the cap
// whatever the setting.
func TestWindowAboveTheListCap(t *testing.T) {
	for _, k := range []Kind{SQL, Alarm} {
		for _, capTotal := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/total-capped=%v", k, capTotal), func(t *testing.T) {
				gen := sqlRecords
				if k == Alarm {
					gen = alarmRecords
				}
				recs, times := gen(15000, 500, reviewStart.Add(10*time.Second))
				api := &listAPI{kind: k, recs: recs, times: times, listCap: 10000}
				if capTotal {
					api.totalCap = 10000
				}
				s := reviewStream(api, k, 100, 20000, reviewStart.Add(time.Hour))
				got, err := drainErr(s)
				if err != nil {
					t.Fatalf("after %d records: %v", len(got), err)
				}
				if m := missing(recs, got); len(m) > 0 {
					t.Errorf("%d of %d records never delivered, e.g. %s", len(m), len(recs), m[0])
				}
			})
		}
	}
}

// TestDenseSecondAboveTheListCap: one second holding more records than
// the API lists of a query (10,000), its total capped at the same number.
// The listing ends where the total says and adds up, so the second is
// taken as read whole and the records past the cap are never delivered,
// nor is anything reported. They cannot be read (no narrower query
// exists); the stream should at least fail loudly or count them.
func TestDenseSecondAboveTheListCap(t *testing.T) {
	t.Skip("known: a second of more than 10,000 SQL records behind an API whose total is capped at 10,000 loses the rest silently; unreadable either way, the choice between a stream blocked on it and a reported loss is the lead's")
	recs, times := sqlRecords(10050, 10050, reviewStart.Add(10*time.Second))
	api := &listAPI{kind: SQL, recs: recs, times: times, listCap: 10000, totalCap: 10000}
	s := reviewStream(api, SQL, 100, 5000, reviewStart.Add(time.Hour))
	got, err := drainErr(s)
	if m := missing(recs, got); len(m) > 0 && err == nil {
		t.Errorf("%d of %d records never delivered and no error", len(m), len(recs))
	}
}

// TestAdjacentBusySecondsUnderTheListCap: each second holds fewer
// records than the API lists of a query (10,000), but a one-second
// window's query also spans the second before it (and the end second when
// end_time is inclusive): three seconds of 6,000 records each make every
// one-second query list 12,000 to 18,000 records, past the cap. With the
// total counting all, the stream stalls (and re-delivers each pass); with
// the total capped, the records of a second past the cap are lost.
func TestAdjacentBusySecondsUnderTheListCap(t *testing.T) {
	t.Skip("known: a one-second window's query spans up to three seconds, so adjacent seconds of more than ~5,000 records each (~3,333 with end_time inclusive) exceed the 10,000-record list cap: the stream stalls (total counting all) or loses the records past the cap (total capped); fixing it needs the window reader to learn the API's bound semantics and narrow the query")
	for _, capTotal := range []bool{false, true} {
		t.Run(fmt.Sprintf("total-capped=%v", capTotal), func(t *testing.T) {
			recs, times := sqlRecords(18000, 6000, reviewStart.Add(10*time.Second))
			api := &listAPI{kind: SQL, recs: recs, times: times, listCap: 10000}
			if capTotal {
				api.totalCap = 10000
			}
			s := reviewStream(api, SQL, 100, 5000, reviewStart.Add(time.Hour))
			got, err := drainErr(s)
			if err != nil {
				t.Fatalf("after %d records: %v", len(got), err)
			}
			if m := missing(recs, got); len(m) > 0 {
				t.Errorf("%d of %d records never delivered, e.g. %s", len(m), len(recs), m[0])
			}
		})
	}
}

// TestFallbackBesideAThrottledPage: pages are asked for concurrently; one
// is throttled (429) while the next one finds the newer path gone and
// falls back. The throttled page's error must not hide the switch: the
// first page, kept from the newer path for the retry, would otherwise be
// joined to the older path's pages in another order.
func TestFallbackBesideAThrottledPage(t *testing.T) {
	for _, k := range []Kind{SQL, Alarm} {
		t.Run(string(k), func(t *testing.T) {
			gen := sqlRecords
			if k == Alarm {
				gen = alarmRecords
			}
			recs, times := gen(30, 1, reviewStart.Add(10*time.Second))
			api := &listAPI{kind: k, recs: recs, times: times, currentAnswers: 1, legacyDesc: true,
				throttlePage: 2, throttled: make(chan struct{}), fellBack: make(chan struct{})}
			s := reviewStreamConcurrent(api, k, 10, 100, 3, reviewStart.Add(time.Hour))
			got, _ := windowtest.Drain(t, s, nil)
			if !s.UsesLegacyPath() {
				t.Fatal("the stream did not fall back to the older path")
			}
			if m := missing(recs, got); len(m) > 0 {
				t.Errorf("%d of %d records never delivered, e.g. %s", len(m), len(recs), m[0])
			}
		})
	}
}
