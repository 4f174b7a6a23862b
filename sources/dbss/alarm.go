package dbss

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// decodeAlarmPage decodes a 200 body of the alarm log list
// ({"total_num","alarm_log":[…]}) into records, which stay slices of body.
// A body that is not such a page is a permanent error.
func decodeAlarmPage(body []byte, instance string, offset, limit int) ([]window.Record, int64, error) {
	var p alarmPage
	if err := jsonscan.Members(body, p.set); err != nil {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: response is not an alarm log page: %w (body starts %q)", instance, offset, err, head(body)))
	}
	if !p.HasTotal || p.Total < 0 {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: response has no valid \"total_num\" (body starts %q)", instance, offset, head(body)))
	}
	if len(p.Logs) > limit {
		return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: %d records for size %d", instance, offset, len(p.Logs), limit))
	}
	recs := make([]window.Record, len(p.Logs))
	for i, v := range p.Logs {
		// An alarm's status changes after it was raised (alarm_status UNDO
		// to DONE, alarm_life ON to OFF, alarm_fix_time set), so it is
		// identified by its id, not its bytes; its event by its bytes
		// (mapAlarm).
		recs[i] = keyOf(v, "alarm_time")
		if recs[i].ID == "" {
			// Alarms without id may be byte-identical (two raised in a
			// second alike): see sqlKey.
			recs[i].ID = "\x00" + positionID(offset+i)
			if int64(offset) >= p.Total {
				// Known by position, a repeated listing cannot show: an
				// API that ignores page would be paged without end.
				return nil, 0, pipeline.Permanent(fmt.Errorf("dbss instance %s offset %d: alarms without id listed at or after the total %d; the API may ignore \"page\"", instance, offset, p.Total))
			}
		}
	}
	return recs, p.Total, nil
}

type alarmPage struct {
	Total    int64
	HasTotal bool
	Logs     []jsonscan.Value // alarm_log
}

func (p *alarmPage) set(name []byte, v jsonscan.Value) error {
	var err error
	switch n := jsonscan.Name(name); string(n) {
	case "alarm_log":
		p.Logs, err = v.List(string(n))
	case "total_num":
		p.Total, p.HasTotal, err = v.OptionalInt(string(n))
	}
	return err
}

// alarmRecord is one AlarmLogResponseAlarmLog (older path: alarmLife,
// sendEmail) or AlarmLogResponseNewAlarmLog (newer path: alarm_life,
// send_email). rule_id, rule_name and sql are not documented; they are
// mapped when an alarm carries them.
type alarmRecord struct {
	ID, Time, FixTime, SendEmail          jsonscan.Value
	Life, Type, Status, Risk, Description string
	RuleID, RuleName, SQL                 string
}

func (a *alarmRecord) set(name []byte, v jsonscan.Value) error {
	var dst *string
	switch string(jsonscan.Name(name)) {
	case "id":
		a.ID = v
		return nil
	case "alarm_time":
		a.Time = v
		return nil
	case "alarm_fix_time":
		a.FixTime = v
		return nil
	case "send_email", "sendEmail":
		a.SendEmail = v
		return nil
	case "alarm_life", "alarmLife":
		dst = &a.Life
	case "alarm_type":
		dst = &a.Type
	case "alarm_status":
		dst = &a.Status
	case "alarm_risk":
		dst = &a.Risk
	case "alarm_description":
		dst = &a.Description
	case "rule_id":
		dst = &a.RuleID
	case "rule_name":
		dst = &a.RuleName
	case "sql", "sql_statement":
		dst = &a.SQL
	default:
		return nil
	}
	return setString(dst, name, v)
}

// severities maps alarm_risk to event.severity on the scale Elastic's
// integrations use (low 21, medium 47, high 73, critical 99).
var severities = map[string]int64{"LOW": 21, "MEDIUM": 47, "HIGH": 73, "CRITICAL": 99}

// mapAlarm turns one alarm log into an ECS alert. Its event.id is the
// instance's and alarm id's hash, so an alarm read again after its status
// changed replaces the earlier document in sinks that dedupe by id.
func (s *Stream) mapAlarm(raw []byte, ev *pipeline.Event) error {
	var a alarmRecord
	if err := jsonscan.Members(raw, a.set); err != nil {
		return fmt.Errorf("dbss alarm log is not a JSON object of the documented shape: %w", err)
	}
	id, ok := a.ID.ID()
	switch {
	case ok:
	case a.ID.Raw == nil || a.ID.Kind == jsonscan.Null:
		id = "" // identified by its bytes
	default:
		return fmt.Errorf("dbss alarm log id %s is not a string or integer", a.ID.Raw)
	}
	ts, ok := timeOf(a.Time)
	if !ok {
		if a.Time.Raw == nil {
			return errors.New("dbss alarm log has no alarm_time")
		}
		return fmt.Errorf("dbss alarm log %s: alarm_time %s is not a time", id, a.Time.Raw)
	}
	fixed, fixedOK := timeOf(a.FixTime)
	fixedOK = fixedOK && !fixed.Before(ts)

	if id != "" {
		ev.ID = ecsdoc.ID("dbss", s.instance, "alarm", id)
	} else {
		ev.ID = contentEventID(s.instance, "alarm", raw)
	}
	ev.Timestamp = ts
	ev.Dataset = DatasetAlarm
	risk := strings.ToUpper(strings.TrimSpace(a.Risk))

	var w ecsdoc.Writer
	w.Reset(ev.Doc)
	w.Time("@timestamp", ts)
	w.Open("ecs")
	w.String("version", ecsdoc.Version)
	w.Close()
	w.StringIf("message", a.Description)
	w.Open("event")
	w.String("kind", "alert")
	w.Strings("category", "database")
	w.Strings("type", "info")
	w.StringIf("action", strings.ToLower(strings.TrimSpace(a.Type)))
	if sev, ok := severities[risk]; ok {
		w.Int("severity", sev)
	}
	w.String("outcome", "unknown") // an alert has no outcome; ECS wants one
	w.Time("start", ts)
	if fixedOK {
		w.Time("end", fixed)
	}
	w.Origin(DatasetAlarm, "dbss", ev.ID)
	w.Time("ingested", s.now())
	w.RawString("original", raw)
	w.Close()
	w.Cloud(s.region, s.project, "dbss")
	if a.RuleID != "" || a.RuleName != "" {
		w.Open("rule")
		w.StringIf("id", a.RuleID)
		w.StringIf("name", a.RuleName)
		w.Close()
	}
	w.Open("huaweicloud")
	w.Open("dbss_alarm")
	w.String("instance_id", s.instance)
	w.StringIf("id", id)
	w.StringIf("type", a.Type)
	w.StringIf("risk_level", a.Risk)
	w.StringIf("status", a.Status)
	w.StringIf("life", a.Life)
	w.StringIf("description", a.Description)
	w.StringIf("sql", a.SQL)
	if fixedOK {
		w.Time("fix_time", fixed)
	}
	switch a.SendEmail.Kind {
	case jsonscan.True:
		w.Raw("send_email", []byte("true"))
	case jsonscan.False:
		w.Raw("send_email", []byte("false"))
	}
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}
