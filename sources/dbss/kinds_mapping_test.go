package dbss

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// kindGoldenStream is the golden stream of kind k.
func kindGoldenStream(k Kind) *Stream {
	s := goldenStream()
	s.kind = k
	return s
}

// kindPages are the page files of kind k: testdata/{sql,alarm}/pages.
func kindPages(t testing.TB, k Kind) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", string(k), "pages", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/%s/pages/*.json (%v)", k, err)
	}
	return files
}

// kindRecords are the records of every page file of kind k, as its
// decoder splits them.
func kindRecords(t testing.TB, k Kind) map[string][][]byte {
	out := map[string][][]byte{}
	for _, p := range kindPages(t, k) {
		out[p] = windowtest.PageRecords(k.decoder())(t, p)
	}
	return out
}

// TestMapGoldenSQLAndAlarm maps every record of the SQL and alarm page
// files and compares the documents with testdata/{sql,alarm}/golden (a
// record Map refuses is pinned as a "# record N: error" line), and checks
// each document's field names and types against ECS.
func TestMapGoldenSQLAndAlarm(t *testing.T) {
	ecs := ecstest.LoadECS(t)
	for _, k := range []Kind{SQL, Alarm} {
		s := kindGoldenStream(k)
		for page, recs := range kindRecords(t, k) {
			name := strings.TrimSuffix(filepath.Base(page), ".json")
			t.Run(string(k)+"/"+name, func(t *testing.T) {
				var got bytes.Buffer
				for i, raw := range recs {
					var ev pipeline.Event
					if err := s.Map(raw, &ev); err != nil {
						fmt.Fprintf(&got, "# record %d: %v\n", i, err)
						continue
					}
					ecstest.CheckDoc(t, raw, &ev, k.dataset())
					ecs.Check(t, ev.Doc)
					got.Write(ev.Doc)
					got.WriteByte('\n')
				}
				ecstest.Golden(t, filepath.Join("testdata", string(k), "golden", name+".ndjson"), got.Bytes())
			})
		}
	}
}

func sqlRec(qt, response string) string {
	return fmt.Sprintf(`{"id":"x","db_user":"u","client_ip":"10.0.0.5","db_ip":"10.0.0.9","query_type":%q,"start_time":"2025-06-01 08:15:02","sql_response":%q,"sql_statement":"q"}`, qt, response)
}

