package dbss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// benchDBSSRecords returns n operation logs (OperateLogInfo) in the
// documented shape, ascending by time, varied like the simulator's: id a
// 20-character string, time "2021-04-22 06:40:52" in UTC with about one
// record in three sharing the previous one's second, action in English or
// Chinese as the console language makes it, one failure in ten, names and
// descriptions in Chinese and English (some empty, one with quotes), and
// on one record in five the undocumented ip member.
func benchDBSSRecords(n int) [][]byte {
	actions := [2][]string{{"create", "update", "delete", "download"}, {"创建", "更新", "删除", "下载"}}
	functions := []string{"数据库列表", "审计规则", "Agent管理", "报表", "Audit rules", "Databases", "告警通知"}
	names := []string{"db01", "db01 ", "orders_mysql", "风险规则-高危", "report-weekly", "agent-10.0.0.12", ""}
	descs := []string{"删除审计的数据库", "关闭审计客户端", "创建新的数据库", "Download audit report", `Update risk rule "drop table"`, "添加Agent", ""}
	users := []string{"hby-test", "admin", "张三", "ops_oncall", "jürgen.müller", "security-auditor"}
	t := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		if i%3 != 2 {
			t = t.Add(time.Duration(1+i%41) * time.Second)
		}
		h := uint64(i)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
		result := "success"
		if i%10 == 7 {
			result = "fail"
		}
		ip := ""
		if i%5 == 1 {
			ip = fmt.Sprintf("192.168.%d.%d", i%256, 1+i%253)
		}
		rec := operateLogJSON{
			ID:          fmt.Sprintf("%016x%04d", h, i%10000),
			User:        users[i%len(users)],
			Time:        t.Format("2006-01-02 15:04:05"),
			Function:    functions[i%len(functions)],
			Action:      actions[i/4%2][i%4],
			Name:        names[i%len(names)],
			Description: descs[i%len(descs)],
			Result:      result,
			IP:          ip,
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			panic(err)
		}
		out[i] = raw
	}
	return out
}

// operateLogJSON is an operation log with its members in the documented
// example's order.
type operateLogJSON struct {
	ID          string `json:"id"`
	User        string `json:"user"`
	Time        string `json:"time"`
	Function    string `json:"function"`
	Action      string `json:"action"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Result      string `json:"result"`
	IP          string `json:"ip,omitempty"`
}

// BenchmarkMap measures the transform stage on DBSS operation logs as the
// pipeline runs it (pipeline.MapRecords, a page at a time), including the
// decoding of the API's page into records: records/s is per core.
func BenchmarkMap(b *testing.B) {
	recs := benchDBSSRecords(10 * MaxPageSize)
	bodies := ecstest.PageBodies(b, recs, MaxPageSize, func(logs []json.RawMessage) any {
		return map[string]any{"total_num": len(recs), "operate_log": logs}
	})
	s := goldenStream()
	ecstest.BenchmarkMap(b, s, s.Key(), bodies, MaxPageSize, func(i int, body []byte) ([][]byte, error) {
		list, _, err := decodePage(body, goldenInstance, i*MaxPageSize, MaxPageSize)
		return windowtest.Raw(list), err
	})
}

// sqlBenchAPI serves the SQL audit list from memory, oldest first with
// inclusive bounds, so that a benchmark measures the reader and the
// mapping, not an HTTP server. recs are ascending by times.
type sqlBenchAPI struct {
	recs  [][]byte
	times []time.Time
	calls int
}

func (a *sqlBenchAPI) Do(_ context.Context, req huaweiapi.Request) ([]byte, error) {
	a.calls++
	var q struct {
		Time struct {
			StartTime string `json:"start_time"`
			EndTime   string `json:"end_time"`
		} `json:"time"`
		Page, Size int
	}
	if err := json.Unmarshal(req.Body, &q); err != nil {
		return nil, err
	}
	from, err1 := time.Parse(bodyLayout, q.Time.StartTime)
	to, err2 := time.Parse(bodyLayout, q.Time.EndTime)
	if err1 != nil || err2 != nil || q.Page < 1 || q.Size < 1 {
		return nil, pipeline.Permanent(fmt.Errorf("bad request %s", req.Body))
	}
	lo := sort.Search(len(a.times), func(i int) bool { return !a.times[i].Before(from) })
	hi := sort.Search(len(a.times), func(i int) bool { return a.times[i].After(to) })
	off := lo + (q.Page-1)*q.Size
	end := min(off+q.Size, hi)
	buf := make([]byte, 0, 64+(end-off)*600)
	buf = append(buf, `{"total":`...)
	buf = strconv.AppendInt(buf, int64(hi-lo), 10)
	buf = append(buf, `,"count":`...)
	buf = strconv.AppendInt(buf, int64(hi-lo), 10)
	buf = append(buf, `,"sqls":[`...)
	for i := off; i < end; i++ {
		if i > off {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"sql":`...)
		buf = append(buf, a.recs[i]...)
		buf = append(buf, '}')
	}
	return append(buf, "]}"...), nil
}

