package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DBSS (Database Security Service): "query user operation logs"
// (查询用户操作日志信息),
//
//	POST /v1/{project_id}/audit/{instance_id}/operation-log
//	POST /v1/{project_id}/{instance_id}/dbss/audit/operate-log  (retiring)
//
// The body is {"time":{"start_time","end_time"} or {"time_range"},
// "user_name","action","result","page","size"}; times are
// "yyyy-MM-dd HH:mm:ss" in UTC and come in pairs; time_range wins over
// them; page and size are strings (numbers are accepted too), page from 1,
// size 1..100, defaults 1 and 10. The answer lists the operation logs whose
// time lies in the range, newest first, with total_num. action comes back in
// English or Chinese (创建, 删除, 更新, 下载), as consoles in either language
// record it. Errors have the documented {"error":{"error_code","error_msg"}}
// body.

// DBSSConfig describes the generated DBSS operation logs.
type DBSSConfig struct {
	// Instances are the DBSS instance IDs that exist; others get 404.
	Instances []string
	// Records is how many operation logs each instance has.
	Records int
	// Start is about the time of the first record. Default 2024-01-01.
	Start time.Time
	// Interval is the mean spacing of record times; about one record in
	// three shares the second of the one before. Default 1m.
	Interval time.Duration
	// SameSecond, when above 1, places records in runs of SameSecond that
	// share one second, instead of about one in three sharing the second
	// before, so that one second's records fill several pages.
	SameSecond int
	// MaxLag bounds how long after its time a record is listed.
	MaxLag time.Duration
	// CurrentPathMissing makes the current path answer 404, as API Gateway
	// does for an API not published in a region.
	CurrentPathMissing bool
	// CurrentPathStatus, when set, makes the current path answer this
	// status instead of serving: 400 (the service refuses the request's
	// shape), 403 (the policy does not grant it), 404, 405 (the method is
	// not published) or 501.
	CurrentPathStatus int
	// Listing is the order, bounds and total of the list (both paths).
	Listing Listing
	// LegacyPathGone makes the retiring path answer 404.
	LegacyPathGone bool
	// SQLRecords is how many SQL audit records each instance has (see
	// dbss_sql.go); they start at Start too, placed like the operation
	// logs (SameSecond, MaxLag apply).
	SQLRecords int
	// SQLInterval is the mean spacing of SQL record times. Default
	// Interval.
	SQLInterval time.Duration
	// Alarms is how many alarm logs each instance has.
	Alarms int
	// AlarmInterval is the mean spacing of alarm times. Default ten times
	// Interval (at least ten minutes).
	AlarmInterval time.Duration
	// Variants choose where the SDK leaves the SQL and alarm lists open.
	Variants DBSSVariants
}

// DBSSRecord is one operation log.
type DBSSRecord struct {
	ID          string
	User        string
	Time        time.Time // second precision, UTC
	Action      string    // as served: "create" or "创建", …
	Function    string
	Name        string
	Description string
	Result      string
	VisibleAt   time.Time
	// Malformed is "" or the Malformed* kind the record is served with
	// (see Faults.MalformedRate): MalformedIDBool, MalformedNoID or
	// MalformedTime.
	Malformed string
	// Odd is "" or the Odd* kind a well-formed record is served with; the
	// fields above stay the generated values.
	Odd string
	// Raw is the record's JSON exactly as it is served now.
	Raw string
}

const dbssTimeLayout = "2006-01-02 15:04:05"

// Stand-in codes in the documented DBSS.XXXX shape.
const (
	codeDBSSInvalidParam     = "DBSS.XXXX" // documented placeholder for 400
	codeDBSSForbidden        = "DBSS.0403" // NOT documented: stand-in
	codeDBSSInstanceNotFound = "DBSS.0404" // NOT documented: stand-in
	codeDBSSInternal         = "DBSS.0500" // NOT documented: stand-in
	codeDBSSUnavailable      = "APIG.0106" // NOT documented: stand-in for 405/501 at the gateway
)

type dbssErrorBody struct {
	Error serviceErrorBody `json:"error"`
}