// TestMapSQLFields pins the ECS categorization of each query_type and
// what a result, an IP or a rule makes of a document.
func TestMapSQLFields(t *testing.T) {
	s := kindGoldenStream(SQL)
	tests := []struct {
		raw    string
		want   map[string]any
		absent []string
	}{
		{sqlRec("SELECT", "SUCCESS"), map[string]any{"event.kind": "event", "event.category": "[database]", "event.type": "[access]", "event.action": "select", "event.outcome": "success",
			"user.name": "u", "source.ip": "10.0.0.5", "destination.ip": "10.0.0.9", "related.ip": "[10.0.0.5 10.0.0.9]", "related.user": "[u]",
			"huaweicloud.dbss_sql.sql": "q", "huaweicloud.dbss_sql.id": "x", "@timestamp": "2025-06-01T08:15:02.000Z", "event.dataset": DatasetSQL}, []string{"rule.name"}},
		{sqlRec("INSERT", "FAILED"), map[string]any{"event.type": "[change]", "event.action": "insert", "event.outcome": "failure"}, nil},
		{sqlRec("UPDATE", "SUCCESS"), map[string]any{"event.type": "[change]"}, nil},
		{sqlRec("DELETE", "SUCCESS"), map[string]any{"event.type": "[change]", "event.action": "delete"}, nil},
		{sqlRec("DROP_TABLE", "SUCCESS"), map[string]any{"event.type": "[change]", "event.action": "drop_table", "event.category": "[database]"}, nil},
		{sqlRec("CREATE_TABLE", "SUCCESS"), map[string]any{"event.type": "[change]", "event.action": "create_table"}, nil},
		{sqlRec("GRANT", "SUCCESS"), map[string]any{"event.type": "[change]", "event.action": "grant", "event.category": "[database iam]"}, nil},
		{sqlRec("CREATE_USER", "SUCCESS"), map[string]any{"event.type": "[change]", "event.action": "create_user", "event.category": "[database iam]"}, nil},
		{sqlRec("DROP_USER", "SUCCESS"), map[string]any{"event.type": "[change]", "event.action": "drop_user", "event.category": "[database iam]"}, nil},
		{sqlRec("LOGIN", "FAILED"), map[string]any{"event.type": "[info]", "event.action": "login", "event.category": "[database authentication]", "event.outcome": "failure"}, nil},
		{sqlRec("OPERATE", "SUCCESS"), map[string]any{"event.type": "[info]", "event.action": "operate"}, nil},
		{sqlRec("SELECT", ""), map[string]any{"event.type": "[access]", "event.outcome": "unknown"}, nil},
		{sqlRec("SELECT", "MAYBE"), map[string]any{"event.outcome": "unknown"}, nil},
		{`{"start_time":"2025-06-01 08:15:02","rule_name":"高危操作","risk_level":"HIGH","client_ip":"bad"}`,
			map[string]any{"rule.name": "高危操作", "huaweicloud.dbss_sql.risk_level": "HIGH", "huaweicloud.dbss_sql.client_ip": "bad", "event.type": "[info]"},
			[]string{"source.ip", "related.ip", "user.name", "huaweicloud.dbss_sql.id"}},
	}
	for _, tt := range tests {
		var ev pipeline.Event
		if err := s.Map([]byte(tt.raw), &ev); err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		ecstest.CheckDoc(t, []byte(tt.raw), &ev, DatasetSQL)
		ecstest.CheckFields(t, tt.raw, ev.Doc, tt.want, tt.absent)
	}
	for _, bad := range []string{`{}`, `{"start_time":"bad"}`, `{"start_time":null}`, `[]`, ``, `{"start_time":"2025-06-01 08:15:02","db_user":5}`} {
		var ev pipeline.Event
		if err := s.Map([]byte(bad), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		}
	}
}

