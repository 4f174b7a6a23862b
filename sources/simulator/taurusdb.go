package simulator

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// TaurusDB (GaussDB for MySQL): "obtaining audit logs" (获取审计日志列表),
//
//	GET /v3/{project_id}/instances/{instance_id}/audit-logs?start_time=&end_time=&offset=&limit=
//
// start_time and end_time are required, in "2006-01-02T15:04:05-0700" form
// (the '+' of an offset must arrive escaped, or it decodes as a space and
// the request fails), end_time after start_time and at most 30 days later;
// offset defaults to 0, limit to 10 and is at most 100. The answer lists the
// audit log files whose end_time lies in [start_time, end_time], newest
// first, with total_count. A file is listed only once the server clock
// passed its end_time plus a seeded lag (TaurusDBConfig.MaxLag), so files
// appear late in ranges a client has already read.
//
// Unlike SWR the dataset is generated up front: it is small, and placing
// files that share one second needs the previous file's time.
//
// Where the documents are silent (which file time the range applies to,
// the list's order, inclusive or exclusive bounds, whether the total is
// true) TaurusDBConfig.Filter and TaurusDBConfig.Listing choose; the zero
// values filter on end_time, list newest first with both bounds
// inclusive, and count truly.

// Listing is how a time-filtered list (TaurusDB's, DBSS's) answers where
// the documents are silent. The zero value lists newest first, with
// start_time and end_time inclusive and a true total.
type Listing struct {
	// Order is the order of the list.
	Order ListOrder
	// StartExclusive and EndExclusive make start_time or end_time
	// exclusive, to the second.
	StartExclusive, EndExclusive bool
	// TotalExtra is added to every total: a total too big.
	TotalExtra int64
	// TotalGrowing adds the number of list requests answered before to
	// every total: a total that keeps growing.
	TotalGrowing bool
}

// ListOrder is the order of a time-filtered list.
type ListOrder int

const (
	// NewestFirst lists by time descending, ties in reverse generation
	// order.
	NewestFirst ListOrder = iota
	// OldestFirst lists by time ascending.
	OldestFirst
	// Unordered lists in an order stable across requests that follows
	// neither time nor id (a hash of the id).
	Unordered
)

// TaurusDBFilter names the time of a file that start_time and end_time
// select by.
type TaurusDBFilter int

const (
	// FilterEnd lists files whose end_time lies in the range.
	FilterEnd TaurusDBFilter = iota
	// FilterBegin lists files whose begin_time lies in the range.
	FilterBegin
	// FilterOverlap lists files whose [begin_time, end_time] meets the
	// range.
	FilterOverlap
)

func (f TaurusDBFilter) String() string {
	switch f {
	case FilterBegin:
		return "begin"
	case FilterOverlap:
		return "overlap"
	}
	return "end"
}

func (o ListOrder) String() string {
	switch o {
	case OldestFirst:
		return "oldest-first"
	case Unordered:
		return "unordered"
	}
	return "newest-first"
}

// meets reports whether [lo, hi] meets the queried range [from, to] under
// l's bounds.
func (l Listing) meets(lo, hi, from, to time.Time) bool {
	if hi.Before(from) || (l.StartExclusive && !hi.After(from)) {
		return false
	}
	return !lo.After(to) && !(l.EndExclusive && !lo.Before(to))
}

// order puts match, ascending by time, in l's order; id names a record.
func order[T any](l Listing, match []T, id func(T) string) {
	switch l.Order {
	case NewestFirst:
		slices.Reverse(match)
	case Unordered:
		slices.SortStableFunc(match, func(a, b T) int { return cmp.Compare(hashString(id(a)), hashString(id(b))) })
	}
}

// total is the total l reports for n records; requests counts list
// requests answered.
func (l Listing) total(n int, requests *atomic.Int64) int64 {
	t := int64(n) + l.TotalExtra
	if l.TotalGrowing {
		t += requests.Add(1) - 1
	}
	return t
}

