package simulator

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// DBSS SQL audit and alarm logs, as the official SDK (services/dbss/v1)
// defines them:
//
//	POST /v2/{project_id}/audit/{instance_id}/sqls        ListAuditSqlsNew
//	POST /v1/{project_id}/{instance_id}/audit/sqls        ListAuditSqls
//	POST /v2/{project_id}/audit/{instance_id}/alarm-log   ListAuditAlarmLogNew
//	POST /v1/{project_id}/{instance_id}/audit/alarm-log   ListAuditAlarmLog
//
// The SQL body is AuditSqlRequest ({"time":{…},"page","size","time_order",
// filters}), the alarm body AlarmLogRequest ({"time":{…},"page","size",
// filters}); page and size are numbers (int32), times "yyyy-MM-dd
// HH:mm:ss" in UTC. The SQL answer is {"total","count","sqls":[{"sql":
// AuditSqlResponseSql}]}, the alarm answer {"total_num","alarm_log":[…]},
// whose records have alarmLife and sendEmail on the older path and
// alarm_life and send_email on the newer one. CurrentPathStatus,
// CurrentPathMissing, LegacyPathGone, MaxLag, SameSecond and Listing
// apply as to the operation logs; DBSSVariants chooses where the SDK is
// silent.

// DBSSVariants are the behaviours of the SQL audit and alarm lists the SDK
// leaves open. The zero value: times in the request's layout, SQL ids
// present and unique, "total" and "count" both the count of all,
// time_order honoured, sizes up to 100, alarms that never change.
type DBSSVariants struct {
	// TimeFormat is how start_time, alarm_time and alarm_fix_time are
	// written.
	TimeFormat DBSSTimeFormat
	// SQLNoID serves SQL records without id.
	SQLNoID bool
	// SQLSharedIDs gives runs of five consecutive SQL records one id (a
	// session's, say): ids are not unique.
	SQLSharedIDs bool
	// SQLCopies runs one SQL statement in ten twice in its second: a copy
	// with its own id, or byte-identical under SQLNoID.
	SQLCopies bool
	// SQLCount is what "total" and "count" hold.
	SQLCount DBSSCount
	// IgnoreTimeOrder lists SQL records in Listing.Order whatever
	// time_order asks; otherwise ASC and DESC are honoured.
	IgnoreTimeOrder bool
	// MaxSize, when set, refuses a size above it with 400 (SQL and alarm
	// lists).
	MaxSize int
	// AlarmStatusChanges closes each alarm a while after it was raised:
	// alarm_status UNDO becomes DONE, alarm_life ON becomes OFF and
	// alarm_fix_time appears, so that listings before and after differ.
	AlarmStatusChanges bool
	// AlarmNoID serves alarms without id.
	AlarmNoID bool
	// TotalShort is subtracted from every total of the SQL and alarm
	// lists, not below 0: a total too small.
	TotalShort int64
	// ListCap, when set, lists at most the first ListCap records of a SQL
	// query (pages past it are empty) while the total still counts all, as
	// the console's "a maximum of 10,000 records can be retrieved in a
	// query" suggests the API may.
	ListCap int
}

// DBSSTimeFormat is how the SQL and alarm lists write a record's times.
type DBSSTimeFormat int

const (
	// TimeLayout writes "yyyy-MM-dd HH:mm:ss" in UTC, as requests do.
	TimeLayout DBSSTimeFormat = iota
	// TimeEpochMillis writes milliseconds since 1970 as a number.
	TimeEpochMillis
	// TimeEpochMillisString writes milliseconds since 1970 as a string.
	TimeEpochMillisString
	// TimeRFC3339Local writes RFC 3339 at +08:00 (Beijing time).
	TimeRFC3339Local
)

func (f DBSSTimeFormat) String() string {
	switch f {
	case TimeEpochMillis:
		return "epoch-ms"
	case TimeEpochMillisString:
		return "epoch-ms-string"
	case TimeRFC3339Local:
		return "rfc3339+08"
	}
	return "layout"
}