var (
	dbssActionsEN = []string{"create", "update", "delete", "download"}
	dbssActionsZH = []string{"创建", "更新", "删除", "下载"}
	dbssFunctions = []string{"数据库列表", "审计规则", "Agent管理", "报表", "Audit rules", "Databases", "告警通知"}
	dbssNames     = []string{"db01", "db01 ", "orders_mysql", "风险规则-高危", "report-weekly", "agent-10.0.0.12", ""}
	dbssDescs     = []string{"删除审计的数据库", "关闭审计客户端", "创建新的数据库", "Download audit report", "Update risk rule \"drop table\"", "添加Agent", ""}
	dbssUsers     = []string{"hby-test", "admin", "张三", "ops_oncall", "jürgen.müller", "security-auditor"}
)

type dbssAPI struct {
	s         *Server
	cfg       DBSSConfig
	instances map[string][]DBSSRecord // ascending time
	sqls      map[string][]DBSSSQLRecord
	alarms    map[string][]DBSSAlarm
	lists     atomic.Int64 // list requests answered
}

func newDBSSAPI(s *Server, cfg DBSSConfig) *dbssAPI {
	a := &dbssAPI{s: s, cfg: cfg, instances: map[string][]DBSSRecord{}, sqls: map[string][]DBSSSQLRecord{}, alarms: map[string][]DBSSAlarm{}}
	start := cfg.Start
	if start.IsZero() {
		start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	interval := cfg.Interval
	if interval < time.Second {
		interval = time.Minute
	}
	seed := s.cfg.Seed
	for _, ins := range cfg.Instances {
		if _, dup := a.instances[ins]; dup {
			continue
		}
		ih := hashString(ins)
		recs := make([]DBSSRecord, 0, max(cfg.Records, 0))
		t := start.UTC().Truncate(time.Second)
		for i := range max(cfg.Records, 0) {
			h := hashOf(seed, saltDBSS, ih, uint64(i))
			h2 := mix64(h)
			advance := h%3 != 0
			if cfg.SameSecond > 1 {
				advance = i%cfg.SameSecond == 0
			}
			if i > 0 && advance {
				t = t.Add(time.Second + time.Duration((h>>8)%uint64(2*interval/time.Second))*time.Second)
			}
			var lag time.Duration
			if cfg.MaxLag > 0 {
				lag = time.Duration(h2 % uint64(cfg.MaxLag))
			}
			act := int((h >> 16) % 4)
			action := dbssActionsEN[act]
			if (h>>20)%2 == 0 {
				action = dbssActionsZH[act]
			}
			result := "success"
			if (h>>24)%10 == 0 {
				result = "fail"
			}
			recs = append(recs, DBSSRecord{
				ID:          string(appendHex(nil, h2))[:16] + strconv.Itoa(i),
				User:        dbssUsers[(h>>28)%uint64(len(dbssUsers))],
				Time:        t,
				Action:      action,
				Function:    dbssFunctions[(h>>32)%uint64(len(dbssFunctions))],
				Name:        dbssNames[(h>>36)%uint64(len(dbssNames))],
				Description: dbssDescs[(h>>40)%uint64(len(dbssDescs))],
				Result:      result,
				VisibleAt:   t.Add(lag),
			})
		}
		a.instances[ins] = recs
		first := start.UTC().Truncate(time.Second)
		a.sqls[ins] = genDBSSSQL(seed, ih, cfg, first)
		a.alarms[ins] = genDBSSAlarms(seed, ih, cfg, first)
	}
	if len(cfg.Instances) == 0 {
		return a // as for TaurusDB: no routes unless configured
	}
	internal := serviceErrorBody{codeDBSSInternal, "Internal server error."}
	s.handle("POST /v1/{project_id}/audit/{instance_id}/operation-log", internal, func(w http.ResponseWriter, r *http.Request) {
		if a.currentRefused(w) {
			return
		}
		a.handleOperateLog(w, r)
	})
	s.handle("POST /v1/{project_id}/{instance_id}/dbss/audit/operate-log", internal, func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.LegacyPathGone {
			s.gatewayError(w, http.StatusNotFound, codeAPINotFound, msgAPINotFound)
			return
		}
		a.handleOperateLog(w, r)
	})
	a.registerSQLAndAlarms(internal)
	return a
}

func (a *dbssAPI) error(w http.ResponseWriter, status int, code, msg string) {
	a.s.writeError(w, status, dbssErrorBody{serviceErrorBody{code, msg}})
}

// dbssQuery is the request body; page and size may be strings or numbers.
type dbssQuery struct {
	Time *struct {
		StartTime *string `json:"start_time"`
		EndTime   *string `json:"end_time"`
		TimeRange *string `json:"time_range"`
	} `json:"time"`
	UserName string          `json:"user_name"`
	Action   string          `json:"action"`
	Result   string          `json:"result"`
	Page     json.RawMessage `json:"page"`
	Size     json.RawMessage `json:"size"`
}

