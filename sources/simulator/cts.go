package simulator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cloud Trace Service (CTS): "query a trace list" (ListTraces),
//
//	GET /v3/{project_id}/traces?trace_type=system|data&limit=&from=&to=&next=
//
// as the official SDK (services/cts/v3) defines it: trace_type is required
// (system: management traces, data: data traces of OBS); limit 1..200,
// default 10; from and to are UTC milliseconds (13 digits) that come
// together, default the last hour, documented as excluding the time given;
// next is the previous answer's meta_data.marker, the id of its last
// trace, and asks for the traces "earlier than" it. The answer is
// {"traces":[…],"meta_data":{"count":n,"marker":id|null}}, newest first; a
// null marker says the listing ended. Only the traces of the last 7 days
// (by record_time) are listed.
//
// What the documents leave open is a switch of CTSConfig: the time from and
// to filter on (CTSConfig.Filter), what next resumes at (CTSConfig.Marker),
// inclusive bounds, a marker on a last full page, the order within a page,
// trace ids shared by two traces. The zero value is the documented reading:
// filter on time, exclusive bounds, next strictly earlier than the marked
// trace, newest first.

// CTSFilter is the trace time from and to select by, and the list is
// ordered by.
type CTSFilter int

const (
	// CTSFilterTime selects by time, when the operation happened.
	CTSFilterTime CTSFilter = iota
	// CTSFilterRecordTime selects by record_time, when CTS recorded it.
	CTSFilterRecordTime
)

// CTSMarker is what a request with next lists.
type CTSMarker int

const (
	// CTSMarkerBefore lists the traces whose filter time is strictly
	// before the marked trace's: the documented "earlier than". Traces
	// sharing the marked trace's millisecond that did not fit on its page
	// are not listed again.
	CTSMarkerBefore CTSMarker = iota
	// CTSMarkerAtOrBefore lists the traces whose filter time is at or
	// before the marked trace's, the marked trace included: the page edge
	// is listed again.
	CTSMarkerAtOrBefore
	// CTSMarkerAfter lists the traces after the marked one in the list
	// order of the request (a cursor in the list, evaluated afresh at
	// each request, so traces that arrived meanwhile are listed when they
	// sort after it).
	CTSMarkerAfter
)

// CTSConfig describes the generated traces of the one project.
type CTSConfig struct {
	// Traces is how many management traces (trace_type=system) exist.
	// Zero and DataTraces zero: the API is not served.
	Traces int
	// DataTraces is how many data traces (trace_type=data) exist.
	DataTraces int
	// Start is about the time of the first trace. Default 2024-01-01.
	Start time.Time
	// Interval is the mean spacing of trace times. Default 1m.
	Interval time.Duration
	// SameSecond, when above 1, places traces in runs of SameSecond that
	// share one second (distinct milliseconds unless SameMilli says).
	SameSecond int
	// SameMilli, when above 1, places traces in runs of SameMilli that
	// share one millisecond of time and of record_time.
	SameMilli int
	// MaxLag bounds record_time − time: each trace's lag is seeded in
	// [0, MaxLag). A trace is listed from its record_time on.
	MaxLag time.Duration
	// Skew, when set, records one trace in SkewEvery (default 4) before it
	// happened: its record_time lies up to Skew earlier than its time (the
	// clock of the service that reported the operation runs ahead of
	// CTS's).
	Skew      time.Duration
	SkewEvery int
	// Retention is how long traces are kept, by record_time. Default 7
	// days, as documented.
	Retention time.Duration
	// Filter is the time from, to and the order use.
	Filter CTSFilter
	// Marker is what next resumes at.
	Marker CTSMarker
	// FromInclusive and ToInclusive make from or to inclusive, to the
	// millisecond (documented: both exclusive).
	FromInclusive, ToInclusive bool
	// MarkerOnLastPage returns a marker with every full page, also when
	// nothing follows; the next request answers an empty list.
	MarkerOnLastPage bool
	// ShufflePages serves each page's traces in an order that is not
	// newest first (stable across requests): the order within a page is
	// not strict.
	ShufflePages bool
	// DuplicateIDs gives one trace in ten the trace_id of the trace
	// before it (a different time): trace ids not unique.
	DuplicateIDs bool
	// KeptMarkersOnly refuses (400) a next naming a trace no longer kept
	// (older than Retention): an API that looks the marked trace up.
	KeptMarkersOnly bool
	// PageCap, when set, serves at most this many traces a page whatever
	// limit asked for (an API that caps limit below its documented 200).
	PageCap int
	// BodyBytes, when set, makes one trace in 50 carry a request and a
	// response of about this many bytes.
	BodyBytes int
}