// TaurusDBConfig describes the generated TaurusDB audit log files.
type TaurusDBConfig struct {
	// Instances are the instance IDs that exist; others get 404.
	Instances []string
	// Files is how many audit log files each instance has.
	Files int
	// Start is about the end_time of each instance's first file. Default
	// 2024-01-01T00:00:00Z.
	Start time.Time
	// Interval is the mean spacing of end_times. About one file in four
	// ends in the same second as the one before. Default 10m.
	Interval time.Duration
	// SameSecond, when above 1, places files in runs of SameSecond whose
	// end_times share one second, instead of about one in four sharing
	// the second before, so that one second's files fill several pages.
	SameSecond int
	// MaxLag bounds how long after its end_time a file is listed; each
	// file's lag is seeded in [0, MaxLag). Zero: listed at end_time.
	MaxLag time.Duration
	// MaxFileSpan, when set, seeds each file's span (end_time −
	// begin_time) in [1m, 1m+MaxFileSpan), so that files cross the edges
	// of a reader's windows by up to that much. Zero: up to an hour.
	MaxFileSpan time.Duration
	// Filter is the file time start_time and end_time select by.
	Filter TaurusDBFilter
	// Listing is the order, bounds and total of the list.
	Listing Listing
	// SQL describes the SQL statements inside the files and serves the
	// download link endpoint and the files (see taurusdb_sql.go) when
	// SQL.Records or SQL.RecordsOf is set.
	SQL TaurusDBSQLConfig
}

// TaurusDBRecord is one audit log file.
type TaurusDBRecord struct {
	ID        string
	Name      string
	SizeKB    float64
	BeginTime time.Time // second precision, UTC
	EndTime   time.Time // second precision, UTC
	// VisibleAt is when the server starts listing the file.
	VisibleAt time.Time
	// Malformed is "" or the Malformed* kind the record is served with
	// (see Faults.MalformedRate): MalformedIDBool, MalformedNoID or
	// MalformedTime (neither begin_time nor end_time a time).
	Malformed string
	// Odd is "" or the Odd* kind a well-formed record is served with; the
	// fields above stay the generated values.
	Odd string
	// Raw is the record's JSON exactly as it is served now.
	Raw string
}

// TaurusDBMaxSpan is the longest start_time..end_time range accepted.
const TaurusDBMaxSpan = 30 * 24 * time.Hour

const taurusTimeLayout = "2006-01-02T15:04:05-0700"

// taurusZone is the zone times are served in, as in the documented example.
var taurusZone = time.FixedZone("CST", 8*3600)

// Stand-in error codes: GaussDB for MySQL documents DBS.xxxxxx codes but
// no published table was found for these cases.
const (
	codeTaurusInvalidParam     = "DBS.200001" // NOT documented: stand-in
	codeTaurusForbidden        = "DBS.200002" // NOT documented: stand-in
	codeTaurusInstanceNotFound = "DBS.200019" // NOT documented: stand-in
	codeTaurusInternal         = "DBS.200000" // NOT documented: stand-in
	msgTaurusInternal          = "Internal server error."
)

// Salts of the TaurusDB and DBSS generators, apart from gen.go's.
const (
	saltTaurus uint64 = 0x7a75_0001 + iota
	saltDBSS
)

type taurusAPI struct {
	s         *Server
	cfg       TaurusDBConfig
	instances map[string][]TaurusDBRecord // ascending end_time, then id
	lists     atomic.Int64                // list requests answered
	sql       *taurusSQL
}