var dbssRanges = map[string]time.Duration{
	"HALF_HOUR": 30 * time.Minute, "HOUR": time.Hour, "THREE_HOUR": 3 * time.Hour,
	"TWELVE_HOUR": 12 * time.Hour, "DAY": 24 * time.Hour, "WEEK": 7 * 24 * time.Hour, "MONTH": 30 * 24 * time.Hour,
}

func (a *dbssAPI) handleOperateLog(w http.ResponseWriter, r *http.Request) {
	s := a.s
	if r.PathValue("project_id") != s.cfg.ProjectID {
		a.error(w, http.StatusForbidden, codeDBSSForbidden, "Insufficient permissions.")
		return
	}
	recs, ok := a.instances[r.PathValue("instance_id")]
	if !ok {
		a.error(w, http.StatusNotFound, codeDBSSInstanceNotFound, "The instance does not exist.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		a.error(w, http.StatusBadRequest, codeDBSSInvalidParam, "cannot read the request body")
		return
	}
	now := s.now().UTC()
	from, to, page, size, q, err := parseDBSSQuery(body, now)
	if err != nil {
		a.error(w, http.StatusBadRequest, codeDBSSInvalidParam, "Invalid parameter: "+err.Error())
		return
	}
	var match []DBSSRecord
	for _, rec := range recs {
		if now.Before(rec.VisibleAt) || !a.cfg.Listing.meets(rec.Time, rec.Time, from, to) {
			continue
		}
		if (q.UserName != "" && rec.User != q.UserName) || (q.Result != "" && rec.Result != q.Result) {
			continue
		}
		if q.Action != "" && !dbssActionIs(rec.Action, q.Action) {
			continue
		}
		match = append(match, rec)
	}
	order(a.cfg.Listing, match, func(r DBSSRecord) string { return r.ID })
	total := a.cfg.Listing.total(len(match), &a.lists)
	if !s.slowPage(r) {
		return
	}
	off := (page - 1) * size
	logs := match[min(off, len(match)):min(off+size, len(match))]
	ih := hashString(r.PathValue("instance_id"))
	f := s.faults.Load()
	buf := []byte(`{"total_num":`)
	buf = strconv.AppendInt(buf, total, 10)
	buf = append(buf, `,"operate_log":[`...)
	for i, rec := range logs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = a.appendRecord(buf, ih, rec, f)
	}
	buf = append(buf, "]}"...)
	s.stats.pages.Add(1)
	s.stats.records.Add(int64(len(logs)))
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(buf)
}

// dbssMalformed names the DBSS members a malformed record breaks.
var dbssMalformed = [3]string{MalformedIDBool, MalformedNoID, MalformedTime}

// kinds returns how rec of the instance hashed ih is served.
func (a *dbssAPI) kinds(ih uint64, rec DBSSRecord, f *Faults) (malformed, odd string) {
	return recordKinds(a.s.cfg.Seed, ih, rec.ID, f, dbssMalformed)
}

