package simulator_test

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

func Example() {
	cfg := simulator.DemoConfig(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	cfg.Faults.ThrottleEvery = 2
	cfg.Faults.RetryAfter = time.Second
	s := simulator.New(cfg)
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer s.Close()

	url := fmt.Sprintf("%s/v2/%s/instances/%s/audit-logs?operation=pull&limit=1",
		base, simulator.DemoProjectID, cfg.SWR.Instances[0])
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("X-Auth-Token", simulator.DemoToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"), string(body[:min(len(body), 60)]))
	}
	newest := s.SWRRecords(cfg.SWR.Instances[0], "pull")[2999]
	fmt.Println(newest.ID, newest.OpTime.Format(time.RFC3339Nano))
	// Output:
	// 200  {"audit_logs":[{"id":9273,"op_time":"2025-06-01T11:29:42.080
	// 429 1 {"error_code":"APIG.0308","error_msg":"The throttling thresh
	// 9273 2025-06-01T11:29:42.08Z
}