// CTSTrace is one generated trace.
type CTSTrace struct {
	Type       string // "system" or "data"
	Index      int    // in generation order within its type
	TraceID    string
	Name       string
	Service    string
	Resource   string // resource_type
	Rating     string
	Source     string // trace_type of the record: ApiCall, ConsoleAction, …
	Code       string // "" when the trace has none
	User       string
	UserID     string
	AK         string
	IP         string
	RequestID  string    // unique, also where trace ids are not
	Time       time.Time // ms precision, UTC
	RecordTime time.Time // ms precision, UTC; listed from then on
	// Malformed and Odd say how the trace is served now (see Faults).
	Malformed, Odd string
	// Raw is the trace's JSON exactly as it is served now.
	Raw string
}

// VisibleAt is when the trace is listed from.
func (t CTSTrace) VisibleAt() time.Time { return t.RecordTime }

// Stand-in codes in the CTS.XXXX shape of the CTS error code table.
const (
	codeCTSInvalidParam = "CTS.0001" // NOT documented here: stand-in for a bad parameter
	codeCTSForbidden    = "CTS.0002" // NOT documented here: stand-in
	codeCTSInternal     = "CTS.0500" // NOT documented here: stand-in
)

const (
	saltCTS uint64 = 0xc75_0001 + iota
	saltCTSShuffle
)

type ctsOp struct {
	service, name, resource string
	read                    bool
}

var (
	ctsSystemOps = []ctsOp{
		{"IAM", "login", "user", false}, {"IAM", "logout", "user", false}, {"IAM", "createUser", "user", false},
		{"IAM", "deleteUser", "user", false}, {"IAM", "createCredential", "credential", false},
		{"IAM", "updateUser", "user", false}, {"ECS", "createServer", "ecs", false},
		{"ECS", "deleteServer", "ecs", false}, {"ECS", "stopServer", "ecs", false},
		{"ECS", "startServer", "ecs", false}, {"ECS", "listServers", "ecs", true},
		{"VPC", "createSecurityGroupRule", "security_group_rule", false}, {"VPC", "deleteSecurityGroupRule", "security_group_rule", false},
		{"VPC", "showVpc", "vpc", true}, {"KMS", "disableKey", "key", false}, {"KMS", "scheduleKeyDeletion", "key", false},
		{"RDS", "createInstance", "instance", false}, {"RDS", "resetPassword", "instance", false},
		{"CTS", "updateTracker", "tracker", false}, {"OBS", "createBucket", "bucket", false},
	}
	ctsDataOps = []ctsOp{
		{"OBS", "GET.OBJECT", "object", true}, {"OBS", "PUT.OBJECT", "object", false},
		{"OBS", "DELETE.OBJECT", "object", false}, {"OBS", "HEAD.OBJECT", "object", true},
		{"OBS", "GET.BUCKET", "bucket", true},
	}
	ctsUsers   = []string{"alice", "bob.ops", "ci-deployer", "张三", "security-auditor", "op_svc_cce"}
	ctsIPs     = []string{"203.0.113.17", "198.51.100.4", "192.0.2.201", "2001:db8::2:1", "10.12.0.8"}
	ctsCodes   = []string{"200", "200", "200", "201", "202", "204", "200", "302", "400", "403", "404", "409", "500"}
	ctsSources = []string{"ApiCall", "ConsoleAction", "ApiCall", "SystemAction"}
)

type ctsAPI struct {
	s      *Server
	cfg    CTSConfig
	traces map[string][]CTSTrace // by type, ascending time
}

