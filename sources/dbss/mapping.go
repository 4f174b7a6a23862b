package dbss

import (
	"bytes"
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

// operateLog is one OperateLogInfo record. IP is not in the documented
// schema; it is mapped when a record carries it.
type operateLog struct {
	ID          jsonscan.Value // as sent: Value.ID reads it; Raw is nil when absent
	User        string
	Time        jsonscan.Value // as sent: timeOf reads it
	Action      string
	Function    string
	Name        string
	Description string
	Result      string
	IP          string
}

// decode reads a record. Member names match exactly; a string member that
// holds another type is an error; null leaves a member as it was, as
// encoding/json leaves a string field.
func (a *operateLog) decode(raw []byte) error {
	return jsonscan.Members(raw, a.set)
}

// set takes one member of the record.
func (a *operateLog) set(name []byte, v jsonscan.Value) error {
	var dst *string
	n := jsonscan.Name(name)
	switch string(n) {
	case "id":
		a.ID = v
		return nil
	case "time":
		a.Time = v
		return nil
	case "user":
		dst = &a.User
	case "action":
		dst = &a.Action
	case "function":
		dst = &a.Function
	case "name":
		dst = &a.Name
	case "description":
		dst = &a.Description
	case "result":
		dst = &a.Result
	case "ip":
		dst = &a.IP
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

// category is event.category of every operation log. DBSS logs what its
// users do to the service's own settings: databases added to or removed
// from audit, audit agents switched, rules and reports managed (function
// names the console page, name the object). That is ECS "configuration",
// "creating, modifying, or deleting the settings or parameters of an
// application", which expects every type actions gives (creation, change,
// deletion, access, info). The audited databases' own activity is not in
// these logs, so "database" would mislead; "iam" is for users and groups.
const category = "configuration"

// actions maps the action, which the API returns in English (create) or in
// Chinese (创建) depending on the console language, to event.action and
// event.type.
var actions = map[string][2]string{
	"create":   {"create", "creation"},
	"创建":       {"create", "creation"},
	"delete":   {"delete", "deletion"},
	"删除":       {"delete", "deletion"},
	"update":   {"update", "change"},
	"更新":       {"update", "change"},
	"download": {"download", "access"},
	"下载":       {"download", "access"},
}

var outcomes = map[string]string{
	"success": "success", "成功": "success",
	"fail": "failure", "failed": "failure", "failure": "failure", "失败": "failure",
}

// Map turns one record of the stream's kind into an ECS document.
func (s *Stream) Map(raw []byte, ev *pipeline.Event) error {
	switch s.kind {
	case SQL:
		return s.mapSQL(raw, ev)
	case Alarm:
		return s.mapAlarm(raw, ev)
	}
	return s.mapOperation(raw, ev)
}

// mapOperation turns one operation log into an ECS document.
func (s *Stream) mapOperation(raw []byte, ev *pipeline.Event) error {
	var a operateLog
	if err := a.decode(raw); err != nil {
		return fmt.Errorf("dbss operation log is not a JSON object: %w", err)
	}
	id, ok := a.ID.ID()
	if !ok {
		if a.ID.Raw == nil || a.ID.Kind == jsonscan.Null {
			return errors.New("dbss operation log has no id")
		}
		return fmt.Errorf("dbss operation log id %s is not a string or integer", a.ID.Raw)
	}
	ts, ok := timeOf(a.Time)
	if !ok {
		return fmt.Errorf("dbss operation log %s: time %s is not a time", id, a.Time.Raw)
	}
	actionKey := strings.ToLower(strings.TrimSpace(a.Action))
	act, known := actions[actionKey]
	if !known {
		act = [2]string{actionKey, "info"}
	}
	outcome, known := outcomes[strings.ToLower(strings.TrimSpace(a.Result))]
	if !known {
		outcome = "unknown"
	}
	ip, ipErr := netip.ParseAddr(strings.TrimSpace(a.IP))
	validIP := ipErr == nil && ip.Zone() == ""

	ev.ID = ecsdoc.ID("dbss", s.instance, id)
	ev.Timestamp = ts
	ev.Dataset = Dataset

	var w ecsdoc.Writer
	w.Reset(ev.Doc)
	w.Time("@timestamp", ts)
	w.Open("ecs")
	w.String("version", ecsdoc.Version)
	w.Close()
	w.StringIf("message", a.Description)
	w.Open("event")
	w.String("kind", "event")
	w.Strings("category", category)
	w.Strings("type", act[1])
	w.StringIf("action", act[0])
	w.String("outcome", outcome)
	w.Origin(Dataset, "dbss", ev.ID)
	w.Time("ingested", s.now())
	w.RawString("original", raw)
	w.Close()
	w.Cloud(s.region, s.project, "dbss")
	if a.User != "" {
		w.Open("user")
		w.String("name", a.User)
		w.Close()
	}
	var ipText string
	if validIP {
		ipText = ip.String()
		w.Open("source")
		w.String("ip", ipText)
		w.Close()
	}
	w.Related([]string{a.User}, []string{ipText}, nil)
	w.Open("huaweicloud")
	w.Open("dbss")
	w.String("instance_id", s.instance)
	w.String("log_id", id)
	w.StringIf("action", a.Action)
	w.StringIf("function", a.Function)
	w.StringIf("name", a.Name)
	w.StringIf("description", a.Description)
	w.StringIf("result", a.Result)
	if a.IP != "" && !validIP {
		w.String("ip", a.IP)
	}
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}

// parseTime reads time as raw JSON, as a record carries it: documented as
// a timestamp, shown in the example as "2021-04-22 06:40:52" in UTC (the
// zone the request times use). Epoch seconds or milliseconds, as a number
// or quoted, are accepted too.
func parseTime(raw []byte) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		v, err := jsonscan.Parse(raw)
		if err != nil {
			return time.Time{}, false
		}
		return timeOf(v)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false
	}
	return parseTimeText(string(raw))
}

// timeOf is parseTime for a value the scanner validated.
func timeOf(v jsonscan.Value) (time.Time, bool) {
	switch v.Kind {
	case 0, jsonscan.Null:
		return time.Time{}, false
	case jsonscan.String:
		s, _ := v.String()
		return parseTimeText(s)
	}
	return parseTimeText(string(v.Raw))
}

// parseTimeText reads the text of time, quotes and escapes removed.
func parseTimeText(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	var t time.Time
	if n, err := parseDigits(s); err == nil {
		switch {
		case n < 0 || n > 253402300799999: // after 9999-12-31 in ms
			return time.Time{}, false
		case n >= 100_000_000_000: // milliseconds (after 1973-03-03)
			t = time.UnixMilli(n)
		default:
			t = time.Unix(n, 0)
		}
	} else {
		var perr error
		for _, l := range []string{bodyLayout, "2006-01-02T15:04:05Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z07:00"} {
			if t, perr = time.Parse(l, s); perr == nil {
				break
			}
		}
		if perr != nil {
			return time.Time{}, false
		}
	}
	if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// errNotDigits is parseDigits' answer for text that is not all digits,
// which strconv would report with an error it allocates: most times are
// not numbers.
var errNotDigits = errors.New("not digits")

// parseDigits is strconv.ParseInt(s, 10, 64) for text that may be a time.
func parseDigits(s string) (int64, error) {
	if s == "" {
		return 0, errNotDigits
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && !(i == 0 && (s[i] == '-' || s[i] == '+')) {
			return 0, errNotDigits
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
