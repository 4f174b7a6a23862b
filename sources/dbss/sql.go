package dbss

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// decodeSQLPage decodes a 200 body of the SQL audit list
// ({"total","count","sqls":[{"sql":{…}}]}) into records, the inner "sql"
// objects, which stay slices of body. The total is "total", or "count"
// when the body has no "total" (the SDK documents both as the count of
// all). A body that is not such a page is a permanent error.
func decodeSQLPage(body []byte, instance string, offset, limit int) ([]window.Record, int64, error) {
	var p sqlPage
	if err := jsonscan.Members(body, p.set); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: response is not a SQL audit page: %w (body starts %q)", instance, offset, err, head(body)))
	}
	total, ok := p.Total, p.HasTotal
	if !ok {
		total, ok = p.Count, p.HasCount
	}
	if !ok || total < 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: response has no valid \"total\" or \"count\" (body starts %q)", instance, offset, head(body)))
	}
	if len(p.SQLs) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: %d records for size %d", instance, offset, len(p.SQLs), limit))
	}
	if len(p.SQLs) > 0 && int64(offset) >= total {
		// Without ids, a repeated listing cannot be told from records
		// that look alike: an API that ignores page is caught here.
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: %d SQL records listed at or after the total %d; the API may ignore \"page\"", instance, offset, len(p.SQLs), total))
	}
	recs := make([]window.Record, len(p.SQLs))
	for i, v := range p.SQLs {
		recs[i] = sqlKey(v, offset+i)
	}
	return recs, total, nil
}

// sqlPage is what decodeSQLPage reads of the 200 response body.
type sqlPage struct {
	Total, Count       int64
	HasTotal, HasCount bool
	SQLs               []jsonscan.Value
}

func (p *sqlPage) set(name []byte, v jsonscan.Value) error {
	var err error
	switch n := jsonscan.Name(name); string(n) {
	case "sqls":
		p.SQLs, err = v.List(string(n))
	case "total":
		p.Total, p.HasTotal, err = v.OptionalInt(string(n))
	case "count":
		p.Count, p.HasCount, err = v.OptionalInt(string(n))
	}
	return err
}

// sqlKey reads what windowing needs of the element at position pos of
// the listing: the record is its "sql" object (an element without one is
// delivered whole, and Map dead-letters it), its time start_time. Its
// window id is its position: the SDK does not document the API's id
// unique or stable, and records without id may be byte-identical (one
// statement run twice in a second), so nothing in a record can tell a
// repeat of the listing from another record. Events are identified by
// their bytes instead (see mapSQL).
func sqlKey(v jsonscan.Value, pos int) window.Record {
	raw := v.Raw
	_ = v.EachMember(func(name []byte, m jsonscan.Value) error {
		if string(jsonscan.Name(name)) == "sql" && m.Kind == jsonscan.Object {
			raw = m.Raw
		}
		return nil
	})
	rec := window.Record{Raw: raw, ID: positionID(pos)}
	var t jsonscan.Value
	_ = jsonscan.Members(raw, func(name []byte, m jsonscan.Value) error {
		if string(jsonscan.Name(name)) == "start_time" {
			t = m
		}
		return nil
	})
	rec.Time, _ = timeOf(t)
	return rec
}

// positionID is the window id of the record at pos: fixed width, so that
// records of one second sort in listing order.
func positionID(pos int) string {
	var b [12]byte
	s := strconv.AppendInt(b[:0], int64(pos), 10)
	out := make([]byte, 0, 13)
	out = append(out, 'p')
	for range 12 - len(s) {
		out = append(out, '0')
	}
	return string(append(out, s...))
}

// sqlRecord is one AuditSqlResponseSql. Members not listed are kept in
// event.original only.
type sqlRecord struct {
	ID                                                 jsonscan.Value
	Time                                               jsonscan.Value // start_time
	Statement, ClientIP, ClientName, DBIP, DBUser      string
	QueryType, RuleName, RiskLevel, Response, Instance string
	Objects                                            []sqlObject
}

// sqlObject is one AuditSqlResponseSqlOperatedObjInfo.
type sqlObject struct {
	Column, ObjectType, Schema, SQLType, SysName, Table string
}

func (o *sqlObject) set(name []byte, v jsonscan.Value) error {
	var dst *string
	switch string(jsonscan.Name(name)) {
	case "column_name":
		dst = &o.Column
	case "object_type":
		dst = &o.ObjectType
	case "schema_name":
		dst = &o.Schema
	case "sql_type":
		dst = &o.SQLType
	case "sys_name":
		dst = &o.SysName
	case "table_name":
		dst = &o.Table
	default:
		return nil
	}
	return setString(dst, name, v)
}

