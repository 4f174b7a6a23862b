package dbss

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
)

// operateLog is one OperateLogInfo record. IP is not in the documented
// schema; it is mapped when a record carries it.
type operateLog struct {
	ID          json.RawMessage `json:"id"`
	User        string          `json:"user"`
	Time        json.RawMessage `json:"time"`
	Action      string          `json:"action"`
	Function    string          `json:"function"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Result      string          `json:"result"`
	IP          string          `json:"ip"`
}

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

// Map turns one operation log into an ECS document.
func (s *Stream) Map(raw []byte, ev *pipeline.Event) error {
	var a operateLog
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("dbss operation log is not a JSON object: %w", err)
	}
	id, ok := parseID(a.ID)
	if !ok {
		if len(a.ID) == 0 || string(a.ID) == "null" {
			return errors.New("dbss operation log has no id")
		}
		return fmt.Errorf("dbss operation log id %s is not a string or integer", a.ID)
	}
	ts, ok := parseTime(a.Time)
	if !ok {
		return fmt.Errorf("dbss operation log %s: time %s is not a time", id, a.Time)
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
	w.Strings("category", "configuration")
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
	if validIP {
		w.Open("source")
		w.String("ip", ip.String())
		w.Close()
	}
	if a.User != "" || validIP {
		w.Open("related")
		if a.User != "" {
			w.Strings("user", a.User)
		}
		if validIP {
			w.Strings("ip", ip.String())
		}
		w.Close()
	}
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

// parseID accepts the documented string, or an integer.
func parseID(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return "", false
		}
		return s, true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// parseTime reads time: documented as a timestamp, shown in the example as
// "2021-04-22 06:40:52" in UTC (the zone the request times use). Epoch
// seconds or milliseconds, as a number or quoted, are accepted too.
func parseTime(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false
	}
	var s string
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, false
		}
	} else {
		s = string(raw)
	}
	s = strings.TrimSpace(s)
	var t time.Time
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
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