// benchSQLRecords returns n SQL audit records (AuditSqlResponseSql) from
// start, perSecond to a second, ascending, varied like the simulator's.
func benchSQLRecords(n, perSecond int, start time.Time) ([][]byte, []time.Time) {
	stmts := []struct{ qt, stmt string }{
		{"SELECT", "SELECT id, amount FROM orders WHERE id = ?"},
		{"INSERT", "INSERT INTO orders (id, amount) VALUES (?, ?)"},
		{"UPDATE", "UPDATE accounts SET balance = balance - ? WHERE id = ?"},
		{"DELETE", "DELETE FROM sessions WHERE expires < NOW()"},
		{"LOGIN", "login"},
	}
	users := []string{"root", "app_rw", "report_ro", "张三", "etl"}
	recs, times := make([][]byte, n), make([]time.Time, n)
	for i := range n {
		t := start.Add(time.Duration(i/perSecond) * time.Second)
		s := stmts[i%len(stmts)]
		resp := "SUCCESS"
		if i%12 == 5 {
			resp = "FAILED"
		}
		recs[i] = fmt.Appendf(nil, `{"id":"%016x","sql_statement":%q,"client_ip":"10.0.%d.%d","client_name":"mysql-connector-java","db_ip":"192.168.0.10","db_user":%q,"query_type":%q,"operated_obj_info":[{"column_name":"","object_type":"","schema_name":"shop","sql_type":%q,"sys_name":"","table_name":"orders"}],"rule_name":"","risk_level":"NO_RISK","start_time":%q,"sql_response":%q,"db_instance":"mysql-orders-01"}`,
			uint64(i)*0x9e3779b97f4a7c15, s.stmt+fmt.Sprintf(" -- %d", i), i%256, 1+i%253, users[i%len(users)], s.qt, s.qt, t.Format(bodyLayout), resp)
		times[i] = t
	}
	return recs, times
}

// BenchmarkSQLBackfill reads and maps 200,000 SQL audit records through
// the SQL stream as a backfill does (windows of HWCAUDIT_WINDOW_MAX_RECORDS
// 5000, pages of 100), spread (4 a second) and dense (5,000 in each
// second, every window a streamed second). It reports records/s (one
// goroutine, reading and mapping), requests/record, bytes allocated per
// record and the peak live heap while reading, sampled every 200 pages
// after a collection: the figures docs/benchmarks.md holds the first
// sources to. records/CPU-s counts the in-memory API's work too (it
// decodes each request and builds each page).
func BenchmarkSQLBackfill(b *testing.B) {
	const n = 200_000
	start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name      string
		perSecond int
	}{{"spread", 4}, {"dense", 5000}} {
		b.Run(fmt.Sprintf("%s/records=%d", c.name, n), func(b *testing.B) {
			recs, times := benchSQLRecords(n, c.perSecond, start)
			end := times[len(times)-1].Add(time.Second)
			var peak uint64
			var calls int
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			var sampling time.Duration // CPU of the heap samples' collections
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := ecstest.CPUTime(b)
			for range b.N {
				api := &sqlBenchAPI{recs: recs, times: times}
				s := NewStreams(Config{Instances: []string{goldenInstance}, PageSize: 100, Streams: []string{"sql"}}, api, goldenRegion, goldenProject, Options{
					Window: window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 5000},
					Start:  start, End: end, Now: func() time.Time { return end.Add(time.Hour) },
				})[0]
				rd, err := s.Open(context.Background(), nil)
				if err != nil {
					b.Fatal(err)
				}
				got, pages := 0, 0
				var ev pipeline.Event
				for {
					p, err := rd.Next(context.Background())
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					for _, raw := range p.Records {
						ev.Doc = ev.Doc[:0]
						if err := s.Map(raw, &ev); err != nil {
							b.Fatal(err)
						}
						got++
					}
					if pages++; pages%200 == 0 {
						b.StopTimer()
						c := ecstest.CPUTime(b)
						runtime.GC()
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapAlloc-min(ms.HeapAlloc, base))
						sampling += ecstest.CPUTime(b) - c
						b.StartTimer()
					}
				}
				if got != n {
					b.Fatalf("read %d of %d records", got, n)
				}
				calls = api.calls
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N*n)/(ecstest.CPUTime(b)-cpu0-sampling).Seconds(), "records/CPU-s")
			b.ReportMetric(float64(calls)/n, "requests/record")
			b.ReportMetric(float64(peak)/(1<<20), "peak-live-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkMapSQL measures the transform stage on SQL audit records as
// the pipeline runs it, including the decoding of the API's page.
func BenchmarkMapSQL(b *testing.B) {
	recs, _ := benchSQLRecords(10*MaxPageSize, 4, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	bodies := ecstest.PageBodies(b, recs, MaxPageSize, func(list []json.RawMessage) any {
		sqls := make([]map[string]json.RawMessage, len(list))
		for i, r := range list {
			sqls[i] = map[string]json.RawMessage{"sql": r}
		}
		return map[string]any{"total": len(recs), "count": len(recs), "sqls": sqls}
	})
	s := kindGoldenStream(SQL)
	ecstest.BenchmarkMap(b, s, s.Key(), bodies, MaxPageSize, func(i int, body []byte) ([][]byte, error) {
		list, _, err := decodeSQLPage(body, goldenInstance, i*MaxPageSize, MaxPageSize)
		return windowtest.Raw(list), err
	})
}