// setString stores a string member; null leaves dst as it was; another
// type is an error. A plain ASCII string is a view of the record's bytes,
// not a copy: the records these strings are read from outlive them (the
// SQL and alarm maps only write them into the document).
func setString(dst *string, name []byte, v jsonscan.Value) error {
	if v.Kind == jsonscan.Null {
		return nil
	}
	if v.Kind == jsonscan.String && len(v.Raw) >= 2 {
		body := v.Raw[1 : len(v.Raw)-1]
		plain := true
		for _, c := range body {
			if c == '\\' || c >= utf8.RuneSelf {
				plain = false
				break
			}
		}
		if plain {
			*dst = unsafe.String(unsafe.SliceData(body), len(body))
			return nil
		}
	}
	s, ok := v.String()
	if !ok {
		return fmt.Errorf("%s is a %s, want a string", jsonscan.Name(name), v.Kind)
	}
	*dst = s
	return nil
}

func (a *sqlRecord) set(name []byte, v jsonscan.Value) error {
	var dst *string
	switch string(jsonscan.Name(name)) {
	case "id":
		a.ID = v
		return nil
	case "start_time":
		a.Time = v
		return nil
	case "operated_obj_info":
		if v.Kind == jsonscan.Null {
			return nil
		}
		list, err := v.List("operated_obj_info")
		if err != nil {
			return err
		}
		for _, e := range list {
			var o sqlObject
			if err := jsonscan.Members(e.Raw, o.set); err != nil {
				return fmt.Errorf("operated_obj_info: %w", err)
			}
			a.Objects = append(a.Objects, o)
		}
		return nil
	case "sql_statement":
		dst = &a.Statement
	case "client_ip":
		dst = &a.ClientIP
	case "client_name":
		dst = &a.ClientName
	case "db_ip":
		dst = &a.DBIP
	case "db_user":
		dst = &a.DBUser
	case "query_type":
		dst = &a.QueryType
	case "rule_name":
		dst = &a.RuleName
	case "risk_level":
		dst = &a.RiskLevel
	case "sql_response":
		dst = &a.Response
	case "db_instance":
		dst = &a.Instance
	default:
		return nil
	}
	return setString(dst, name, v)
}

// sqlTypes maps query_type (the SDK's enumeration) to event.category
// besides "database" and event.type. ECS expects only access, change,
// info and error with "database" (and every type must suit every
// category), so reads are access and every write, DDL or grant is change;
// user management is also iam, a login also authentication, both with
// the only type those share with database. event.action keeps the exact
// query_type.
var sqlTypes = map[string]sqlType{
	"SELECT":            {dbOnly, "access", "select"},
	"SELECT_FOR_UPDATE": {dbOnly, "access", "select_for_update"},
	"INSERT":            {dbOnly, "change", "insert"},
	"INSERT_SELECT":     {dbOnly, "change", "insert_select"},
	"UPDATE":            {dbOnly, "change", "update"},
	"DELETE":            {dbOnly, "change", "delete"},
	"CREATE_TABLE":      {dbOnly, "change", "create_table"},
	"CREATE_TABLESPACE": {dbOnly, "change", "create_tablespace"},
	"DROP_TABLE":        {dbOnly, "change", "drop_table"},
	"DROP_TABLESPACE":   {dbOnly, "change", "drop_tablespace"},
	"CREATE_USER":       {dbIAM, "change", "create_user"},
	"DROP_USER":         {dbIAM, "change", "drop_user"},
	"GRANT":             {dbIAM, "change", "grant"},
	"LOGIN":             {[]string{"database", "authentication"}, "info", "login"},
}

// sqlType is how a query_type is categorized, and its event.action.
type sqlType struct {
	category []string
	typ      string
	action   string
}

var (
	dbOnly = []string{"database"}
	dbIAM  = []string{"database", "iam"}
)

var sqlOutcomes = map[string]string{"SUCCESS": "success", "FAILED": "failure", "FAIL": "failure", "FAILURE": "failure"}

