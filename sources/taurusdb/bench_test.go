package taurusdb

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

// benchTaurusRecords returns n audit log files (AuditLogDetail) in the
// documented shape, ascending by end_time, varied like the simulator's: id
// a 36-character string, name "{seq}_{yyyymmddhhmmss}_{instance}_Audit_{uuid}",
// size in KB with six decimals (a whole number for one file in nine),
// begin_time and end_time as "2019-11-06T09:03:34+0800", about one file in
// four sharing its end_time's second with the previous one.
func benchTaurusRecords(n int) [][]byte {
	const layout = "2006-01-02T15:04:05-0700"
	cst := time.FixedZone("CST", 8*3600)
	end := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		if i%4 != 3 {
			end = end.Add(time.Duration(1+i%97) * time.Second)
		}
		begin := end.Add(-time.Minute - time.Duration(i*37%3600)*time.Second)
		h := uint64(i)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
		size := strconv.FormatFloat(float64(h%20_000_000_000)/1e6, 'f', 6, 64)
		if i%9 == 4 {
			size = strconv.FormatUint(h%4096, 10)
		}
		out[i] = fmt.Appendf(nil, `{"id":"%016x%016xbr01","name":"%d_%s_%sin07_Audit_%08x-%04x-%04x-%04x-%012x","size":%s,"begin_time":"%s","end_time":"%s"}`,
			h, h^0xfa163ea0e2be, 300000+i, end.Format("20060102150405"), goldenInstance[:16],
			uint32(h), uint16(h>>32), uint16(h>>48), uint16(h>>8), h>>16&0xffffffffffff,
			size, begin.In(cst).Format(layout), end.In(cst).Format(layout))
	}
	return out
}

// BenchmarkMap measures the transform stage on TaurusDB audit log files as
// the pipeline runs it (pipeline.MapRecords, a page at a time), including
// the decoding of the API's page into records: records/s is per core.
func BenchmarkMap(b *testing.B) {
	recs := benchTaurusRecords(10 * MaxPageSize)
	bodies := ecstest.PageBodies(b, recs, MaxPageSize, func(logs []json.RawMessage) any {
		return map[string]any{"audit_logs": logs, "total_count": len(recs)}
	})
	s := goldenStream()
	ecstest.BenchmarkMap(b, s, s.Key(), bodies, MaxPageSize, func(i int, body []byte) ([][]byte, error) {
		list, _, err := decodePage(body, goldenInstance, i*MaxPageSize, MaxPageSize)
		return windowtest.Raw(list), err
	})
}
