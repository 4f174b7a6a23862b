package simulator

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// SWR Enterprise: "list audit logs" (获取上传下载的相关审计日志列表),
//
//	GET /v2/{project_id}/instances/{instance_id}/audit-logs?operation=&offset=&limit=
//
// operation is required and one of pull, create, delete; limit defaults to
// 10 and is at most 100; offset defaults to 0 and must be 0 or a multiple of
// limit. The answer lists the instance's records of that operation newest
// first, with total, the number of such records.
//
// An instance's records of all operations share one id sequence and
// op_time grows with id, so one operation's ids are sparse. The initial
// records are a pure function of the seed and their position and are never
// stored; records added later (InsertSWR, drift) are stored as event
// numbers. Cutting a page is O(limit).

// SWRConfig describes the generated SWR Enterprise audit log dataset.
type SWRConfig struct {
	// Instances are the enterprise instance IDs that exist; other instance
	// IDs get 404.
	Instances []string
	// RecordsPerOperation is how many records each instance starts with for
	// each of pull, create and delete.
	RecordsPerOperation int
	// Start is the op_time of each instance's first record. Default
	// 2024-01-01T00:00:00Z.
	Start time.Time
	// Interval is the spacing of consecutive records of an instance, across
	// operations; each record is placed at a seeded point within its slot,
	// so op_time strictly increases with id. Default 10s; at least 1ms,
	// since op_time has millisecond resolution.
	Interval time.Duration
	// SameTime, when above 1, places consecutive records in runs of
	// SameTime that share one op_time, to the millisecond (op_time then
	// only never decreases with id), so that a run straddles page edges.
	SameTime int
}

// SWRRecord is one audit log record.
type SWRRecord struct {
	ID           int64
	OpTime       time.Time // millisecond precision, UTC
	Operation    string
	Resource     string
	ResourceType string
	Username     string
	// Malformed is "" when the record is served well-formed, otherwise one
	// of the Malformed* kinds it is served with (see Faults.MalformedRate).
	Malformed string
	// Odd is "" or the Odd* kind a well-formed record is served with (see
	// Faults.OddRate); Resource, ResourceType and Username are then the
	// odd values, "" for a member served null.
	Odd string
	// Raw is the record's JSON exactly as it is served.
	Raw string
}

// Ways a record can be served malformed.
const (
	MalformedIDString = "id-string"  // "id":"not-a-number"
	MalformedNoID     = "id-missing" // no "id" member
	MalformedOpTime   = "op-time"    // op_time in "02/01/2006 15:04:05" form
)

var malformedKinds = [...]string{MalformedIDString, MalformedNoID, MalformedOpTime}

// swrOperations are the values operation accepts; opPull indexes "pull".
var swrOperations = [numSWROps]string{"pull", "create", "delete"}

const (
	numSWROps = 3
	opPull    = 0
)

// swrPermutations are the orders in which one round of events (one per
// operation) can occur; each round picks one by seed.
var swrPermutations = [6][numSWROps]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}

const opTimeLayout = "2006-01-02T15:04:05.000Z"

type swrAPI struct {
	s          *Server
	seed       int64
	perOp      int64
	startMs    int64
	intervalMs int64
	sameTime   int64
	instances  map[string]*swrInstance
}

// swrInstance holds what cannot be computed: records added after New.
// Event e (0-based, shared by all operations) has id idBase+e+1. Events
// below numSWROps*perOp form the initial dataset.
type swrInstance struct {
	hash   uint64
	idBase int64

	mu       sync.Mutex
	next     int64              // next event number
	inserted [numSWROps][]int64 // event numbers added later, ascending
}

func newSWRAPI(s *Server, cfg SWRConfig) *swrAPI {
	a := &swrAPI{
		s:          s,
		seed:       s.cfg.Seed,
		perOp:      int64(max(cfg.RecordsPerOperation, 0)),
		startMs:    cfg.Start.UnixMilli(),
		intervalMs: cfg.Interval.Milliseconds(),
		sameTime:   int64(max(cfg.SameTime, 1)),
		instances:  make(map[string]*swrInstance),
	}
	if cfg.Start.IsZero() {
		a.startMs = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	}
	switch {
	case cfg.Interval == 0:
		a.intervalMs = 10_000
	case a.intervalMs < 1:
		a.intervalMs = 1
	}
	for _, id := range cfg.Instances {
		if _, dup := a.instances[id]; dup {
			continue
		}
		h := hashString(id)
		a.instances[id] = &swrInstance{
			hash:   h,
			idBase: int64(hashOf(a.seed, saltInstance, h) % 1000),
			next:   numSWROps * a.perOp,
		}
	}
	s.handle("GET /v2/{project_id}/instances/{instance_id}/audit-logs",
		serviceErrorBody{codeSWRInternal, msgSWRInternal}, a.handleAuditLogs)
	return a
}

