package dbss_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	dbsssdk "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dbss/v1"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dbss/v1/model"

	"github.com/hwcaudit/hwcaudit/sources/dbss"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi/sdkwitness"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

const witnessInstance = "9d1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"

// TestSDKWitnessDBSS reads the simulator through our DBSS stream, on the
// current path and, when the simulator does not publish it, on the
// retiring one; replays every request with the official SDK's
// DbssClient.ListAuditOperateLogsNew (current path) or
// ListAuditOperateLogs (retiring path) for the same parameters; and
// compares the two. The simulator answers the SDK too; every 200 page is
// checked against the SDK's response model and decoded by the SDK.
func TestSDKWitnessDBSS(t *testing.T) {
	for _, tc := range []struct {
		name          string
		currentAbsent bool
		odd           float64
	}{
		{"current path", false, 0},
		{"retiring path", true, 0},
		{"current path, odd records", false, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Second)
			first := now.Add(-3 * time.Hour)
			sim := simulator.New(simulator.Config{
				ProjectID:   sdkwitness.ProjectID,
				Credentials: []simulator.Credential{{AK: sdkwitness.AK, SK: sdkwitness.SK}},
				Seed:        3,
				Faults:      simulator.Faults{OddRate: tc.odd},
				DBSS: simulator.DBSSConfig{
					Instances:          []string{witnessInstance},
					Records:            300,
					Start:              first,
					Interval:           30 * time.Second,
					CurrentPathMissing: tc.currentAbsent,
				},
			})
			rec := sdkwitness.NewRecorder(t, sim)
			cfg := dbss.Config{Instances: []string{witnessInstance}, Endpoint: rec.URL, PageSize: 50}
			if err := cfg.Validate("cn-north-4"); err != nil {
				t.Fatal(err)
			}
			api := sdkwitness.OurClient(t, sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)
			win := window.Config{SettleDelay: time.Minute, MaxRecords: 100}
			sdkwitness.Read(t, dbss.Streams(cfg, win, api, "cn-north-4", sdkwitness.ProjectID, first.Add(-time.Hour), time.Now), 100)
			ours := rec.Take()
			if len(ours) < 4 {
				t.Fatalf("our stream sent %d requests, want several pages", len(ours))
			}

			//lint:ignore SA1019 the witness builds the client as the SDK's own examples do
			client := dbsssdk.NewDbssClient(dbsssdk.DbssClientBuilder().
				WithEndpoints([]string{rec.URL}).
				WithCredential(sdkwitness.Credentials(sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)).
				WithHttpConfig(sdkwitness.HTTPConfig()).
				Build())
			current := "/v1/" + sdkwitness.ProjectID + "/audit/" + witnessInstance + "/operation-log"
			legacy := "/v1/" + sdkwitness.ProjectID + "/" + witnessInstance + "/dbss/audit/operate-log"
			records, paths := 0, map[string]int{}
			for _, o := range ours {
				body := witnessBody(t, o)
				var total *int32
				var logs *[]model.OperateLogInfo
				var sdkErr error
				var respModel any
				switch o.Path {
				case current:
					resp, err := client.ListAuditOperateLogsNew(&model.ListAuditOperateLogsNewRequest{InstanceId: witnessInstance, Body: body})
					sdkErr, respModel = err, new(model.ListAuditOperateLogsNewResponse)
					if err == nil {
						total, logs = resp.TotalNum, resp.OperateLog
					}
				case legacy:
					//lint:ignore SA1019 the legacy path is the deprecated API, witnessed on purpose
					resp, err := client.ListAuditOperateLogs(&model.ListAuditOperateLogsRequest{InstanceId: witnessInstance, Body: body})
					sdkErr, respModel = err, new(model.ListAuditOperateLogsResponse)
					if err == nil {
						total, logs = resp.TotalNum, resp.OperateLog
					}
				default:
					t.Fatalf("our request %s has a path the SDK does not know", o)
				}
				paths[o.Path]++
				sdk := rec.TakeMatching(t, o, sdkErr)
				if sdk.Status != o.Status {
					t.Errorf("the simulator answered our %s with %d, the SDK's with %d", o, o.Status, sdk.Status)
				}
				if sdk.Status != http.StatusOK {
					continue // the 404 of an unpublished current path
				}
				if sdkErr != nil {
					t.Fatalf("the SDK could not read the simulator's answer to %s: %v", sdk, sdkErr)
				}
				// An odd record's unknown x_… members are the simulator's.
				sdkwitness.CheckAnswer(t, sdk, respModel, func(p sdkwitness.Problem) bool { return tc.odd > 0 && sdkwitness.SimulatorExtra(p) })
				if total == nil || logs == nil {
					t.Fatalf("SDK decoded no total_num or operate_log from %s", sdk.Response)
				}
				for _, l := range *logs {
					if l.Id == nil || l.Time == nil {
						t.Errorf("SDK decoded a record without id or time: %v", l)
					}
				}
				records += len(*logs)
			}
			if tc.currentAbsent && paths[legacy] == 0 {
				t.Errorf("our stream never used the retiring path: %v", paths)
			}
			if !tc.currentAbsent && (paths[legacy] > 0 || paths[current] == 0) {
				t.Errorf("our stream used the retiring path though the current one answers: %v", paths)
			}
			t.Logf("compared %d requests (%v); the SDK decoded %d records of the simulator", len(ours), paths, records)
		})
	}
}

// witnessBody builds the SDK's request body from the parameters of ours.
// A member of another JSON type than the SDK's string is passed on in its
// text form, so that Compare reports the type difference.
func witnessBody(t *testing.T, r sdkwitness.Request) *model.OperateLogGetRequest {
	t.Helper()
	var b struct {
		Time *struct {
			StartTime *string `json:"start_time"`
			EndTime   *string `json:"end_time"`
			TimeRange *string `json:"time_range"`
		} `json:"time"`
		Page json.RawMessage `json:"page"`
		Size json.RawMessage `json:"size"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("our request %s: body: %v", r, err)
	}
	text := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return strings.TrimSpace(string(raw))
	}
	out := &model.OperateLogGetRequest{Page: text(b.Page), Size: text(b.Size)}
	if b.Time != nil {
		out.Time = &model.TimeRangeBean{StartTime: b.Time.StartTime, EndTime: b.Time.EndTime, TimeRange: b.Time.TimeRange}
	} else {
		t.Errorf("our request %s has no time", r)
	}
	if out.Page == "" || out.Size == "" {
		t.Errorf("our request %s: page %q size %q", r, out.Page, out.Size)
	}
	return out
}
