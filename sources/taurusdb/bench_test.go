package taurusdb

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
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

// writeSQLBenchFile writes a simulator audit log file of about size bytes
// (CSV with a header row, gzip when gz) under dir, streamed to disk.
func writeSQLBenchFile(b *testing.B, dir string, size int64, gz bool) (string, int) {
	b.Helper()
	const perRecord = 105 // about, for the simulator's CSV lines
	n := int(size / perRecord)
	sim := simulator.New(simulator.Config{ProjectID: simProject, Seed: 3, TaurusDB: simulator.TaurusDBConfig{
		Instances: []string{simIns}, Files: 1, Start: simStart,
		SQL: simulator.TaurusDBSQLConfig{Records: n, Format: simulator.SQLCSVHeader, Gzip: gz},
	}})
	path := filepath.Join(dir, "audit.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.WriteTaurusDBSQLFile(f, simIns, sim.TaurusDBRecords(simIns)[0].ID); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path, n
}

// BenchmarkSQLFile reads a 100 MB SQL audit log file (CSV with a header
// row, plain and gzip) as the SQL stream does: split into records, parse
// the CSV, build each record's JSON, and, in the "map" variants, map it to
// ECS. It reports records/s and CPU µs per record, the bytes allocated per
// record and the peak live heap while reading (sampled every 4096
// records), which must stay flat however large the file is.
func BenchmarkSQLFile(b *testing.B) {
	dir := b.TempDir()
	for _, gz := range []bool{false, true} {
		path, n := writeSQLBenchFile(b, dir, 100<<20, gz)
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		name := "csv"
		if gz {
			name = "csv.gz"
		}
		for _, mapToo := range []bool{false, true} {
			sub := name + "/read"
			if mapToo {
				sub = name + "/read+map"
			}
			b.Run(sub, func(b *testing.B) {
				s := goldenSQLStream()
				ref := fileRef{id: "fa163ea0e2bet11e9d832166a2cf894c5br01", name: "bench"}
				var ms runtime.MemStats
				var peak uint64
				records := 0
				runtime.GC()
				runtime.ReadMemStats(&ms)
				allocs0 := ms.TotalAlloc
				cpu0 := ecstest.CPUTime(b)
				start := time.Now()
				for b.Loop() {
					f, err := os.Open(path)
					if err != nil {
						b.Fatal(err)
					}
					file, err := openSQLFile(f, SQLFields, 1<<20)
					if err != nil {
						b.Fatal(err)
					}
					var ev pipeline.Event
					for k := int64(0); ; k++ {
						rec, err := file.next()
						if err != nil {
							break
						}
						if rec.fields == nil {
							b.Fatalf("record %d: %s", k, rec.reason)
						}
						raw := s.envelope(ref, k, rec.fields)
						if mapToo {
							ev.Doc = ev.Doc[:0]
							if err := s.Map(raw, &ev); err != nil {
								b.Fatal(err)
							}
						}
						records++
						if records%4096 == 0 {
							runtime.ReadMemStats(&ms)
							peak = max(peak, ms.HeapAlloc)
						}
					}
					_ = f.Close()
				}
				elapsed := time.Since(start)
				cpu := ecstest.CPUTime(b) - cpu0
				runtime.ReadMemStats(&ms)
				if records < n {
					b.Fatalf("read %d records of %d", records, n)
				}
				b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(records), "cpu-µs/record")
				b.ReportMetric(float64(ms.TotalAlloc-allocs0)/float64(records), "alloc-B/record")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
			})
		}
	}
}