// DBSSCount is what the SQL list's "total" and "count" hold.
type DBSSCount int

const (
	// CountBoth serves both as the count of all matching records.
	CountBoth DBSSCount = iota
	// CountOnly serves "count" alone.
	CountOnly
	// CountIsPage serves "total" as the count of all and "count" as the
	// records on the page.
	CountIsPage
)

func (c DBSSCount) String() string {
	switch c {
	case CountOnly:
		return "count-only"
	case CountIsPage:
		return "count-is-page"
	}
	return "total-and-count"
}

// DBSSSQLRecord is one SQL audit record.
type DBSSSQLRecord struct {
	// ID is the served id; "" under SQLNoID.
	ID         string
	Time       time.Time // start_time, second precision, UTC
	Statement  string
	ClientIP   string
	ClientName string
	DBIP       string
	DBUser     string
	QueryType  string
	RuleName   string
	RiskLevel  string
	Response   string // SUCCESS or FAILED
	DBInstance string
	Table      string
	VisibleAt  time.Time
	// Key tells records apart, whatever the id variant; byte-identical
	// copies (SQLCopies with SQLNoID) share it.
	Key string
	// Raw is the record's JSON ("sql" object) as it is served.
	Raw string
}

// DBSSAlarm is one alarm log.
type DBSSAlarm struct {
	// ID is the served id; "" under AlarmNoID.
	ID          string
	Time        time.Time // alarm_time
	Type        string
	Risk        string
	Description string
	SendEmail   bool
	// FixedAt is when the alarm closes under AlarmStatusChanges.
	FixedAt   time.Time
	VisibleAt time.Time
	// Key tells alarms apart whatever the id variant.
	Key string
}

var (
	dbssSQLs = []struct{ qt, stmt, risk, rule, table string }{
		{"SELECT", "SELECT id, amount FROM orders WHERE id = 42", "NO_RISK", "", "orders"},
		{"SELECT", "select * from customers where name like '%张%'", "LOW", "全表查询", "customers"},
		{"INSERT", "INSERT INTO orders (id, amount) VALUES (1001, 9.50)", "NO_RISK", "", "orders"},
		{"UPDATE", "UPDATE accounts SET balance = balance - 10 WHERE id = 7", "NO_RISK", "", "accounts"},
		{"DELETE", "DELETE FROM sessions WHERE expires < NOW()", "MEDIUM", "批量删除", "sessions"},
		{"SELECT_FOR_UPDATE", "SELECT balance FROM accounts WHERE id = 7 FOR UPDATE", "NO_RISK", "", "accounts"},
		{"CREATE_TABLE", "CREATE TABLE audit_tmp (id INT PRIMARY KEY, note TEXT)", "LOW", "", "audit_tmp"},
		{"DROP_TABLE", "DROP TABLE audit_tmp", "HIGH", "Drop table", "audit_tmp"},
		{"GRANT", "GRANT SELECT ON shop.* TO 'report_ro'@'%'", "HIGH", "权限变更", ""},
		{"CREATE_USER", "CREATE USER 'etl'@'10.%' IDENTIFIED BY '***'", "MEDIUM", "", ""},
		{"LOGIN", "login", "NO_RISK", "", ""},
		{"INSERT_SELECT", "INSERT INTO orders_archive SELECT * FROM orders WHERE created < '2024-01-01'", "LOW", "", "orders_archive"},
	}
	dbssClientIPs   = []string{"10.0.1.15", "10.0.1.16", "192.168.3.200", "2001:db8::5", "10.0.2.9"}
	dbssClientNames = []string{"mysql-connector-java", "Navicat", "pymysql", "", "DBeaver 23.1"}
	dbssDBUsers     = []string{"root", "app_rw", "report_ro", "张三", "etl"}
	dbssAlarmTypes  = []struct{ typ, risk, desc string }{
		{"RISK_RULE", "HIGH", "命中风险规则: Drop table"},
		{"RISK_RULE", "MEDIUM", "Risk rule matched: bulk delete"},
		{"RISK_CPU", "LOW", "CPU usage above 80%"},
		{"RISK_DISK", "MEDIUM", "磁盘使用率超过阈值"},
		{"AUDIT_QPS_OVERFLOW", "HIGH", "Audit traffic over the specification; storage delayed"},
		{"RISK_AGENT", "LOW", "Agent 10.0.1.15 abnormal"},
	}
)