func swrOperation(op string) (int, bool) {
	for i, o := range swrOperations {
		if o == op {
			return i, true
		}
	}
	return 0, false
}

func (a *swrAPI) handleAuditLogs(w http.ResponseWriter, r *http.Request) {
	s := a.s
	if r.PathValue("project_id") != s.cfg.ProjectID {
		s.serviceError(w, http.StatusForbidden, codeSWRForbidden, msgSWRForbidden)
		return
	}
	in := a.instances[r.PathValue("instance_id")]
	if in == nil {
		s.serviceError(w, http.StatusNotFound, codeSWRInstanceNotFound,
			"instance "+r.PathValue("instance_id")+" not found")
		return
	}
	op, offset, limit, err := parseAuditLogQuery(r)
	if err != nil {
		s.serviceError(w, http.StatusBadRequest, codeSWRInvalidParam, "Invalid parameter: "+err.Error())
		return
	}

	// Cut the page under the lock, then drift: the page is what the list
	// held before the insertion.
	f := s.faults.Load()
	in.mu.Lock()
	ins := in.inserted[op]
	total := a.perOp + int64(len(ins))
	if f.DriftPerPage > 0 {
		in.insertLocked(op, f.DriftPerPage)
	}
	in.mu.Unlock()

	if !s.slowPage(r) {
		return
	}
	end := offset
	if offset < total {
		end = offset + min(limit, total-offset)
	}
	n := end - offset
	buf := make([]byte, 0, 64+n*260)
	buf = append(buf, `{"audit_logs":[`...)
	for i := offset; i < end; i++ {
		if i > offset {
			buf = append(buf, ',')
		}
		buf = a.appendRecord(buf, in, a.event(in, ins, op, total-1-i), op, f)
	}
	buf = append(buf, `],"total":`...)
	buf = strconv.AppendInt(buf, total, 10)
	buf = append(buf, '}')

	s.stats.pages.Add(1)
	s.stats.records.Add(n)
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(buf)
}

// parseAuditLogQuery validates the query. An empty value counts as absent.
func parseAuditLogQuery(r *http.Request) (op int, offset, limit int64, err error) {
	q := r.URL.Query()
	name := q.Get("operation")
	if name == "" {
		return 0, 0, 0, errors.New("operation is required and must be one of pull, create, delete")
	}
	op, ok := swrOperation(name)
	if !ok {
		return 0, 0, 0, fmt.Errorf("operation %q is not one of pull, create, delete", name)
	}
	limit, offset = 10, 0
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.ParseInt(v, 10, 64)
		if err != nil || limit < 1 || limit > 100 {
			return 0, 0, 0, fmt.Errorf("limit %q must be an integer from 1 to 100", v)
		}
	}
	if v := q.Get("offset"); v != "" {
		offset, err = strconv.ParseInt(v, 10, 64)
		if err != nil || offset < 0 {
			return 0, 0, 0, fmt.Errorf("offset %q must be a non-negative integer", v)
		}
	}
	if offset%limit != 0 {
		return 0, 0, 0, fmt.Errorf("offset %d must be 0 or a multiple of limit %d", offset, limit)
	}
	return op, offset, limit, nil
}

// insertLocked appends n new events of operation op. in.mu must be held.
func (in *swrInstance) insertLocked(op, n int) {
	for range n {
		in.inserted[op] = append(in.inserted[op], in.next)
		in.next++
	}
}

// event returns the event number at ascending position p of operation op's
// list, whose later part is ins.
func (a *swrAPI) event(in *swrInstance, ins []int64, op int, p int64) int64 {
	if p >= a.perOp {
		return ins[p-a.perOp]
	}
	perm := swrPermutations[hashOf(a.seed, saltPermutation, in.hash, uint64(p))%6]
	for slot, o := range perm {
		if o == op {
			return p*numSWROps + int64(slot)
		}
	}
	panic("unreachable")
}

// InsertSWR adds n new records of operation at the newest end of an
// instance's list, as if they had just happened.
func (s *Server) InsertSWR(instance, operation string, n int) error {
	in := s.swr.instances[instance]
	if in == nil {
		return fmt.Errorf("simulator: no SWR instance %q", instance)
	}
	op, ok := swrOperation(operation)
	if !ok {
		return fmt.Errorf("simulator: no SWR operation %q", operation)
	}
	in.mu.Lock()
	in.insertLocked(op, n)
	in.mu.Unlock()
	return nil
}

