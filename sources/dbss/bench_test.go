package dbss

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
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
