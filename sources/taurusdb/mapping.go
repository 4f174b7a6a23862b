package taurusdb

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
)

// auditLog is one AuditLogDetail: an audit log file.
type auditLog struct {
	ID        jsonscan.Value // as sent: Value.ID reads it; Raw is nil when absent
	Name      string
	Size      []byte // as sent: KB, documented "Long" but fractional in the example
	BeginTime string
	EndTime   string
}

// decode reads a record. Member names match exactly; a string member that
// holds another type is an error; null leaves a member as it was, as
// encoding/json leaves a string field.
func (a *auditLog) decode(raw []byte) error {
	return jsonscan.Members(raw, a.set)
}

// set takes one member of the record.
func (a *auditLog) set(name []byte, v jsonscan.Value) error {
	var dst *string
	n := jsonscan.Name(name)
	switch string(n) {
	case "id":
		a.ID = v
		return nil
	case "size":
		a.Size = v.Raw
		return nil
	case "name":
		dst = &a.Name
	case "begin_time":
		dst = &a.BeginTime
	case "end_time":
		dst = &a.EndTime
	default:
		return nil
	}
	if v.Kind == jsonscan.Null {
		return nil
	}
	s, ok := v.String()
	if !ok {
		return fmt.Errorf("%s is a %s, want a string", n, v.Kind)
	}
	*dst = s
	return nil
}

// categories is event.category of every document: the record describes an
// audit log file of a database (file.name, file.size), so it is both
// "database" and "file"; both expect "info", the type of a record that
// reports something that exists rather than a change. It is not the
// database activity itself (the statements are inside the file), so the
// type is never "access" or "change".
var categories = []string{"database", "file"}

// Map turns one audit log file into an ECS document. @timestamp is the
// file's end_time, when it was complete; event.start and event.end span
// the activity it records.
func (s *Stream) Map(raw []byte, ev *pipeline.Event) error {
	var a auditLog
	if err := a.decode(raw); err != nil {
		return fmt.Errorf("taurusdb audit log is not a JSON object: %w", err)
	}
	id, ok := a.ID.ID()
	if !ok {
		if a.ID.Raw == nil || a.ID.Kind == jsonscan.Null {
			return errors.New("taurusdb audit log has no id")
		}
		return fmt.Errorf("taurusdb audit log id %s is not a string or integer", a.ID.Raw)
	}
	end, hasEnd := parseTime(a.EndTime)
	begin, hasBegin := parseTime(a.BeginTime)
	ts := end
	if !hasEnd {
		if !hasBegin {
			return fmt.Errorf("taurusdb audit log %s: neither end_time %q nor begin_time %q is a time", id, a.EndTime, a.BeginTime)
		}
		ts = begin
	}
	sizeKB, sizeBytes, hasSize := parseSize(a.Size)

	ev.ID = ecsdoc.ID("taurusdb", s.instance, id)
	ev.Timestamp = ts
	ev.Dataset = Dataset

	var w ecsdoc.Writer
	w.Begin(ev.Doc, ts)
	w.Strings("category", categories...)
	w.Strings("type", "info")
	w.String("action", "audit-log-file")
	// A file listing records no result of the audited statements.
	w.String("outcome", "unknown")
	w.Origin(Dataset, "taurusdb", ev.ID)
	if hasBegin {
		w.Time("start", begin)
	}
	if hasEnd {
		w.Time("end", end)
	}
	w.Time("ingested", s.now())
	w.RawString("original", raw)
	w.Close()
	if a.Name != "" || hasSize {
		w.Open("file")
		w.StringIf("name", a.Name)
		if hasSize {
			w.Int("size", sizeBytes)
		}
		w.Close()
	}
	w.Cloud(s.region, s.project, "taurusdb")
	w.Open("huaweicloud")
	w.Open("taurusdb")
	w.String("instance_id", s.instance)
	w.String("audit_log_id", id)
	w.StringIf("name", a.Name)
	if hasSize {
		w.Raw("size_kb", sizeKB)
	}
	w.StringIf("begin_time", a.BeginTime)
	w.StringIf("end_time", a.EndTime)
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}

// maxSizeKB keeps file.size within the integers a JSON double holds exactly.
const maxSizeKB = (1 << 53) / 1024

// parseSize reads size in KB (a number, or the same digits quoted) and
// returns it as a canonical JSON number and in bytes.
func parseSize(raw []byte) (kb []byte, bytesN int64, ok bool) {
	raw = bytes.Trim(bytes.TrimSpace(raw), `"`)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxSizeKB {
		return nil, 0, false
	}
	return strconv.AppendFloat(nil, f, 'f', -1, 64), int64(math.Round(f * 1024)), true
}

// timeLayouts are the documented "2019-11-06T09:03:34+0800" form first,
// then forms seen from other GaussDB APIs.
var timeLayouts = []string{
	"2006-01-02T15:04:05Z0700",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05",
}

// parseTime reads a time; one without a zone is taken as UTC.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		t, err := time.Parse(l, s)
		if err != nil {
			continue
		}
		// An offset can move a year-0000 or year-9999 time out of the
		// four-digit years that @timestamp can express.
		if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
			return time.Time{}, false
		}
		return t, true
	}
	return time.Time{}, false
}