// appendRecord appends rec's JSON, members in the documented order, as
// the encoder of the documented example writes it (no HTML escaping).
func (a *dbssAPI) appendRecord(buf []byte, ih uint64, rec DBSSRecord, f *Faults) []byte {
	bad, odd := a.kinds(ih, rec, f)
	if bad == "" && odd == "" {
		type outRec struct {
			ID          string `json:"id"`
			User        string `json:"user"`
			Time        string `json:"time"`
			Function    string `json:"function"`
			Action      string `json:"action"`
			Name        string `json:"name"`
			Description string `json:"description"`
			Result      string `json:"result"`
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(outRec{rec.ID, rec.User, rec.Time.Format(dbssTimeLayout), rec.Function, rec.Action, rec.Name, rec.Description, rec.Result})
		return append(buf, bytes.TrimRight(b.Bytes(), "\n")...)
	}
	user, name, desc := rec.User, rec.Name, rec.Description
	switch odd {
	case OddUnicode, OddEscapes:
		user, name, desc = oddText(odd, user), oddText(odd, name), oddText(odd, desc)
	case OddLong:
		desc = oddText(odd, desc)
	case OddEmpty:
		name, desc = "", ""
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
		buf = append(buf, `"id":`...)
		buf = appendJSONString(buf, rec.ID)
		buf = append(buf, ',')
	}
	buf = append(buf, `"user":`...)
	buf = appendJSONString(buf, user)
	buf = append(buf, `,"time":`...)
	if bad == MalformedTime {
		buf = append(buf, `"yesterday at noon"`...)
	} else {
		buf = appendJSONString(buf, rec.Time.Format(dbssTimeLayout))
	}
	buf = append(buf, `,"function":`...)
	buf = appendJSONString(buf, rec.Function)
	buf = append(buf, `,"action":`...)
	buf = appendJSONString(buf, rec.Action)
	if odd == OddNull {
		buf = append(buf, `,"name":null,"description":null`...)
	} else {
		buf = append(buf, `,"name":`...)
		buf = appendJSONString(buf, name)
		buf = append(buf, `,"description":`...)
		buf = appendJSONString(buf, desc)
	}
	buf = append(buf, `,"result":`...)
	buf = appendJSONString(buf, rec.Result)
	if odd == OddExtra {
		buf = append(buf, oddExtraTail...)
	}
	return append(buf, '}')
}

func dbssActionIs(served, want string) bool {
	i := slices.Index(dbssActionsEN, strings.ToLower(want))
	return i >= 0 && (served == dbssActionsEN[i] || served == dbssActionsZH[i])
}

func parseDBSSQuery(body []byte, now time.Time) (from, to time.Time, page, size int, q dbssQuery, err error) {
	if err = json.Unmarshal(body, &q); err != nil {
		err = errors.New("the request body is not a JSON object")
		return
	}
	from, to = time.Time{}, now
	if q.Time != nil {
		switch {
		case q.Time.TimeRange != nil:
			d, ok := dbssRanges[*q.Time.TimeRange]
			if !ok {
				err = fmt.Errorf("time_range %q is not one of HALF_HOUR, HOUR, THREE_HOUR, TWELVE_HOUR, DAY, WEEK, MONTH", *q.Time.TimeRange)
				return
			}
			from = now.Add(-d)
		case (q.Time.StartTime == nil) != (q.Time.EndTime == nil):
			err = errors.New("start_time and end_time must be given together")
			return
		case q.Time.StartTime != nil:
			if from, err = time.Parse(dbssTimeLayout, *q.Time.StartTime); err != nil {
				err = fmt.Errorf("start_time %q is not in yyyy-MM-dd HH:mm:ss form", *q.Time.StartTime)
				return
			}
			if to, err = time.Parse(dbssTimeLayout, *q.Time.EndTime); err != nil {
				err = fmt.Errorf("end_time %q is not in yyyy-MM-dd HH:mm:ss form", *q.Time.EndTime)
				return
			}
			if to.Before(from) {
				err = errors.New("end_time must not be before start_time")
				return
			}
		}
	}
	if q.Action != "" && !slices.Contains([]string{"CREATE", "DELETE", "DOWNLOAD", "UPDATE"}, q.Action) {
		err = fmt.Errorf("action %q is not one of CREATE, DELETE, DOWNLOAD, UPDATE", q.Action)
		return
	}
	if q.Result != "" && q.Result != "success" && q.Result != "fail" {
		err = fmt.Errorf("result %q is not success or fail", q.Result)
		return
	}
	if page, err = dbssInt(q.Page, "page", 1, 1, 1<<30); err != nil {
		return
	}
	size, err = dbssInt(q.Size, "size", 10, 1, 100)
	return
}

// dbssInt reads page or size: a string of digits as documented, or a
// number as in the documented example.
func dbssInt(raw json.RawMessage, name string, def, lo, hi int) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	v := strings.Trim(string(raw), `"`)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %s must be an integer from %d to %d", name, raw, lo, hi)
	}
	return n, nil
}

// DBSSRecords returns every operation log of instance, listed or not yet,
// ascending by time, with how it is served under the faults in force now;
// nil for an unknown instance.
func (s *Server) DBSSRecords(instance string) []DBSSRecord {
	recs := slices.Clone(s.dbss.instances[instance])
	ih, f := hashString(instance), s.faults.Load()
	for i := range recs {
		recs[i].Malformed, recs[i].Odd = s.dbss.kinds(ih, recs[i], f)
		recs[i].Raw = string(s.dbss.appendRecord(nil, ih, recs[i], f))
	}
	return recs
}
