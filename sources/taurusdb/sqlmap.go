package taurusdb

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
)

// sqlEntry is one statement record as the reader hands it on (see
// SQLStream.envelope) with the documented fields read.
type sqlEntry struct {
	AuditLogID string
	File       string
	N          int64
	HasN       bool
	HasRecord  bool

	RecordID, ConnectionID, ConnectionStatus, Name, Timestamp      string
	CommandClass, SQLText, User, Host, ExternalUser, IP, DefaultDB string
}

func (e *sqlEntry) decode(raw []byte) error {
	return jsonscan.Members(raw, func(name []byte, v jsonscan.Value) error {
		switch n := string(jsonscan.Name(name)); n {
		case "audit_log_id":
			e.AuditLogID, _ = v.String()
		case "file":
			e.File, _ = v.String()
		case "n":
			e.N, e.HasN = v.Int()
		case "record":
			if v.Kind != jsonscan.Object {
				return fmt.Errorf("record is a %s, want an object", v.Kind)
			}
			e.HasRecord = true
			return v.EachMember(e.setField)
		}
		return nil
	})
}

// setField takes one field of the record: a string, or a number or
// boolean as its JSON text (a JSON lines file may give record_id or
// connection_status as a number); null is absent.
func (e *sqlEntry) setField(name []byte, v jsonscan.Value) error {
	var dst *string
	switch string(jsonscan.Name(name)) {
	case "record_id":
		dst = &e.RecordID
	case "connection_id":
		dst = &e.ConnectionID
	case "connection_status":
		dst = &e.ConnectionStatus
	case "name":
		dst = &e.Name
	case "timestamp":
		dst = &e.Timestamp
	case "command_class":
		dst = &e.CommandClass
	case "sqltext":
		dst = &e.SQLText
	case "user":
		dst = &e.User
	case "host":
		dst = &e.Host
	case "external_user":
		dst = &e.ExternalUser
	case "ip":
		dst = &e.IP
	case "default_db":
		dst = &e.DefaultDB
	default:
		return nil // kept in event.original
	}
	switch v.Kind {
	case jsonscan.String:
		*dst, _ = v.String()
	case jsonscan.Number, jsonscan.True, jsonscan.False:
		*dst = string(v.Raw)
	case jsonscan.Null:
	default:
		return fmt.Errorf("%s is a %s, want a string", jsonscan.Name(name), v.Kind)
	}
	return nil
}

// Map turns one SQL statement record into an ECS document.
func (s *SQLStream) Map(raw []byte, ev *pipeline.Event) error {
	var e sqlEntry
	if err := e.decode(raw); err != nil {
		return fmt.Errorf("taurusdb SQL record is not the reader's JSON: %w", err)
	}
	if e.AuditLogID == "" || !e.HasN || !e.HasRecord {
		return errors.New("taurusdb SQL record lacks audit_log_id, n or record")
	}
	ts, ok := parseSQLTime(e.Timestamp)
	if !ok {
		return fmt.Errorf("taurusdb audit log file %s record %d: timestamp %q is not a time", e.AuditLogID, e.N, e.Timestamp)
	}
	// The record's position in its file is part of the id: the documents
	// do not say record_id is unique within a file (a counter restarted
	// by a failover would repeat it), and a sink that dedupes by id would
	// keep one of two statements sharing it. Positions are stable for a
	// file read again, as the reader resumes by them.
	ev.ID = ecsdoc.ID("taurusdb_sql", s.instance, e.AuditLogID, "#"+strconv.FormatInt(e.N, 10), e.RecordID)
	ev.Timestamp = ts
	ev.Dataset = SQLDataset

	action := strings.ToLower(strings.TrimSpace(e.CommandClass))
	if action == "" {
		action = strings.ToLower(strings.TrimSpace(e.Name))
	}
	outcome, failed := sqlOutcome(e.ConnectionStatus)
	types := []string{sqlEventType(action)}
	if failed {
		types = append(types, "error")
	}

	var w ecsdoc.Writer
	w.Begin(ev.Doc, ts)
	w.Strings("category", "database")
	w.Strings("type", types...)
	w.StringIf("action", action)
	w.String("outcome", outcome)
	w.Origin(SQLDataset, "taurusdb", ev.ID)
	w.Time("ingested", s.now())
	w.RawString("original", raw)
	w.Close()
	if failed {
		w.Open("error")
		w.String("code", e.ConnectionStatus)
		w.Close()
	}
	if e.User != "" {
		w.Open("user")
		w.String("name", e.User)
		w.Close()
	}
	ip, ipOK := parseIP(e.IP)
	domain := ""
	if h := strings.TrimSpace(e.Host); h != "" {
		if _, isIP := parseIP(h); !isIP {
			domain = h
		}
	}
	if ipOK || domain != "" {
		w.Open("source")
		if ipOK {
			w.String("ip", ip)
		}
		w.StringIf("domain", domain)
		w.Close()
	}
	w.Related([]string{e.User, e.ExternalUser}, []string{ip}, nil)
	w.Cloud(s.region, s.project, "taurusdb")
	w.Open("huaweicloud")
	w.Open("taurusdb_sql")
	w.String("instance_id", s.instance)
	w.String("audit_log_id", e.AuditLogID)
	w.StringIf("file", e.File)
	w.Int("ordinal", e.N)
	w.StringIf("record_id", e.RecordID)
	w.StringIf("connection_id", e.ConnectionID)
	w.StringIf("connection_status", e.ConnectionStatus)
	w.StringIf("name", e.Name)
	w.StringIf("timestamp", e.Timestamp)
	w.StringIf("command_class", e.CommandClass)
	w.StringIf("sql", e.SQLText)
	w.StringIf("external_user", e.ExternalUser)
	if domain == "" {
		w.StringIf("host", e.Host) // an address, or blank: not a domain
	}
	if !ipOK {
		w.StringIf("ip", e.IP) // not an address: kept as sent
	}
	w.StringIf("default_db", e.DefaultDB)
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}