// Salts of the SQL and alarm generators.
var (
	saltDBSSSQL   = hashString("dbss-sql")
	saltDBSSAlarm = hashString("dbss-alarm")
)

// genDBSSSQL generates instance ih's SQL audit records.
func genDBSSSQL(seed int64, ih uint64, cfg DBSSConfig, start time.Time) []DBSSSQLRecord {
	interval := cfg.SQLInterval
	if interval < time.Second {
		interval = cfg.Interval
	}
	if interval < time.Second {
		interval = time.Minute
	}
	v := cfg.Variants
	recs := make([]DBSSSQLRecord, 0, max(cfg.SQLRecords, 0))
	t := start
	for i := 0; len(recs) < cfg.SQLRecords; i++ {
		h := hashOf(seed, saltDBSSSQL, ih, uint64(i))
		h2 := mix64(h)
		advance := h%3 != 0
		if cfg.SameSecond > 1 {
			advance = len(recs)%cfg.SameSecond == 0
		}
		if i > 0 && advance {
			t = t.Add(time.Second + time.Duration((h>>8)%uint64(2*interval/time.Second))*time.Second)
		}
		var lag time.Duration
		if cfg.MaxLag > 0 {
			lag = time.Duration(h2 % uint64(cfg.MaxLag))
		}
		q := dbssSQLs[(h>>16)%uint64(len(dbssSQLs))]
		resp := "SUCCESS"
		if (h>>24)%12 == 0 {
			resp = "FAILED"
		}
		id := string(appendHex(nil, h2, h))
		if v.SQLSharedIDs {
			id = string(appendHex(nil, hashOf(seed, saltDBSSSQL, ih, uint64(i/5), 1)))
		}
		rec := DBSSSQLRecord{
			ID: id, Time: t, Statement: q.stmt, QueryType: q.qt, RuleName: q.rule, RiskLevel: q.risk, Response: resp, Table: q.table,
			ClientIP:   dbssClientIPs[(h>>28)%uint64(len(dbssClientIPs))],
			ClientName: dbssClientNames[(h>>32)%uint64(len(dbssClientNames))],
			DBIP:       "192.168.0.10",
			DBUser:     dbssDBUsers[(h>>36)%uint64(len(dbssDBUsers))],
			DBInstance: "mysql-orders-01",
			VisibleAt:  t.Add(lag),
			Key:        "sql-" + strconv.Itoa(i),
		}
		if v.SQLNoID {
			rec.ID = ""
		}
		recs = append(recs, rec)
		if v.SQLCopies && i%10 == 3 && len(recs) < cfg.SQLRecords {
			c := rec
			c.ID = string(appendHex(nil, h2^0x5a5a, h))
			if v.SQLNoID || v.SQLSharedIDs {
				c.ID = rec.ID
			}
			c.Key = rec.Key + "-copy"
			if v.SQLNoID {
				c.Key = rec.Key // byte-identical: one record to anyone
			}
			recs = append(recs, c)
		}
	}
	return recs
}

