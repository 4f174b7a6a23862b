package sdkwitness_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/swr/v2/model"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi/sdkwitness"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// A simulator page holding records of the wrong JSON type (its malformed
// records: an SWR id as a string) must not pass Check: the witness tests
// of the sources would otherwise not see a simulator that drifted.
func TestCheckCatchesMalformedSimulatorRecords(t *testing.T) {
	const instance = "ins-witness"
	sim := simulator.New(simulator.Config{
		ProjectID:   sdkwitness.ProjectID,
		Credentials: []simulator.Credential{{AK: sdkwitness.AK, SK: sdkwitness.SK}},
		Seed:        1,
		SWR:         simulator.SWRConfig{Instances: []string{instance}, RecordsPerOperation: 100, Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Interval: time.Second},
		Faults:      simulator.Faults{MalformedRate: 0.3},
	})
	rec := sdkwitness.NewRecorder(t, sim)
	api := sdkwitness.OurClient(t, sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)
	body, err := api.Do(context.Background(), huaweiapi.Request{
		Method:   http.MethodGet,
		Endpoint: rec.URL,
		Path:     "/v2/" + sdkwitness.ProjectID + "/instances/" + instance + "/audit-logs",
		Query:    url.Values{"operation": {"pull"}, "offset": {"0"}, "limit": {"100"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := sdkwitness.Check(body, new(model.ListAuditLogsResponse))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range problems {
		kinds[p.Rule+" "+p.Got]++
	}
	if kinds["audit_logs[].id string"] == 0 {
		t.Errorf("Check found no string id among %d malformed-rate records: %v", 100, kinds)
	}
	if err := sdkwitness.Unmarshal(body, new(model.ListAuditLogsResponse)); err == nil {
		t.Errorf("the SDK's decoder took a page with string ids")
	}
}