// mapSQL turns one SQL audit record into an ECS document. Its event.id is
// a hash of the instance and the record's bytes (see sqlKey): records the
// API lists byte-identical are one event.
func (s *Stream) mapSQL(raw []byte, ev *pipeline.Event) error {
	var a sqlRecord
	if err := jsonscan.Members(raw, a.set); err != nil {
		return fmt.Errorf("dbss SQL audit record is not a JSON object of the documented shape: %w", err)
	}
	ts, ok := timeOf(a.Time)
	if !ok {
		if a.Time.Raw == nil {
			return fmt.Errorf("dbss SQL audit record has no start_time")
		}
		return fmt.Errorf("dbss SQL audit record: start_time %s is not a time", a.Time.Raw)
	}
	apiID, _ := a.ID.ID()
	qt := strings.ToUpper(strings.TrimSpace(a.QueryType))
	typ, known := sqlTypes[qt]
	if !known {
		typ = sqlType{dbOnly, "info", strings.ToLower(qt)}
	}
	client, clientOK := parseIP(a.ClientIP)
	server, serverOK := parseIP(a.DBIP)
	user := strings.TrimSpace(a.DBUser)

	ev.ID = contentEventID(s.instance, "sql", raw)
	ev.Timestamp = ts
	ev.Dataset = DatasetSQL

	var w ecsdoc.Writer
	w.Begin(ev.Doc, ts)
	w.Strings("category", typ.category...)
	w.Strings("type", typ.typ)
	w.StringIf("action", typ.action)
	outcome, known := sqlOutcomes[strings.ToUpper(strings.TrimSpace(a.Response))]
	if !known {
		outcome = "unknown"
	}
	w.String("outcome", outcome)
	w.Origin(DatasetSQL, "dbss", ev.ID)
	w.Time("ingested", s.now())
	w.RawString("original", raw)
	w.Close()
	w.Cloud(s.region, s.project, "dbss")
	if user != "" {
		w.Open("user")
		w.String("name", user)
		w.Close()
	}
	if clientOK {
		w.Open("source")
		w.String("ip", client)
		w.Close()
	}
	if serverOK {
		w.Open("destination")
		w.String("ip", server)
		w.Close()
	}
	if a.RuleName != "" {
		w.Open("rule")
		w.String("name", a.RuleName)
		w.Close()
	}
	ips := []string{client, server}
	if !clientOK {
		ips[0] = ""
	}
	if !serverOK {
		ips[1] = ""
	}
	w.Related([]string{user}, ips, nil)
	w.Open("huaweicloud")
	w.Open("dbss_sql")
	w.String("instance_id", s.instance)
	w.StringIf("id", apiID)
	w.StringIf("sql", a.Statement)
	w.StringIf("query_type", a.QueryType)
	w.StringIf("risk_level", a.RiskLevel)
	w.StringIf("rule_name", a.RuleName)
	w.StringIf("sql_response", a.Response)
	w.StringIf("client_name", a.ClientName)
	w.StringIf("db_instance", a.Instance)
	if a.ClientIP != "" && !clientOK {
		w.String("client_ip", a.ClientIP)
	}
	if a.DBIP != "" && !serverOK {
		w.String("db_ip", a.DBIP)
	}
	writeObjects(&w, a.Objects)
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}

// writeObjects writes operated_obj_info as the distinct schemas, tables
// and columns the statement touched, and the objects themselves.
func writeObjects(w *ecsdoc.Writer, objs []sqlObject) {
	if len(objs) == 0 {
		return
	}
	var schemas, tables, columns []string
	add := func(list []string, v string) []string {
		if v = strings.TrimSpace(v); v == "" {
			return list
		}
		for _, x := range list {
			if x == v {
				return list
			}
		}
		return append(list, v)
	}
	for _, o := range objs {
		schemas = add(schemas, o.Schema)
		tables = add(tables, o.Table)
		columns = add(columns, o.Column)
	}
	if len(schemas) > 0 {
		w.Strings("schemas", schemas...)
	}
	if len(tables) > 0 {
		w.Strings("tables", tables...)
	}
	if len(columns) > 0 {
		w.Strings("columns", columns...)
	}
}

// parseIP returns the canonical form of an IP address without zone: s
// itself when it is already canonical, as addresses mostly are.
func parseIP(s string) (string, bool) {
	s = strings.TrimSpace(s)
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return "", false
	}
	var b [64]byte
	if c := ip.AppendTo(b[:0]); string(c) != s {
		return string(c), true
	}
	return s, true
}

// contentEventID is ecsdoc.ID("dbss", instance, kind, string(raw)),
// without copying raw.
func contentEventID(instance, kind string, raw []byte) string {
	h := sha256.New()
	for _, p := range []string{"dbss", instance, kind} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write(raw)
	h.Write([]byte{0})
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