// genDBSSAlarms generates instance ih's alarm logs.
func genDBSSAlarms(seed int64, ih uint64, cfg DBSSConfig, start time.Time) []DBSSAlarm {
	interval := cfg.AlarmInterval
	if interval < time.Second {
		interval = 10 * max(cfg.Interval, time.Minute)
	}
	out := make([]DBSSAlarm, 0, max(cfg.Alarms, 0))
	t := start
	for i := range max(cfg.Alarms, 0) {
		h := hashOf(seed, saltDBSSAlarm, ih, uint64(i))
		h2 := mix64(h)
		if i > 0 && h%4 != 0 {
			t = t.Add(time.Second + time.Duration((h>>8)%uint64(2*interval/time.Second))*time.Second)
		}
		var lag time.Duration
		if cfg.MaxLag > 0 {
			lag = time.Duration(h2 % uint64(cfg.MaxLag))
		}
		a := dbssAlarmTypes[(h>>16)%uint64(len(dbssAlarmTypes))]
		id := string(appendUUID(nil, h, h2))
		if cfg.Variants.AlarmNoID {
			id = ""
		}
		out = append(out, DBSSAlarm{
			ID: id, Time: t, Type: a.typ, Risk: a.risk, Description: a.desc, SendEmail: (h>>24)%2 == 0,
			FixedAt:   t.Add(time.Minute + time.Duration((h>>28)%7200)*time.Second),
			VisibleAt: t.Add(lag),
			Key:       "alarm-" + strconv.Itoa(i),
		})
	}
	return out
}

// registerSQLAndAlarms adds the SQL audit and alarm routes.
func (a *dbssAPI) registerSQLAndAlarms(internal serviceErrorBody) {
	s := a.s
	current := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if a.currentRefused(w) {
				return
			}
			h(w, r)
		}
	}
	legacy := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if a.cfg.LegacyPathGone {
				s.gatewayError(w, http.StatusNotFound, codeAPINotFound, msgAPINotFound)
				return
			}
			h(w, r)
		}
	}
	s.handle("POST /v2/{project_id}/audit/{instance_id}/sqls", internal, current(a.handleSQLs))
	s.handle("POST /v1/{project_id}/{instance_id}/audit/sqls", internal, legacy(a.handleSQLs))
	s.handle("POST /v2/{project_id}/audit/{instance_id}/alarm-log", internal, current(func(w http.ResponseWriter, r *http.Request) { a.handleAlarms(w, r, true) }))
	s.handle("POST /v1/{project_id}/{instance_id}/audit/alarm-log", internal, legacy(func(w http.ResponseWriter, r *http.Request) { a.handleAlarms(w, r, false) }))
}

// currentRefused answers as CurrentPathMissing and CurrentPathStatus say
// the newer paths do, reporting whether it answered.
func (a *dbssAPI) currentRefused(w http.ResponseWriter) bool {
	s := a.s
	switch st := a.cfg.CurrentPathStatus; {
	case a.cfg.CurrentPathMissing || st == http.StatusNotFound:
		s.gatewayError(w, http.StatusNotFound, codeAPINotFound, msgAPINotFound)
	case st == http.StatusBadRequest:
		a.error(w, st, codeDBSSInvalidParam, "The request is not supported by this API version.")
	case st == http.StatusForbidden:
		a.error(w, st, codeDBSSForbidden, "Insufficient permissions.")
	case st != 0:
		s.gatewayError(w, st, codeDBSSUnavailable, http.StatusText(st))
	default:
		return false
	}
	return true
}

// listQuery is the part of AuditSqlRequest and AlarmLogRequest the
// simulator reads; page and size must be JSON numbers, as the SDK's int32
// (a quoted number is refused: the operation logs' string form is not
// taken for granted here).
type listQuery struct {
	Time *struct {
		StartTime *string `json:"start_time"`
		EndTime   *string `json:"end_time"`
		TimeRange *string `json:"time_range"`
	} `json:"time"`
	Page      json.RawMessage `json:"page"`
	Size      json.RawMessage `json:"size"`
	TimeOrder *string         `json:"time_order"`
}