// sqlEventType is event.type for a command class (or, for a record
// without one, the record name: connect, quit). ECS expects access,
// change, info or error with category database, so creation and deletion
// statements are changes; command_class keeps the detail.
func sqlEventType(action string) string {
	switch {
	case action == "select" || action == "show" || strings.HasPrefix(action, "show_") ||
		action == "describe" || action == "desc" || action == "explain" || action == "handler_read":
		return "access"
	case action == "insert" || action == "insert_select" || action == "replace" || action == "replace_select" ||
		action == "update" || action == "update_multi" || action == "delete" || action == "delete_multi" ||
		action == "truncate" || action == "load" || action == "load_data" ||
		strings.HasPrefix(action, "create") || strings.HasPrefix(action, "alter") ||
		strings.HasPrefix(action, "drop") || strings.HasPrefix(action, "rename") ||
		action == "grant" || action == "revoke" || strings.HasPrefix(action, "set_password"):
		return "change"
	}
	return "info"
}

// sqlOutcome reads connection_status, documented as the statement's
// error code, 0 on success: failure for another number, unknown when
// blank or not a number.
func sqlOutcome(status string) (string, bool) {
	status = strings.TrimSpace(status)
	n, err := strconv.ParseInt(status, 10, 64)
	switch {
	case status == "" || err != nil:
		return "unknown", false
	case n == 0:
		return "success", false
	}
	return "failure", true
}

// parseIP returns an IP address in canonical form.
func parseIP(s string) (string, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return "", false
	}
	return a.WithZone("").String(), true
}

// sqlTimeLayouts are the forms a statement's timestamp is read in; the
// user guide says only "the UTC time of the record". Zone-less forms are
// UTC.
var sqlTimeLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 MST",
}

// parseSQLTime reads a timestamp: one of sqlTimeLayouts, or Unix seconds
// or milliseconds.
func parseSQLTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		var t time.Time
		switch {
		case n >= 1e9 && n < 1e11:
			t = time.Unix(n, 0)
		case n >= 1e12 && n < 1e14:
			t = time.UnixMilli(n)
		default:
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	for _, l := range sqlTimeLayouts {
		t, err := time.Parse(l, s)
		if err != nil {
			continue
		}
		if l == sqlTimeLayouts[4] && t.Location() != time.UTC && !strings.HasSuffix(s, " UTC") {
			continue // only the UTC abbreviation names its zone reliably
		}
		if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
			return time.Time{}, false
		}
		return t, true
	}
	return time.Time{}, false
}