func newTaurusAPI(s *Server, cfg TaurusDBConfig) *taurusAPI {
	a := &taurusAPI{s: s, cfg: cfg, instances: map[string][]TaurusDBRecord{}}
	start := cfg.Start
	if start.IsZero() {
		start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	interval := cfg.Interval
	if interval < time.Second {
		interval = 10 * time.Minute
	}
	seed := s.cfg.Seed
	for _, ins := range cfg.Instances {
		if _, dup := a.instances[ins]; dup {
			continue
		}
		ih := hashString(ins)
		recs := make([]TaurusDBRecord, 0, max(cfg.Files, 0))
		end := start.UTC().Truncate(time.Second)
		for i := range max(cfg.Files, 0) {
			h := hashOf(seed, saltTaurus, ih, uint64(i))
			h2 := mix64(h)
			advance := h%4 != 0
			if cfg.SameSecond > 1 {
				advance = i%cfg.SameSecond == 0
			}
			if i > 0 && advance {
				end = end.Add(time.Second + time.Duration((h>>8)%uint64(2*interval/time.Second))*time.Second)
			}
			begin := end.Add(-time.Minute - time.Duration((h>>24)%3600)*time.Second)
			if cfg.MaxFileSpan >= time.Second {
				begin = end.Add(-time.Minute - time.Duration((h>>24)%uint64(cfg.MaxFileSpan/time.Second))*time.Second)
			}
			var lag time.Duration
			if cfg.MaxLag > 0 {
				lag = time.Duration(h2 % uint64(cfg.MaxLag))
			}
			id := string(appendHex(nil, h2, mix64(h2+1)))[:32] + "br01"
			recs = append(recs, TaurusDBRecord{
				ID: id,
				Name: fmt.Sprintf("%d_%s_%sin07_Audit_%s", 300000+i, end.Format("20060102150405"),
					string(appendHex(nil, ih))[:16], appendUUID(nil, h, h2)),
				SizeKB:    float64((h>>32)%20_000_000_000) / 1e6,
				BeginTime: begin,
				EndTime:   end,
				VisibleAt: end.Add(lag),
			})
		}
		a.instances[ins] = recs
	}
	// Real services sit on separate hosts; the simulator serves them all on
	// one, so the route exists only when TaurusDB is configured.
	if len(cfg.Instances) > 0 {
		s.handle("GET /v3/{project_id}/instances/{instance_id}/audit-logs",
			serviceErrorBody{codeTaurusInternal, msgTaurusInternal}, a.handleAuditLogs)
	}
	a.sql = newTaurusSQL(a, cfg.SQL)
	return a
}

func (a *taurusAPI) handleAuditLogs(w http.ResponseWriter, r *http.Request) {
	s := a.s
	if r.PathValue("project_id") != s.cfg.ProjectID {
		s.serviceError(w, http.StatusForbidden, codeTaurusForbidden, "Insufficient permissions.")
		return
	}
	recs, ok := a.instances[r.PathValue("instance_id")]
	if !ok {
		s.serviceError(w, http.StatusNotFound, codeTaurusInstanceNotFound, "The DB instance does not exist.")
		return
	}
	from, to, offset, limit, err := parseTaurusQuery(r)
	if err != nil {
		s.serviceError(w, http.StatusBadRequest, codeTaurusInvalidParam, "Invalid parameter: "+err.Error())
		return
	}
	now := s.now()
	var match []TaurusDBRecord
	for _, rec := range recs {
		lo, hi := rec.EndTime, rec.EndTime
		switch a.cfg.Filter {
		case FilterBegin:
			lo, hi = rec.BeginTime, rec.BeginTime
		case FilterOverlap:
			lo = rec.BeginTime
		}
		if !now.Before(rec.VisibleAt) && a.cfg.Listing.meets(lo, hi, from, to) {
			match = append(match, rec)
		}
	}
	order(a.cfg.Listing, match, func(r TaurusDBRecord) string { return r.ID })
	total := a.cfg.Listing.total(len(match), &a.lists)
	if !s.slowPage(r) {
		return
	}
	page := match[min(offset, len(match)):min(offset+limit, len(match))]
	ih, f := hashString(r.PathValue("instance_id")), s.faults.Load()
	buf := []byte(`{"audit_logs":[`)
	for i, rec := range page {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = a.appendRecord(buf, ih, rec, f)
	}
	buf = append(buf, `],"total_count":`...)
	buf = strconv.AppendInt(buf, total, 10)
	buf = append(buf, '}')
	s.stats.pages.Add(1)
	s.stats.records.Add(int64(len(page)))
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(buf)
}

// taurusMalformed names the members a malformed record breaks.
var taurusMalformed = [3]string{MalformedIDBool, MalformedNoID, MalformedTime}

// kinds returns how rec of the instance hashed ih is served.
func (a *taurusAPI) kinds(ih uint64, rec TaurusDBRecord, f *Faults) (malformed, odd string) {
	return recordKinds(a.s.cfg.Seed, ih, rec.ID, f, taurusMalformed)
}

// appendRecord appends rec's JSON, members in the documented order.
func (a *taurusAPI) appendRecord(buf []byte, ih uint64, rec TaurusDBRecord, f *Faults) []byte {
	bad, odd := a.kinds(ih, rec, f)
	name := rec.Name
	switch odd {
	case OddUnicode, OddEscapes, OddLong:
		name = oddText(odd, name)
	case OddEmpty:
		name = ""
	}
	buf = append(buf, '{')
	if odd == OddExtra {
		buf = append(buf, oddExtraHead...)
	}
	switch bad {
	case MalformedIDBool:
		buf = append(buf, `"id":true,`...)
	case MalformedNoID:
	default:
		buf = append(buf, `"id":"`...)
		buf = append(buf, rec.ID...)
		buf = append(buf, `",`...)
	}
	buf = append(buf, `"name":`...)
	if odd == OddNull {
		buf = append(buf, "null"...)
	} else {
		buf = appendJSONString(buf, name) // the generated names need no escaping
	}
	buf = append(buf, `,"size":`...)
	if odd == OddNull {
		buf = append(buf, "null"...)
	} else {
		buf = strconv.AppendFloat(buf, rec.SizeKB, 'f', 6, 64)
	}
	if bad == MalformedTime {
		buf = append(buf, `,"begin_time":"soon","end_time":"2024-13-45T25:61:61+0800"`...)
	} else {
		buf = append(buf, `,"begin_time":"`...)
		buf = rec.BeginTime.In(taurusZone).AppendFormat(buf, taurusTimeLayout)
		buf = append(buf, `","end_time":"`...)
		buf = rec.EndTime.In(taurusZone).AppendFormat(buf, taurusTimeLayout)
		buf = append(buf, '"')
	}
	if odd == OddExtra {
		buf = append(buf, oddExtraTail...)
	}
	return append(buf, '}')
}

func parseTaurusQuery(r *http.Request) (from, to time.Time, offset, limit int, err error) {
	q := r.URL.Query()
	parse := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, fmt.Errorf("%s is required", name)
		}
		t, err := time.Parse(taurusTimeLayout, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %q is not in yyyy-mm-ddThh:mm:ss+hhmm form", name, v)
		}
		return t, nil
	}
	if from, err = parse("start_time"); err != nil {
		return
	}
	if to, err = parse("end_time"); err != nil {
		return
	}
	switch {
	case !to.After(from):
		err = errors.New("end_time must be later than start_time")
		return
	case to.Sub(from) > TaurusDBMaxSpan:
		err = errors.New("the time span between start_time and end_time cannot be longer than 30 days")
		return
	}
	offset, limit = 0, 10
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			err = fmt.Errorf("offset %q must be a non-negative integer", v)
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 100 {
			err = fmt.Errorf("limit %q must be an integer from 1 to 100", v)
			return
		}
	}
	return from, to, offset, limit, nil
}

// TaurusDBRecords returns every audit log file of instance, listed or not
// yet, ascending by end_time; nil for an unknown instance.
//
// Malformed, Odd and Raw say how each is served under the faults in force
// now.
func (s *Server) TaurusDBRecords(instance string) []TaurusDBRecord {
	recs := slices.Clone(s.taurus.instances[instance])
	ih, f := hashString(instance), s.faults.Load()
	for i := range recs {
		recs[i].Malformed, recs[i].Odd = s.taurus.kinds(ih, recs[i], f)
		recs[i].Raw = string(s.taurus.appendRecord(nil, ih, recs[i], f))
	}
	return recs
}
