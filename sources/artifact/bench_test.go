package artifact

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
)

// benchArtifactRecords returns n records of a file store in the documented
// AuditDO shape, ascending by id, varied like the simulator's: every
// member a string, id a digit string, time "2006/01/02 15:04:05" in
// UTC+08:00 with several records to a second, reason and (one record in
// seven) info and userAgent null, IPv4 and IPv6 sources, CJK and accented
// operators, paths with spaces and non-ASCII names.
func benchArtifactRecords(n int) [][]byte {
	ops := []string{"upload", "upload", "download", "download", "download", "delete", "move"}
	users := []string{"devcloud_devcloud_y00226182_01", "zhangsan", "张三", "王芳", "jürgen.müller", "ci-bot", "田中太郎", "ops_oncall"}
	nicks := []string{"", "Zhang San", "张三", "王芳", "Jürgen Müller", ""}
	agents := []string{"Apache-HttpClient/4.5.13 (Java/1.8.0_232)", "Apache-Maven/3.9.6 (Java 17.0.9; Linux 5.15.0)",
		"npm/10.2.4 node/v20.11.0 linux x64 workspaces/false", `pip/23.3.1 {"python":"3.11.7"}`, "Go-http-client/1.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}
	paths := []string{"1/1/1/1-1-1.jar", "com/example/app/2.3.1/app-2.3.1.pom", "release/v1.0/产品包.zip",
		"lodash/-/lodash-4.17.21.tgz", "pkgs/requests-2.31.0-py3-none-any.whl", "a b/c d.txt"}
	reasons := []string{"", "", "", "cleanup policy", "误上传", ""}
	opt := func(s string) *string {
		if s == "" {
			return nil // served as null
		}
		return &s
	}
	cst := time.FixedZone("CST", 8*3600)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		info, agent := opt(goldenRepo), opt(agents[i%len(agents)])
		if i%7 == 3 {
			info, agent = nil, nil
		}
		ip := fmt.Sprintf("10.%d.%d.%d", i%256, (i/7)%256, 1+i%254)
		if i%11 == 5 {
			ip = "2001:db8::" + strconv.FormatInt(int64(i%4096), 16)
		}
		raw, err := json.Marshal(struct {
			ID                 string  `json:"id"`
			Module             string  `json:"module"`
			Operation          string  `json:"operation"`
			Time               string  `json:"time"`
			Info               *string `json:"info"`
			Data               string  `json:"data"`
			Reason             *string `json:"reason"`
			UserAgent          *string `json:"userAgent"`
			Operator           string  `json:"operator"`
			OperatorNickName   string  `json:"operatorNickName,omitempty"`
			OperatorTenantName string  `json:"operatorTenantName,omitempty"`
			IPSource           string  `json:"ipSource"`
		}{
			ID:                 strconv.Itoa(2_271_182 + 3*i + i%3),
			Module:             ModuleFile,
			Operation:          ops[i%len(ops)],
			Time:               t0.Add(time.Duration(i) * 700 * time.Millisecond).In(cst).Format("2006/01/02 15:04:05"),
			Info:               info,
			Data:               paths[i%len(paths)],
			Reason:             opt(reasons[i%len(reasons)]),
			UserAgent:          agent,
			Operator:           users[i%len(users)],
			OperatorNickName:   nicks[i%len(nicks)],
			OperatorTenantName: []string{"", "租户甲", "devcloud"}[i%3],
			IPSource:           ip,
		})
		if err != nil {
			panic(err)
		}
		out[i] = raw
	}
	return out
}

// BenchmarkMap measures the transform stage on CodeArts Artifact records
// as the pipeline runs it (pipeline.MapRecords, a page at a time),
// including the decoding of the API's page into records: records/s is per
// core. The API lists newest first; the reader hands the page on oldest
// first, into a slice reused here.
func BenchmarkMap(b *testing.B) {
	// The API lists newest first; the reader hands records on oldest first.
	recs := slices.Clone(benchArtifactRecords(10 * MaxPageSize))
	slices.Reverse(recs)
	bodies := ecstest.PageBodies(b, recs, MaxPageSize, func(logs []json.RawMessage) any {
		return map[string]any{
			"status":   "success",
			"trace_id": "143002-1701222589443-431",
			"result":   map[string]any{"auditInfoList": logs, "total": len(recs)},
		}
	})
	s := goldenStream(ModuleFile)
	ecstest.BenchmarkMap(b, s, s.Key(), bodies, MaxPageSize, func(i int, body []byte) ([][]byte, error) {
		list, _, err := decodePage(body, s.loc, s.Key(), int64(i*MaxPageSize), MaxPageSize)
		var page [][]byte
		for _, r := range slices.Backward(list) {
			page = append(page, r.Raw)
		}
		return page, err
	})
}