func newCTSAPI(s *Server, cfg CTSConfig) *ctsAPI {
	a := &ctsAPI{s: s, cfg: cfg, traces: map[string][]CTSTrace{}}
	if a.cfg.Retention <= 0 {
		a.cfg.Retention = 7 * 24 * time.Hour
	}
	a.traces["system"] = a.generate("system", cfg.Traces)
	a.traces["data"] = a.generate("data", cfg.DataTraces)
	if cfg.Traces <= 0 && cfg.DataTraces <= 0 {
		return a
	}
	internal := serviceErrorBody{codeCTSInternal, "Internal server error."}
	s.handle("GET /v3/{project_id}/traces", internal, a.handleList)
	return a
}

// generate returns the n traces of typ, ascending by time.
func (a *ctsAPI) generate(typ string, n int) []CTSTrace {
	cfg := a.cfg
	start := cfg.Start
	if start.IsZero() {
		start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	interval := cfg.Interval
	if interval < time.Millisecond {
		interval = time.Minute
	}
	ops, th := ctsSystemOps, hashString(typ)
	if typ == "data" {
		ops = ctsDataOps
	}
	seed := a.s.cfg.Seed
	out := make([]CTSTrace, 0, max(n, 0))
	t := start.UTC().Truncate(time.Millisecond)
	for i := range max(n, 0) {
		h := hashOf(seed, saltCTS, th, uint64(i))
		h2 := mix64(h)
		switch {
		case i == 0:
		case cfg.SameMilli > 1 && i%cfg.SameMilli != 0:
			// same millisecond as the one before
		case cfg.SameSecond > 1 && i%cfg.SameSecond != 0:
			next := t.Add(time.Duration(1+h%7) * time.Millisecond)
			if next.Truncate(time.Second).Equal(t.Truncate(time.Second)) {
				t = next
			}
		case cfg.SameSecond > 1:
			t = t.Truncate(time.Second).Add(time.Second + time.Duration(h%uint64(2*max(interval/time.Second, 1)))*time.Second)
		default:
			t = t.Add(time.Millisecond + time.Duration(h%uint64(2*interval/time.Millisecond))*time.Millisecond)
		}
		var lag time.Duration
		if cfg.MaxLag > 0 {
			lag = time.Duration(h2%uint64(cfg.MaxLag/time.Millisecond)) * time.Millisecond
		}
		rt := t.Add(lag)
		if cfg.Skew >= time.Millisecond && (h2>>40)%uint64(cmp.Or(max(cfg.SkewEvery, 0), 4)) == 0 {
			rt = t.Add(-time.Duration(1+(h2>>44)%uint64(cfg.Skew/time.Millisecond)) * time.Millisecond)
		}
		if cfg.SameMilli > 1 && i%cfg.SameMilli != 0 && len(out) > 0 {
			rt = out[len(out)-1].RecordTime
		}
		op := ops[(h>>8)%uint64(len(ops))]
		code := ctsCodes[(h>>16)%uint64(len(ctsCodes))]
		if (h>>20)%20 == 0 {
			code = "" // console actions without an HTTP answer
		}
		rating := "normal"
		switch {
		case strings.HasPrefix(code, "5"):
			rating = "incident"
		case strings.HasPrefix(code, "4"), strings.Contains(op.name, "delete"), strings.Contains(op.name, "Deletion"):
			rating = "warning"
		}
		source := ctsSources[(h>>24)%uint64(len(ctsSources))]
		if typ == "data" {
			source = []string{"ObsSDK", "ObsAPI"}[(h>>24)%2]
		}
		if op.name == "login" || op.name == "logout" {
			source = "ConsoleAction"
		}
		user := ctsUsers[(h>>28)%uint64(len(ctsUsers))]
		id := string(appendUUID(nil, h2, mix64(h2)))
		if cfg.DuplicateIDs && i%10 == 9 && len(out) > 0 {
			id = out[len(out)-1].TraceID
		}
		out = append(out, CTSTrace{
			Type: typ, Index: i, TraceID: id,
			Name: op.name, Service: op.service, Resource: op.resource, Rating: rating, Source: source, Code: code,
			User: user, UserID: string(appendHex(nil, hashOf(seed, saltCTS, hashString(user)), 0))[:32],
			AK: "HST3" + strings.ToUpper(string(appendHex(nil, hashOf(seed, saltCTS, hashString(user), 1))))[:16],
			IP: ctsIPs[(h>>32)%uint64(len(ctsIPs))], Time: t, RecordTime: rt,
			RequestID: string(appendHex(nil, mix64(h2^0x5eed))),
		})
	}
	return out
}

func (a *ctsAPI) error(w http.ResponseWriter, status int, code, msg string) {
	a.s.serviceError(w, status, code, msg)
}

func (a *ctsAPI) filterTime(t CTSTrace) time.Time {
	if a.cfg.Filter == CTSFilterRecordTime {
		return t.RecordTime
	}
	return t.Time
}

// sorted orders traces newest first by filter time, ties by index.
func (a *ctsAPI) sorted(ts []CTSTrace) {
	slices.SortStableFunc(ts, func(x, y CTSTrace) int {
		if c := a.filterTime(y).Compare(a.filterTime(x)); c != 0 {
			return c
		}
		return cmp.Compare(y.Index, x.Index)
	})
}

func (a *ctsAPI) handleList(w http.ResponseWriter, r *http.Request) {
	s := a.s
	if r.PathValue("project_id") != s.cfg.ProjectID {
		a.error(w, http.StatusForbidden, codeCTSForbidden, "Insufficient permissions.")
		return
	}
	q := r.URL.Query()
	typ := q.Get("trace_type")
	all, ok := a.traces[typ]
	if !ok {
		a.error(w, http.StatusBadRequest, codeCTSInvalidParam, "Invalid parameter: trace_type must be system or data.")
		return
	}
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			a.error(w, http.StatusBadRequest, codeCTSInvalidParam, "Invalid parameter: limit must be an integer from 1 to 200.")
			return
		}
		limit = n
	}
	now := s.now().UTC()
	from, to := now.Add(-time.Hour), now
	fromS, toS := q.Get("from"), q.Get("to")
	if (fromS == "") != (toS == "") {
		a.error(w, http.StatusBadRequest, codeCTSInvalidParam, "Invalid parameter: from and to must be given together.")
		return
	}
	if fromS != "" {
		f, err1 := ctsMillis(fromS)
		t, err2 := ctsMillis(toS)
		if err1 != nil || err2 != nil || t.Before(f) {
			a.error(w, http.StatusBadRequest, codeCTSInvalidParam, "Invalid parameter: from and to must be 13-digit UTC millisecond timestamps, from not after to.")
			return
		}
		from, to = f, t
	}
	var match []CTSTrace
	oldest := now.Add(-a.cfg.Retention)
	for _, t := range all {
		if now.Before(t.RecordTime) || t.RecordTime.Before(oldest) {
			continue
		}
		ft := a.filterTime(t)
		if ft.Before(from) || ft.After(to) || (!a.cfg.FromInclusive && ft.Equal(from)) || (!a.cfg.ToInclusive && ft.Equal(to)) {
			continue
		}
		match = append(match, t)
	}
	a.sorted(match)
	if next := q.Get("next"); next != "" {
		var marked *CTSTrace
		pos := slices.IndexFunc(match, func(t CTSTrace) bool { return t.TraceID == next })
		if pos >= 0 {
			marked = &match[pos]
		} else if i := slices.IndexFunc(all, func(t CTSTrace) bool { return t.TraceID == next }); i >= 0 {
			marked = &all[i]
		}
		if marked == nil || (a.cfg.KeptMarkersOnly && marked.RecordTime.Before(oldest)) {
			a.error(w, http.StatusBadRequest, codeCTSInvalidParam, "Invalid parameter: next is not a trace id.")
			return
		}
		mt := a.filterTime(*marked)
		switch {
		case a.cfg.Marker == CTSMarkerAfter && pos >= 0:
			match = match[pos+1:]
		case a.cfg.Marker == CTSMarkerAtOrBefore:
			match = slices.DeleteFunc(match, func(t CTSTrace) bool { return a.filterTime(t).After(mt) })
		default:
			match = slices.DeleteFunc(match, func(t CTSTrace) bool { return !a.filterTime(t).Before(mt) })
		}
	}
	if !s.slowPage(r) {
		return
	}
	if a.cfg.PageCap > 0 {
		limit = min(limit, a.cfg.PageCap)
	}
	page := slices.Clone(match[:min(limit, len(match))])
	marker := ""
	if len(page) > 0 && (len(match) > limit || (a.cfg.MarkerOnLastPage && len(page) == limit)) {
		marker = page[len(page)-1].TraceID
	}
	if a.cfg.ShufflePages {
		slices.SortStableFunc(page, func(x, y CTSTrace) int {
			return cmp.Compare(hashOf(s.cfg.Seed, saltCTSShuffle, hashString(x.TraceID), uint64(x.Index)), hashOf(s.cfg.Seed, saltCTSShuffle, hashString(y.TraceID), uint64(y.Index)))
		})
	}
	f := s.faults.Load()
	buf := []byte(`{"traces":[`)
	for i, t := range page {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = a.appendTrace(buf, t, f)
	}
	buf = append(buf, `],"meta_data":{"count":`...)
	buf = strconv.AppendInt(buf, int64(len(page)), 10)
	buf = append(buf, `,"marker":`...)
	if marker == "" {
		buf = append(buf, "null"...)
	} else {
		buf = appendJSONString(buf, marker)
	}
	buf = append(buf, "}}"...)
	s.stats.pages.Add(1)
	s.stats.records.Add(int64(len(page)))
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(buf)
}