// readListQuery checks the common part of a SQL or alarm list request and
// returns the range, page and size; it answers 400 itself.
func (a *dbssAPI) readListQuery(w http.ResponseWriter, r *http.Request) (from, to time.Time, page, size int, q listQuery, ok bool) {
	s := a.s
	if r.PathValue("project_id") != s.cfg.ProjectID {
		a.error(w, http.StatusForbidden, codeDBSSForbidden, "Insufficient permissions.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &q)
	}
	if err != nil {
		a.error(w, http.StatusBadRequest, codeDBSSInvalidParam, "Invalid parameter: the request body is not an object of the documented shape")
		return
	}
	now := s.now().UTC()
	from, to = time.Time{}, now
	if q.Time == nil {
		a.error(w, http.StatusBadRequest, codeDBSSInvalidParam, "Invalid parameter: time is required")
		return
	}
	bad := func(msg string) { a.error(w, http.StatusBadRequest, codeDBSSInvalidParam, "Invalid parameter: "+msg) }
	switch {
	case q.Time.TimeRange != nil:
		d, known := dbssRanges[*q.Time.TimeRange]
		if !known {
			bad("time_range is not one of HALF_HOUR, HOUR, THREE_HOUR, TWELVE_HOUR, DAY, WEEK, MONTH")
			return
		}
		from = now.Add(-d)
	case q.Time.StartTime == nil || q.Time.EndTime == nil:
		bad("start_time and end_time must be given together")
		return
	default:
		var e1, e2 error
		from, e1 = time.Parse(dbssTimeLayout, *q.Time.StartTime)
		to, e2 = time.Parse(dbssTimeLayout, *q.Time.EndTime)
		if e1 != nil || e2 != nil || to.Before(from) {
			bad("start_time and end_time must be yyyy-MM-dd HH:mm:ss, start before end")
			return
		}
	}
	maxSize := int64(100)
	if a.cfg.Variants.MaxSize > 0 {
		maxSize = int64(a.cfg.Variants.MaxSize)
	}
	p, perr := numberIn(q.Page, 1, 1<<30)
	n, serr := numberIn(q.Size, 1, maxSize)
	if perr != nil || serr != nil {
		bad("page must be a number from 1 and size a number from 1 to " + strconv.FormatInt(maxSize, 10))
		return
	}
	return from, to, int(p), int(n), q, true
}

// numberIn reads a required JSON number (not a string) in [lo, hi].
func numberIn(raw json.RawMessage, lo, hi int64) (int64, error) {
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, errors.New("not an integer in range")
	}
	return v, nil
}

