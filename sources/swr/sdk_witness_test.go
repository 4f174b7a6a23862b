package swr_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	swrsdk "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/swr/v2"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/swr/v2/model"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi/sdkwitness"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/swr"
)

// TestSDKWitnessSWR reads the simulator through our SWR streams, replays
// every request they sent with the official SDK's SwrClient.ListAuditLogs
// for the same parameters, and compares the two requests. The SDK's
// requests go to the simulator too, which must accept their signatures and
// answer pages that the SDK's model decodes and sdkwitness.Check finds no
// fault in.
func TestSDKWitnessSWR(t *testing.T) {
	for _, odd := range []float64{0, 0.3} {
		t.Run(fmt.Sprintf("odd rate %g", odd), func(t *testing.T) {
			const instance = "7f3c2a10-5b8e-4d21-9c4f-0e6a1b2c3d4e"
			start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
			sim := simulator.New(simulator.Config{
				ProjectID:   sdkwitness.ProjectID,
				Credentials: []simulator.Credential{{AK: sdkwitness.AK, SK: sdkwitness.SK}},
				Seed:        11,
				Faults:      simulator.Faults{OddRate: odd},
				SWR: simulator.SWRConfig{
					Instances:           []string{instance},
					RecordsPerOperation: 230,
					Start:               start,
					Interval:            time.Second,
				},
			})
			rec := sdkwitness.NewRecorder(t, sim)

			ops := []string{"pull", "create", "delete"}
			cfg := swr.Config{Instances: []string{instance}, Operations: ops, Endpoint: rec.URL, PageSize: 100, Concurrency: 1}
			if err := cfg.Validate("cn-north-4"); err != nil {
				t.Fatal(err)
			}
			api := sdkwitness.OurClient(t, sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)
			sdkwitness.Read(t, swr.Streams(cfg, api, "cn-north-4", sdkwitness.ProjectID, start.Add(-time.Hour), time.Now), 20)
			ours := rec.Take()
			if len(ours) < 6 {
				t.Fatalf("our streams sent %d requests, want several pages of each operation", len(ours))
			}

			//lint:ignore SA1019 the witness builds the client as the SDK's own examples do
			client := swrsdk.NewSwrClient(swrsdk.SwrClientBuilder().
				WithEndpoints([]string{rec.URL}).
				WithCredential(sdkwitness.Credentials(sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)).
				WithHttpConfig(sdkwitness.HTTPConfig()).
				Build())
			records := 0
			for _, o := range ours {
				req := &model.ListAuditLogsRequest{
					InstanceId: instance,
					Operation:  o.Query.Get("operation"),
					Offset:     int32Param(t, o, "offset"),
					Limit:      int32Param(t, o, "limit"),
				}
				resp, err := client.ListAuditLogs(req)
				sdk := rec.TakeMatching(t, o, err)
				if err != nil {
					t.Fatalf("the SDK could not read the simulator's answer to %s: %v", sdk, err)
				}
				// An odd record's unknown x_… members are the simulator's.
				sdkwitness.CheckAnswer(t, sdk, new(model.ListAuditLogsResponse), func(p sdkwitness.Problem) bool { return odd > 0 && sdkwitness.SimulatorExtra(p) })
				if resp.Total == nil || resp.AuditLogs == nil {
					t.Fatalf("SDK decoded no total or audit_logs from %s", sdk.Response)
				}
				for _, l := range *resp.AuditLogs {
					if l.Id == nil || l.OpTime == nil {
						t.Errorf("SDK decoded a record without id or op_time: %v", l)
					}
				}
				records += len(*resp.AuditLogs)
			}
			t.Logf("compared %d requests; the SDK decoded %d records of the simulator", len(ours), records)
		})
	}
}

// int32Param reads query parameter name of our request as the SDK's
// *int32; a missing or non-integer value fails the test.
func int32Param(t *testing.T, r sdkwitness.Request, name string) *int32 {
	t.Helper()
	v, err := strconv.ParseInt(r.Query.Get(name), 10, 32)
	if err != nil {
		t.Fatalf("our request %s: %s: %v", r, name, err)
	}
	n := int32(v)
	return &n
}