// ctsMillis reads a 13-digit UTC millisecond timestamp.
func ctsMillis(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || len(s) != 13 {
		return time.Time{}, strconv.ErrSyntax
	}
	return time.UnixMilli(n).UTC(), nil
}

// ctsMalformed names the CTS members a malformed trace breaks.
var ctsMalformed = [3]string{MalformedIDBool, MalformedNoID, MalformedTime}

func (a *ctsAPI) kinds(t CTSTrace, f *Faults) (malformed, odd string) {
	return recordKinds(a.s.cfg.Seed, hashString("cts/"+t.Type), t.TraceID+"@"+strconv.Itoa(t.Index), f, ctsMalformed)
}

// ctsUserJSON is the user object of a trace (UserInfo).
type ctsUserJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Domain struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"domain"`
	AccountID           string   `json:"account_id"`
	AccessKeyID         string   `json:"access_key_id,omitempty"`
	PrincipalURN        string   `json:"principal_urn"`
	PrincipalID         string   `json:"principal_id"`
	PrincipalIsRootUser string   `json:"principal_is_root_user"`
	Type                string   `json:"type"`
	InvokedBy           []string `json:"invoked_by,omitempty"`
}

// ctsTraceJSON is a trace (Traces), members in the SDK model's order.
type ctsTraceJSON struct {
	XSchema             json.RawMessage `json:"x_schema,omitempty"`
	ResourceID          string          `json:"resource_id,omitempty"`
	TraceName           string          `json:"trace_name"`
	TraceRating         string          `json:"trace_rating"`
	TraceType           string          `json:"trace_type"`
	Request             *string         `json:"request,omitempty"`
	Response            *string         `json:"response,omitempty"`
	Code                string          `json:"code,omitempty"`
	APIVersion          string          `json:"api_version,omitempty"`
	Message             *string         `json:"message,omitempty"`
	RecordTime          json.RawMessage `json:"record_time"`
	TraceID             json.RawMessage `json:"trace_id,omitempty"`
	Time                json.RawMessage `json:"time"`
	User                ctsUserJSON     `json:"user"`
	ServiceType         string          `json:"service_type"`
	ResourceType        string          `json:"resource_type"`
	SourceIP            string          `json:"source_ip,omitempty"`
	ResourceName        *string         `json:"resource_name,omitempty"`
	RequestID           string          `json:"request_id"`
	LocationInfo        string          `json:"location_info,omitempty"`
	Endpoint            string          `json:"endpoint,omitempty"`
	ResourceURL         string          `json:"resource_url,omitempty"`
	EnterpriseProjectID string          `json:"enterprise_project_id"`
	ReadOnly            bool            `json:"read_only"`
	OperationID         string          `json:"operation_id"`
	XTrace              json.RawMessage `json:"x_trace,omitempty"`
}

// appendTrace appends t's JSON as served under f.
func (a *ctsAPI) appendTrace(buf []byte, t CTSTrace, f *Faults) []byte {
	bad, odd := a.kinds(t, f)
	seed := a.s.cfg.Seed
	h := hashOf(seed, saltCTS, hashString(t.TraceID), uint64(t.Index), 7)
	domainID := string(appendHex(nil, hashOf(seed, saltCTS, 42), 0))[:32]
	u := ctsUserJSON{ID: t.UserID, Name: t.User, AccountID: domainID, PrincipalID: t.UserID,
		PrincipalURN: "iam::" + domainID + ":user:" + t.User, PrincipalIsRootUser: "false", Type: "User"}
	u.Domain.ID, u.Domain.Name = domainID, "acme-corp"
	if t.Source != "ConsoleAction" {
		u.AccessKeyID = t.AK
	} else {
		u.InvokedBy = []string{"service.console"}
	}
	resName := t.Resource + "-" + strconv.Itoa(int(h%900+100))
	resID := string(appendUUID(nil, h, mix64(h)))
	rec := ctsTraceJSON{
		ResourceID: resID, TraceName: t.Name, TraceRating: t.Rating, TraceType: t.Source, Code: t.Code,
		APIVersion: "v1", RecordTime: strconv.AppendInt(nil, t.RecordTime.UnixMilli(), 10),
		TraceID: appendJSONString(nil, t.TraceID), Time: strconv.AppendInt(nil, t.Time.UnixMilli(), 10),
		User: u, ServiceType: t.Service, ResourceType: t.Resource, SourceIP: t.IP, ResourceName: &resName,
		RequestID: t.RequestID, EnterpriseProjectID: "0", ReadOnly: strings.HasPrefix(t.Name, "list") || strings.HasPrefix(t.Name, "show") || strings.HasPrefix(t.Name, "GET") || strings.HasPrefix(t.Name, "HEAD"),
		OperationID: t.Service + "." + t.Name,
	}
	if t.Code != "" {
		req := `{"` + t.Resource + `":{"name":"` + resName + `"}}`
		resp := `{"request_id":"` + rec.RequestID + `"}`
		if a.cfg.BodyBytes > 0 && t.Index%50 == 7 {
			req = `{"` + t.Resource + `":{"name":"` + resName + `","user_data":"` + strings.Repeat("QUJD", a.cfg.BodyBytes/4) + `"}}`
			resp = `{"items":"` + strings.Repeat("x", a.cfg.BodyBytes) + `"}`
		}
		rec.Request, rec.Response = &req, &resp
	}
	if strings.HasPrefix(t.Code, "4") || strings.HasPrefix(t.Code, "5") {
		msg := `{"error_code":"` + t.Service + `.` + t.Code + `1","error_msg":"request refused"}`
		rec.Message = &msg
		rec.LocationInfo = t.Service + "." + t.Code + "1"
	}
	switch odd {
	case OddUnicode, OddEscapes, OddLong:
		name := oddText(odd, resName)
		rec.ResourceName = &name
		u := oddText(odd, t.User)
		rec.User.Name = u
	case OddEmpty:
		empty := ""
		rec.ResourceName, rec.Message = &empty, &empty
	case OddNull:
		rec.ResourceName, rec.Request, rec.Response = nil, nil, nil
	case OddExtra:
		rec.XSchema, rec.XTrace = json.RawMessage(`{"v":2,"tags":["ü",null,true,1.5e3,{}]}`), json.RawMessage(`null`)
	}
	switch bad {
	case MalformedIDBool:
		rec.TraceID = json.RawMessage(`true`)
	case MalformedNoID:
		rec.TraceID = nil
	case MalformedTime:
		rec.Time, rec.RecordTime = json.RawMessage(`"yesterday at noon"`), json.RawMessage(`"yesterday at noon"`)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		panic(err) // fixed types
	}
	return append(buf, bytes.TrimRight(b.Bytes(), "\n")...)
}

// CTSTraces returns every trace of trace type typ ("system" or "data"),
// listed or not yet, ascending by time, with how it is served under the
// faults in force now.
func (s *Server) CTSTraces(typ string) []CTSTrace {
	out := slices.Clone(s.cts.traces[typ])
	f := s.faults.Load()
	for i := range out {
		out[i].Malformed, out[i].Odd = s.cts.kinds(out[i], f)
		out[i].Raw = string(s.cts.appendTrace(nil, out[i], f))
	}
	return out
}