// SWRRecords returns every record of operation in instance, in ascending id
// order, as it would be served now: the record at index i is served at
// position len-1-i of the newest-first list, which identifies malformed
// records that carry no usable id. It returns nil for an unknown instance or
// operation.
func (s *Server) SWRRecords(instance, operation string) []SWRRecord {
	a := s.swr
	in := a.instances[instance]
	op, ok := swrOperation(operation)
	if in == nil || !ok {
		return nil
	}
	in.mu.Lock()
	ins := in.inserted[op]
	in.mu.Unlock()
	faults := s.faults.Load()

	total := a.perOp + int64(len(ins))
	out := make([]SWRRecord, 0, total)
	for p := range total {
		e := a.event(in, ins, op, p)
		f := a.fields(in, e, op)
		bad := a.malformed(in, f.id, faults.MalformedRate)
		odd := a.odd(in, f.id, bad, faults.OddRate)
		res, typ, user := a.served(&f, odd)
		out = append(out, SWRRecord{
			ID:           f.id,
			OpTime:       time.UnixMilli(f.ms).UTC(),
			Operation:    swrOperations[op],
			Resource:     res,
			ResourceType: typ,
			Username:     user,
			Malformed:    bad,
			Odd:          odd,
			Raw:          string(a.appendRecord(nil, in, e, op, faults)),
		})
	}
	return out
}

// malformed decides whether, and how, the record with id is served broken.
func (a *swrAPI) malformed(in *swrInstance, id int64, rate float64) string {
	if rate <= 0 {
		return ""
	}
	h := hashOf(a.seed, saltMalformed, in.hash, uint64(id))
	if unitFloat(h) >= rate {
		return ""
	}
	return malformedKinds[mix64(h)%uint64(len(malformedKinds))]
}

// odd decides whether, and how, the well-formed record with id is served
// odd.
func (a *swrAPI) odd(in *swrInstance, id int64, malformed string, rate float64) string {
	if malformed != "" {
		return ""
	}
	return oddKind(a.seed, in.hash, uint64(id), rate)
}

// served returns the resource, resource type and username an odd record
// of kind odd is served with.
func (a *swrAPI) served(f *swrFields, odd string) (resource, resourceType, username string) {
	resource, resourceType, username = string(f.appendResource(nil)), f.resourceType, string(f.appendUsername(nil))
	switch odd {
	case OddUnicode, OddEscapes:
		resource, username = oddText(odd, resource), oddText(odd, username)
	case OddLong:
		resource = oddText(odd, resource)
	case OddEmpty, OddNull:
		resourceType, username = "", ""
	}
	return resource, resourceType, username
}

// appendRecord appends the JSON of event e, members in the documented
// example's order.
func (a *swrAPI) appendRecord(buf []byte, in *swrInstance, e int64, op int, faults *Faults) []byte {
	f := a.fields(in, e, op)
	bad := a.malformed(in, f.id, faults.MalformedRate)
	if odd := a.odd(in, f.id, bad, faults.OddRate); odd != "" {
		return a.appendOddRecord(buf, &f, op, odd)
	}
	buf = append(buf, '{')
	switch bad {
	case MalformedIDString:
		buf = append(buf, `"id":"not-a-number",`...)
	case MalformedNoID:
	default:
		buf = append(buf, `"id":`...)
		buf = strconv.AppendInt(buf, f.id, 10)
		buf = append(buf, ',')
	}
	buf = append(buf, `"op_time":"`...)
	t := time.UnixMilli(f.ms).UTC()
	if bad == MalformedOpTime {
		buf = t.AppendFormat(buf, "02/01/2006 15:04:05")
	} else {
		buf = t.AppendFormat(buf, opTimeLayout)
	}
	buf = append(buf, `","operation":"`...)
	buf = append(buf, swrOperations[op]...)
	buf = append(buf, `","resource":"`...)
	buf = f.appendResource(buf)
	buf = append(buf, `","resource_type":"`...)
	buf = append(buf, f.resourceType...)
	buf = append(buf, `","username":"`...)
	buf = f.appendUsername(buf)
	return append(buf, `"}`...)
}

// Vocabulary of generated records. No entry needs JSON escaping, which lets
// records be written without an encoder (TestRecordsDecode checks the
// output against SWRRecords).
var (
	swrNamespaces = []string{"library", "prod", "staging", "team-payments", "infra", "ml-platform"}
	swrRepos      = []string{"nginx", "ubuntu", "redis", "postgres", "alpine", "golang", "node", "python",
		"busybox", "prometheus", "grafana", "envoy", "api-gateway", "order-service", "user-service", "billing/worker"}
	swrTags = []string{"latest", "1.25", "1.25.3", "22.04", "v2.3.1", "7.2-alpine", "16.1", "3.19",
		"1.22-bookworm", "sha-4f2a9c1", "build-1024", "release-2024.06"}
	swrHumans = []string{"admin", "zhangsan", "lisi", "wang.wei", "devops", "张三", "李四", "王芳",
		"jürgen.müller", "chen_jie", "ops-oncall", "田中太郎"}
	swrRobots = []string{"robot$library+ci-puller", "robot$prod+k8s-node", "robot$staging+deployer",
		"robot$infra+mirror-sync", "robot$ci-pipeline"}
)