func (a *dbssAPI) handleSQLs(w http.ResponseWriter, r *http.Request) {
	s := a.s
	recs, known := a.sqls[r.PathValue("instance_id")]
	if !known {
		a.error(w, http.StatusNotFound, codeDBSSInstanceNotFound, "The instance does not exist.")
		return
	}
	from, to, page, size, q, ok := a.readListQuery(w, r)
	if !ok {
		return
	}
	l := a.cfg.Listing
	if q.TimeOrder != nil && !a.cfg.Variants.IgnoreTimeOrder {
		switch *q.TimeOrder {
		case "ASC":
			l.Order = OldestFirst
		case "DESC":
			l.Order = NewestFirst
		default:
			a.error(w, http.StatusBadRequest, codeDBSSInvalidParam, "Invalid parameter: time_order must be ASC or DESC")
			return
		}
	}
	now := s.now().UTC()
	var match []DBSSSQLRecord
	for _, rec := range recs {
		if !now.Before(rec.VisibleAt) && l.meets(rec.Time, rec.Time, from, to) {
			match = append(match, rec)
		}
	}
	order(l, match, func(r DBSSSQLRecord) string { return r.Key })
	total := max(l.total(len(match), &a.lists)-a.cfg.Variants.TotalShort, 0)
	if !s.slowPage(r) {
		return
	}
	off := (page - 1) * size
	listable := match
	if c := a.cfg.Variants.ListCap; c > 0 && len(listable) > c {
		listable = listable[:c]
	}
	list := listable[min(off, len(listable)):min(off+size, len(listable))]
	buf := []byte{'{'}
	switch a.cfg.Variants.SQLCount {
	case CountOnly:
		buf = append(buf, `"count":`...)
		buf = strconv.AppendInt(buf, total, 10)
	case CountIsPage:
		buf = append(buf, `"total":`...)
		buf = strconv.AppendInt(buf, total, 10)
		buf = append(buf, `,"count":`...)
		buf = strconv.AppendInt(buf, int64(len(list)), 10)
	default:
		buf = append(buf, `"total":`...)
		buf = strconv.AppendInt(buf, total, 10)
		buf = append(buf, `,"count":`...)
		buf = strconv.AppendInt(buf, total, 10)
	}
	buf = append(buf, `,"sqls":[`...)
	for i, rec := range list {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"sql":`...)
		buf = a.appendSQL(buf, rec)
		buf = append(buf, '}')
	}
	buf = append(buf, "]}"...)
	s.stats.pages.Add(1)
	s.stats.records.Add(int64(len(list)))
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(buf)
}

// appendTime appends t as the TimeFormat variant writes it.
func (a *dbssAPI) appendTime(buf []byte, t time.Time) []byte {
	switch a.cfg.Variants.TimeFormat {
	case TimeEpochMillis:
		return strconv.AppendInt(buf, t.UnixMilli(), 10)
	case TimeEpochMillisString:
		return appendJSONString(buf, strconv.FormatInt(t.UnixMilli(), 10))
	case TimeRFC3339Local:
		return appendJSONString(buf, t.In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339))
	}
	return appendJSONString(buf, t.UTC().Format(dbssTimeLayout))
}

// appendSQL appends rec as an AuditSqlResponseSql, members in the SDK
// model's order.
func (a *dbssAPI) appendSQL(buf []byte, rec DBSSSQLRecord) []byte {
	buf = append(buf, '{')
	if rec.ID != "" || !a.cfg.Variants.SQLNoID {
		buf = append(buf, `"id":`...)
		buf = appendJSONString(buf, rec.ID)
		buf = append(buf, ',')
	}
	str := func(name, v string) {
		buf = append(buf, '"')
		buf = append(buf, name...)
		buf = append(buf, `":`...)
		buf = appendJSONString(buf, v)
		buf = append(buf, ',')
	}
	str("sql_statement", rec.Statement)
	str("client_ip", rec.ClientIP)
	str("client_name", rec.ClientName)
	str("db_ip", rec.DBIP)
	str("db_user", rec.DBUser)
	str("query_type", rec.QueryType)
	buf = append(buf, `"operated_obj_info":[`...)
	if rec.Table != "" {
		buf = append(buf, `{"column_name":"","object_type":"","schema_name":"shop","sql_type":`...)
		buf = appendJSONString(buf, rec.QueryType)
		buf = append(buf, `,"sys_name":"","table_name":`...)
		buf = appendJSONString(buf, rec.Table)
		buf = append(buf, '}')
	}
	buf = append(buf, "],"...)
	str("rule_name", rec.RuleName)
	str("risk_level", rec.RiskLevel)
	buf = append(buf, `"start_time":`...)
	buf = a.appendTime(buf, rec.Time)
	buf = append(buf, ',')
	str("sql_response", rec.Response)
	buf = append(buf, `"db_instance":`...)
	buf = appendJSONString(buf, rec.DBInstance)
	return append(buf, '}')
}

