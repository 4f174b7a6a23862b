package dbss_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	dbsssdk "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dbss/v1"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dbss/v1/model"

	"github.com/hwcaudit/hwcaudit/sources/dbss"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi/sdkwitness"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// TestSDKWitnessDBSSSQLAndAlarm reads the simulator's SQL audit and alarm
// logs through our streams, on the newer paths and, when the simulator
// does not publish them, on the older ones; replays every request with
// the official SDK's ListAuditSqlsNew / ListAuditSqls and
// ListAuditAlarmLogNew / ListAuditAlarmLog for the same parameters; and
// compares the requests. Every 200 page is checked against the SDK's
// response model and decoded by the SDK.
func TestSDKWitnessDBSSSQLAndAlarm(t *testing.T) {
	for _, tc := range []struct {
		name          string
		currentAbsent bool
	}{{"newer paths", false}, {"older paths", true}} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Second)
			first := now.Add(-3 * time.Hour)
			sim := simulator.New(simulator.Config{
				ProjectID:   sdkwitness.ProjectID,
				Credentials: []simulator.Credential{{AK: sdkwitness.AK, SK: sdkwitness.SK}},
				Seed:        3,
				DBSS: simulator.DBSSConfig{
					Instances:          []string{witnessInstance},
					Start:              first,
					SQLRecords:         300,
					SQLInterval:        30 * time.Second,
					Alarms:             120,
					AlarmInterval:      time.Minute,
					CurrentPathMissing: tc.currentAbsent,
					Variants:           simulator.DBSSVariants{AlarmStatusChanges: true},
				},
			})
			rec := sdkwitness.NewRecorder(t, sim)
			cfg := dbss.Config{Instances: []string{witnessInstance}, Endpoint: rec.URL, PageSize: 50, Streams: []string{"sql", "alarm"}}
			if err := cfg.Validate("cn-north-4"); err != nil {
				t.Fatal(err)
			}
			api := sdkwitness.OurClient(t, sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)
			win := window.Config{SettleDelay: time.Minute, MaxRecords: 100}
			sdkwitness.Read(t, dbss.Streams(cfg, win, api, "cn-north-4", sdkwitness.ProjectID, first.Add(-time.Hour), time.Now), 100)
			ours := rec.Take()

			//lint:ignore SA1019 the witness builds the client as the SDK's own examples do
			client := dbsssdk.NewDbssClient(dbsssdk.DbssClientBuilder().
				WithEndpoints([]string{rec.URL}).
				WithCredential(sdkwitness.Credentials(sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)).
				WithHttpConfig(sdkwitness.HTTPConfig()).
				Build())
			p, i := sdkwitness.ProjectID, witnessInstance
			sqlNew, sqlOld := "/v2/"+p+"/audit/"+i+"/sqls", "/v1/"+p+"/"+i+"/audit/sqls"
			alarmNew, alarmOld := "/v2/"+p+"/audit/"+i+"/alarm-log", "/v1/"+p+"/"+i+"/audit/alarm-log"
			paths, records := map[string]int{}, 0
			for _, o := range ours {
				var (
					sdkErr    error
					respModel any
					n         int
					decoded   bool
				)
				switch o.Path {
				case sqlNew, sqlOld:
					var body model.AuditSqlRequest
					if err := json.Unmarshal(o.Body, &body); err != nil {
						t.Fatalf("our request %s: body is not an AuditSqlRequest: %v", o, err)
					}
					if o.Path == sqlNew {
						resp, err := client.ListAuditSqlsNew(&model.ListAuditSqlsNewRequest{InstanceId: i, Body: &body})
						sdkErr, respModel = err, new(model.ListAuditSqlsNewResponse)
						if err == nil && resp.Sqls != nil && resp.Total != nil {
							n, decoded = len(*resp.Sqls), true
							for _, s := range *resp.Sqls {
								if s.Sql == nil || s.Sql.StartTime == nil {
									t.Errorf("SDK decoded a SQL record without start_time: %v", s)
								}
							}
						}
					} else {
						//lint:ignore SA1019 the older path is the deprecated API, witnessed on purpose
						resp, err := client.ListAuditSqls(&model.ListAuditSqlsRequest{InstanceId: i, Body: &body})
						sdkErr, respModel = err, new(model.ListAuditSqlsResponse)
						if err == nil && resp.Sqls != nil && resp.Total != nil {
							n, decoded = len(*resp.Sqls), true
						}
					}
				case alarmNew, alarmOld:
					var body model.AlarmLogRequest
					if err := json.Unmarshal(o.Body, &body); err != nil {
						t.Fatalf("our request %s: body is not an AlarmLogRequest: %v", o, err)
					}
					if o.Path == alarmNew {
						resp, err := client.ListAuditAlarmLogNew(&model.ListAuditAlarmLogNewRequest{InstanceId: i, Body: &body})
						sdkErr, respModel = err, new(model.ListAuditAlarmLogNewResponse)
						if err == nil && resp.AlarmLog != nil && resp.TotalNum != nil {
							n, decoded = len(*resp.AlarmLog), true
							for _, a := range *resp.AlarmLog {
								if a.Id == nil || a.AlarmTime == nil || a.AlarmLife == nil {
									t.Errorf("SDK decoded an alarm without id, alarm_time or alarm_life: %v", a)
								}
							}
						}
					} else {
						//lint:ignore SA1019 the older path is the deprecated API, witnessed on purpose
						resp, err := client.ListAuditAlarmLog(&model.ListAuditAlarmLogRequest{InstanceId: i, Body: &body})
						sdkErr, respModel = err, new(model.ListAuditAlarmLogResponse)
						if err == nil && resp.AlarmLog != nil && resp.TotalNum != nil {
							n, decoded = len(*resp.AlarmLog), true
							for _, a := range *resp.AlarmLog {
								if a.AlarmLife == nil || a.SendEmail == nil {
									t.Errorf("SDK decoded an older-path alarm without alarmLife or sendEmail: %v", a)
								}
							}
						}
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
					continue // the 404 of an unpublished newer path
				}
				if sdkErr != nil {
					t.Fatalf("the SDK could not read the simulator's answer to %s: %v", sdk, sdkErr)
				}
				sdkwitness.CheckAnswer(t, sdk, respModel, nil)
				if !decoded {
					t.Fatalf("SDK decoded no total or list from %s", sdk.Response)
				}
				records += n
			}
			for _, want := range [][2]string{{sqlNew, sqlOld}, {alarmNew, alarmOld}} {
				used, unused := want[0], want[1]
				if tc.currentAbsent {
					used, unused = unused, used
				}
				if paths[used] < 2 || (!tc.currentAbsent && paths[unused] > 0) {
					t.Errorf("paths used: %v; want several requests on %s", paths, used)
				}
			}
			if records == 0 {
				t.Error("the SDK decoded no records")
			}
			t.Logf("compared %d requests (%v); the SDK decoded %d records of the simulator", len(ours), paths, records)
		})
	}
}