// swrFields are the generated contents of one event.
type swrFields struct {
	id, ms       int64
	resourceType string
	ns, repo     string
	tag          string // "" for a repository
	digestKey    uint64 // nonzero: artifact named by digest
	user         string
	clairKey     uint64 // nonzero: "robot$Clair-<uuid>" scanner account
}

// appendOddRecord appends the JSON of a well-formed record served odd.
func (a *swrAPI) appendOddRecord(buf []byte, f *swrFields, op int, odd string) []byte {
	res, typ, user := a.served(f, odd)
	buf = append(buf, '{')
	if odd == OddExtra {
		buf = append(buf, oddExtraHead...)
	}
	buf = append(buf, `"id":`...)
	buf = strconv.AppendInt(buf, f.id, 10)
	buf = append(buf, `,"op_time":"`...)
	buf = time.UnixMilli(f.ms).UTC().AppendFormat(buf, opTimeLayout)
	buf = append(buf, `","operation":"`...)
	buf = append(buf, swrOperations[op]...)
	buf = append(buf, `","resource":`...)
	buf = appendJSONString(buf, res)
	buf = append(buf, `,"resource_type":`...)
	if odd == OddNull {
		buf = append(buf, "null"...)
	} else {
		buf = appendJSONString(buf, typ)
	}
	buf = append(buf, `,"username":`...)
	if odd == OddNull {
		buf = append(buf, "null"...)
	} else {
		buf = appendJSONString(buf, user)
	}
	if odd == OddExtra {
		buf = append(buf, oddExtraTail...)
	}
	return append(buf, '}')
}

func (a *swrAPI) fields(in *swrInstance, e int64, op int) swrFields {
	h := hashOf(a.seed, saltRecord, in.hash, uint64(e))
	h2 := hashOf(a.seed, saltRecordExtra, in.hash, uint64(e))
	slot := e - e%a.sameTime // the run's first event; e itself when SameTime <= 1
	f := swrFields{
		id: in.idBase + e + 1,
		ms: a.startMs + slot*a.intervalMs + int64(hashOf(a.seed, saltJitter, in.hash, uint64(slot))%uint64(a.intervalMs)),
	}
	nsIdx := h % uint64(len(swrNamespaces))
	repoIdx := (h >> 8) % uint64(len(swrRepos))
	tagIdx := (h >> 16) % uint64(len(swrTags))
	f.ns, f.repo, f.tag = swrNamespaces[nsIdx], swrRepos[repoIdx], swrTags[tagIdx]

	// Resource types by operation: pulls are of artifacts; pushes (create)
	// are mostly artifacts; deletes hit all three kinds.
	kind := (h >> 24) % 100
	switch {
	case op == opPull || kind < 55:
		f.resourceType = "artifact"
		if kind%3 != 0 { // two in three artifacts are named by digest
			f.digestKey = hashOf(a.seed, saltDigest, nsIdx, repoIdx, tagIdx) | 1
		}
	case kind < 80:
		f.resourceType = "tag"
	default:
		f.resourceType = "repository"
		f.tag = ""
	}

	// Users: pulls are mostly robots (scanners, nodes); changes mostly people.
	who := (h >> 32) % 100
	robotShare := uint64(35)
	if op == opPull {
		robotShare = 65
	}
	switch {
	case who < robotShare/3:
		f.clairKey = h2 | 1
	case who < robotShare:
		f.user = swrRobots[(h2>>8)%uint64(len(swrRobots))]
	default:
		f.user = swrHumans[(h2>>16)%uint64(len(swrHumans))]
	}
	return f
}

// appendResource writes "ns/repo", "ns/repo:tag" or "ns/repo:sha256:<hex>"
// as in the documented example.
func (f *swrFields) appendResource(dst []byte) []byte {
	dst = append(dst, f.ns...)
	dst = append(dst, '/')
	dst = append(dst, f.repo...)
	switch {
	case f.digestKey != 0:
		dst = append(dst, ":sha256:"...)
		k := f.digestKey
		dst = appendHex(dst, k, mix64(k), mix64(k+1), mix64(k+2))
	case f.tag != "":
		dst = append(dst, ':')
		dst = append(dst, f.tag...)
	}
	return dst
}

func (f *swrFields) appendUsername(dst []byte) []byte {
	if f.clairKey != 0 {
		dst = append(dst, "robot$Clair-"...)
		return appendUUID(dst, f.clairKey, mix64(f.clairKey))
	}
	return append(dst, f.user...)
}