// TestMapAlarmFields pins the alert fields, and that an alarm keeps its
// event id when its status changes.
func TestMapAlarmFields(t *testing.T) {
	s := kindGoldenStream(Alarm)
	open := `{"id":"a1","alarm_life":"ON","send_email":true,"alarm_time":"2025-06-01 08:17:01","alarm_type":"RISK_RULE","alarm_status":"UNDO","alarm_risk":"HIGH","alarm_description":"d"}`
	closed := `{"id":"a1","alarm_life":"OFF","send_email":true,"alarm_time":"2025-06-01 08:17:01","alarm_type":"RISK_RULE","alarm_fix_time":"2025-06-01 09:00:00","alarm_status":"DONE","alarm_risk":"HIGH","alarm_description":"d"}`
	tests := []struct {
		raw    string
		want   map[string]any
		absent []string
	}{
		{open, map[string]any{"event.kind": "alert", "event.category": "[database]", "event.outcome": "unknown", "event.severity": "73", "event.action": "risk_rule", "message": "d",
			"huaweicloud.dbss_alarm.risk_level": "HIGH", "huaweicloud.dbss_alarm.status": "UNDO", "huaweicloud.dbss_alarm.life": "ON", "huaweicloud.dbss_alarm.send_email": "true",
			"event.start": "2025-06-01T08:17:01.000Z", "event.dataset": DatasetAlarm}, []string{"event.end", "rule.name", "huaweicloud.dbss_alarm.fix_time"}},
		{closed, map[string]any{"event.end": "2025-06-01T09:00:00.000Z", "huaweicloud.dbss_alarm.status": "DONE", "huaweicloud.dbss_alarm.fix_time": "2025-06-01T09:00:00.000Z"}, nil},
		{`{"id":"a2","alarmLife":"OFF","sendEmail":false,"alarm_time":"2025-06-01 08:17:01","alarm_risk":"low","rule_id":"r1","rule_name":"n","sql":"DROP TABLE t"}`,
			map[string]any{"event.severity": "21", "huaweicloud.dbss_alarm.life": "OFF", "huaweicloud.dbss_alarm.send_email": "false", "rule.id": "r1", "rule.name": "n", "huaweicloud.dbss_alarm.sql": "DROP TABLE t"}, nil},
		{`{"id":"a3","alarm_time":"2025-06-01 08:17:01","alarm_risk":"MEDIUM","alarm_fix_time":"2025-06-01 08:00:00"}`, map[string]any{"event.severity": "47"}, []string{"event.end"}},
	}
	for _, tt := range tests {
		var ev pipeline.Event
		if err := s.Map([]byte(tt.raw), &ev); err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		ecstest.CheckDoc(t, []byte(tt.raw), &ev, DatasetAlarm)
		ecstest.CheckFields(t, tt.raw, ev.Doc, tt.want, tt.absent)
	}
	var a, b pipeline.Event
	if err := s.Map([]byte(open), &a); err != nil {
		t.Fatal(err)
	}
	if err := s.Map([]byte(closed), &b); err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Errorf("an alarm whose status changed has a new event id: %s, then %s", a.ID, b.ID)
	}
	for _, bad := range []string{`{}`, `{"id":"x"}`, `{"id":"x","alarm_time":"bad"}`, `{"id":[],"alarm_time":"2025-06-01 08:17:01"}`, `[]`, ``} {
		var ev pipeline.Event
		if err := s.Map([]byte(bad), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		}
	}
}

// FuzzMapSQL feeds SQL audit records to Map: a document it maps must be
// valid JSON and pass CheckDoc.
func FuzzMapSQL(f *testing.F) { fuzzMapKind(f, SQL, []byte(`{"start_time":"0000-01-01 00:00:00"}`)) }

// FuzzMapAlarm feeds alarm logs to Map, as FuzzMapSQL.
func FuzzMapAlarm(f *testing.F) {
	fuzzMapKind(f, Alarm, []byte(`{"id":"1","alarm_time":"0000-01-01 00:00:00","alarm_fix_time":"9999-12-31 23:59:59"}`))
}

func fuzzMapKind(f *testing.F, k Kind, seeds ...[]byte) {
	for _, recs := range kindRecords(f, k) {
		for _, r := range recs {
			f.Add(r)
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	s := kindGoldenStream(k)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			return
		}
		ecstest.CheckDoc(t, raw, &ev, k.dataset())
	})
}

// FuzzDecodeSQLPage and FuzzDecodeAlarmPage fuzz the page decoders: a
// refused body is a permanent error, an accepted one holds at most limit
// records, and a reader served it forever neither panics nor loops.
func FuzzDecodeSQLPage(f *testing.F) {
	fuzzDecodeKind(f, SQL, `{"total":0,"sqls":[]}`, `{"count":2,"sqls":[{"sql":null},{}]}`, `{"total":-1}`, `{"sqls":[1]}`)
}

func FuzzDecodeAlarmPage(f *testing.F) {
	fuzzDecodeKind(f, Alarm, `{"total_num":0,"alarm_log":[]}`, `{"total_num":1,"alarm_log":[{"id":1}]}`, `{"total_num":-1}`, `[]`)
}

func fuzzDecodeKind(f *testing.F, k Kind, seeds ...string) {
	for _, p := range kindPages(f, k) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, string(data))
	}
	serve := func(body []byte) pipeline.Stream {
		s := goldenStreamOf(bodyDoer{body}, goldenNow.Add(-time.Hour))
		s.kind = k
		return s
	}
	windowtest.FuzzDecodePage(f, k.decoder(), serve, seeds...)
}