func (a *dbssAPI) handleAlarms(w http.ResponseWriter, r *http.Request, newer bool) {
	s := a.s
	alarms, known := a.alarms[r.PathValue("instance_id")]
	if !known {
		a.error(w, http.StatusNotFound, codeDBSSInstanceNotFound, "The instance does not exist.")
		return
	}
	from, to, page, size, _, ok := a.readListQuery(w, r)
	if !ok {
		return
	}
	now := s.now().UTC()
	var match []DBSSAlarm
	for _, al := range alarms {
		if !now.Before(al.VisibleAt) && a.cfg.Listing.meets(al.Time, al.Time, from, to) {
			match = append(match, al)
		}
	}
	order(a.cfg.Listing, match, func(al DBSSAlarm) string { return al.Key })
	total := max(a.cfg.Listing.total(len(match), &a.lists)-a.cfg.Variants.TotalShort, 0)
	if !s.slowPage(r) {
		return
	}
	off := (page - 1) * size
	list := match[min(off, len(match)):min(off+size, len(match))]
	buf := []byte(`{"total_num":`)
	buf = strconv.AppendInt(buf, total, 10)
	buf = append(buf, `,"alarm_log":[`...)
	for i, al := range list {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = a.appendAlarm(buf, al, newer, now)
	}
	buf = append(buf, "]}"...)
	s.stats.pages.Add(1)
	s.stats.records.Add(int64(len(list)))
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(buf)
}

// appendAlarm appends al as it stands at now, in the newer path's model
// (alarm_life, send_email) or the older one's (alarmLife, sendEmail).
func (a *dbssAPI) appendAlarm(buf []byte, al DBSSAlarm, newer bool, now time.Time) []byte {
	fixed := a.cfg.Variants.AlarmStatusChanges && !now.Before(al.FixedAt)
	life, status := "ON", "UNDO"
	if fixed {
		life, status = "OFF", "DONE"
	}
	lifeName, emailName := `"alarmLife":`, `"sendEmail":`
	if newer {
		lifeName, emailName = `"alarm_life":`, `"send_email":`
	}
	buf = append(buf, '{')
	if al.ID != "" {
		buf = append(buf, `"id":`...)
		buf = appendJSONString(buf, al.ID)
		buf = append(buf, ',')
	}
	buf = append(buf, lifeName...)
	buf = appendJSONString(buf, life)
	buf = append(buf, ',')
	buf = append(buf, emailName...)
	buf = strconv.AppendBool(buf, al.SendEmail)
	buf = append(buf, `,"alarm_time":`...)
	buf = a.appendTime(buf, al.Time)
	buf = append(buf, `,"alarm_type":`...)
	buf = appendJSONString(buf, al.Type)
	if fixed {
		buf = append(buf, `,"alarm_fix_time":`...)
		buf = a.appendTime(buf, al.FixedAt)
	}
	buf = append(buf, `,"alarm_status":`...)
	buf = appendJSONString(buf, status)
	buf = append(buf, `,"alarm_risk":`...)
	buf = appendJSONString(buf, al.Risk)
	buf = append(buf, `,"alarm_description":`...)
	buf = appendJSONString(buf, al.Description)
	return append(buf, '}')
}

// DBSSSQLRecords returns every SQL audit record of instance, listed or
// not yet, ascending by time, with its served JSON; nil for an unknown
// instance.
func (s *Server) DBSSSQLRecords(instance string) []DBSSSQLRecord {
	recs := slices.Clone(s.dbss.sqls[instance])
	for i := range recs {
		recs[i].Raw = string(s.dbss.appendSQL(nil, recs[i]))
	}
	return recs
}

// DBSSAlarms returns every alarm log of instance, listed or not yet,
// ascending by time; nil for an unknown instance.
func (s *Server) DBSSAlarms(instance string) []DBSSAlarm {
	return slices.Clone(s.dbss.alarms[instance])
}

// DBSSAlarmJSON is al as the newer path serves it at now.
func (s *Server) DBSSAlarmJSON(al DBSSAlarm, now time.Time) string {
	return string(s.dbss.appendAlarm(nil, al, true, now))
}
