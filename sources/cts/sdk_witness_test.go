package cts_test

import (
	"strconv"
	"testing"
	"time"

	ctssdk "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cts/v3"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cts/v3/model"

	"github.com/hwcaudit/hwcaudit/sources/cts"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi/sdkwitness"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// TestSDKWitnessCTS reads the simulator through our CTS streams (system
// and data traces, several pages, markers and boundary queries); replays
// every request with the official SDK's CtsClient.ListTraces for the same
// parameters; and compares the two. The simulator answers the SDK too;
// every 200 page is checked against the SDK's response model and decoded
// by the SDK.
func TestSDKWitnessCTS(t *testing.T) {
	for _, tc := range []struct {
		name string
		odd  float64
	}{
		{"documented", 0},
		{"odd traces", 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Second)
			first := now.Add(-3 * time.Hour)
			sim := simulator.New(simulator.Config{
				ProjectID:   sdkwitness.ProjectID,
				Credentials: []simulator.Credential{{AK: sdkwitness.AK, SK: sdkwitness.SK}},
				Seed:        3,
				Faults:      simulator.Faults{OddRate: tc.odd},
				CTS:         simulator.CTSConfig{Traces: 300, DataTraces: 100, Start: first, Interval: 30 * time.Second, SameSecond: 8, MaxLag: time.Minute},
			})
			rec := sdkwitness.NewRecorder(t, sim)
			cfg := cts.Config{Enabled: true, TraceTypes: []string{cts.TypeSystem, cts.TypeData}, Endpoint: rec.URL, PageSize: 20, Lookback: 2 * time.Minute}
			if err := cfg.Validate("cn-north-4", sdkwitness.ProjectID); err != nil {
				t.Fatal(err)
			}
			api := sdkwitness.OurClient(t, sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)
			win := window.Config{SettleDelay: time.Minute, MaxRecords: 100}
			sdkwitness.Read(t, cts.Streams(cfg, win, api, "cn-north-4", sdkwitness.ProjectID, first.Add(-time.Hour), time.Now), 100)
			ours := rec.Take()
			if len(ours) < 8 {
				t.Fatalf("our streams sent %d requests, want several pages", len(ours))
			}

			//lint:ignore SA1019 the witness builds the client as the SDK's own examples do
			client := ctssdk.NewCtsClient(ctssdk.CtsClientBuilder().
				WithEndpoints([]string{rec.URL}).
				WithCredential(sdkwitness.Credentials(sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)).
				WithHttpConfig(sdkwitness.HTTPConfig()).
				Build())
			traces, markers, types := 0, 0, map[string]int{}
			for _, o := range ours {
				req := witnessRequest(t, o)
				types[o.Query.Get("trace_type")]++
				if o.Query.Get("next") != "" {
					markers++
				}
				resp, sdkErr := client.ListTraces(req)
				sdk := rec.TakeMatching(t, o, sdkErr)
				if sdk.Status != o.Status || o.Status != 200 {
					t.Fatalf("the simulator answered our %s with %d, the SDK's with %d", o, o.Status, sdk.Status)
				}
				if sdkErr != nil {
					t.Fatalf("the SDK could not read the simulator's answer to %s: %v", sdk, sdkErr)
				}
				// An odd trace's unknown x_… members are the simulator's.
				sdkwitness.CheckAnswer(t, sdk, new(model.ListTracesResponse), func(p sdkwitness.Problem) bool { return tc.odd > 0 && sdkwitness.SimulatorExtra(p) })
				if resp.Traces == nil || resp.MetaData == nil {
					t.Fatalf("SDK decoded no traces or meta_data from %s", sdk.Response)
				}
				for _, tr := range *resp.Traces {
					if tr.TraceId == nil || tr.Time == nil || tr.RecordTime == nil {
						t.Errorf("SDK decoded a trace without trace_id, time or record_time: %v", tr)
					}
				}
				traces += len(*resp.Traces)
			}
			if types["system"] == 0 || types["data"] == 0 || markers == 0 {
				t.Errorf("requests by trace type %v, %d with next: want both types and markers followed", types, markers)
			}
			t.Logf("compared %d requests (%v, %d with next); the SDK decoded %d traces of the simulator", len(ours), types, markers, traces)
		})
	}
}

// witnessRequest builds the SDK's request from the parameters of ours.
func witnessRequest(t *testing.T, r sdkwitness.Request) *model.ListTracesRequest {
	t.Helper()
	q := r.Query
	var out model.ListTracesRequest
	if err := out.TraceType.UnmarshalJSON([]byte(strconv.Quote(q.Get("trace_type")))); err != nil {
		t.Fatal(err)
	}
	num := func(name string) int64 {
		n, err := strconv.ParseInt(q.Get(name), 10, 64)
		if err != nil {
			t.Fatalf("our request %s: %s %q", r, name, q.Get(name))
		}
		return n
	}
	limit := int32(num("limit"))
	from, to := num("from"), num("to")
	out.Limit, out.From, out.To = &limit, &from, &to
	if n := q.Get("next"); n != "" {
		out.Next = &n
	}
	return &out
}
