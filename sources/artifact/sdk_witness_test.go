package artifact_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	artifactsdk "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/codeartsartifact/v2"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/codeartsartifact/v2/model"

	"github.com/hwcaudit/hwcaudit/sources/artifact"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi/sdkwitness"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
)

// TestSDKWitnessArtifact reads the simulator through our CodeArts
// Artifact streams (a file store and a repository), replays every request
// they sent with the official SDK's CodeArtsArtifactClient.ShowAudit for
// the same parameters, and compares the two requests. The simulator
// answers the SDK too; every page is checked against the SDK's response
// model and decoded by the SDK.
func TestSDKWitnessArtifact(t *testing.T) {
	for _, odd := range []float64{0, 0.3} {
		t.Run(fmt.Sprintf("odd rate %g", odd), func(t *testing.T) {
			const tenant = "5a775fdcb14f4431b6c0015618140bc3"
			repos := []simulator.ArtifactRepo{
				{Module: "file", Repo: "cn-north-4_5a775fdcb14f4431b6c0015618140bc3_maven_1_108"},
				{Module: "repository", Repo: "cn-north-4_5a775fdcb14f4431b6c0015618140bc3_npm_1_109"},
			}
			start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
			sim := simulator.New(simulator.Config{
				ProjectID:   sdkwitness.ProjectID,
				Credentials: []simulator.Credential{{AK: sdkwitness.AK, SK: sdkwitness.SK}},
				Seed:        8,
				Faults:      simulator.Faults{OddRate: odd},
				Artifact: simulator.ArtifactConfig{
					TenantID:       tenant,
					Repos:          repos,
					RecordsPerRepo: 230,
					Start:          start,
					Interval:       7 * time.Second,
				},
			})
			rec := sdkwitness.NewRecorder(t, sim)

			cfg := artifact.Config{TenantID: tenant, Endpoint: rec.URL, Timezone: "+08:00", PageSize: 100, Concurrency: 1}
			for _, r := range repos {
				cfg.Repos = append(cfg.Repos, r.Module+"/"+r.Repo)
			}
			if err := cfg.Validate("cn-north-4"); err != nil {
				t.Fatal(err)
			}
			api := sdkwitness.OurClient(t, sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)
			sdkwitness.Read(t, artifact.Streams(cfg, api, "cn-north-4", sdkwitness.ProjectID, start.Add(-time.Hour), time.Now), 20)
			ours := rec.Take()
			if len(ours) < 4 {
				t.Fatalf("our streams sent %d requests, want several pages of each repository", len(ours))
			}

			//lint:ignore SA1019 the witness builds the client as the SDK's own examples do
			client := artifactsdk.NewCodeArtsArtifactClient(artifactsdk.CodeArtsArtifactClientBuilder().
				WithEndpoints([]string{rec.URL}).
				WithCredential(sdkwitness.Credentials(sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)).
				WithHttpConfig(sdkwitness.HTTPConfig()).
				Build())
			byPath := map[string]simulator.ArtifactRepo{}
			for _, r := range repos {
				byPath["/cloudartifact/v5/"+tenant+"/"+sdkwitness.ProjectID+"/"+r.Module+"/"+r.Repo+"/audit"] = r
			}
			records := 0
			for _, o := range ours {
				repo, ok := byPath[o.Path]
				if !ok {
					t.Fatalf("our request %s names no configured repository", o)
				}
				req := &model.ShowAuditRequest{
					TenantId:  tenant,
					ProjectId: sdkwitness.ProjectID,
					Module:    repo.Module,
					Repo:      repo.Repo,
					PageNum:   witnessInt32(t, o, "page_num"),
					PageSize:  witnessInt32(t, o, "page_size"),
				}
				resp, err := client.ShowAudit(req)
				sdk := rec.TakeMatching(t, o, err)
				if err != nil {
					t.Fatalf("the SDK could not read the simulator's answer to %s: %v", sdk, err)
				}
				// An odd record's unknown x_… members are the simulator's.
				sdkwitness.CheckAnswer(t, sdk, new(model.ShowAuditResponse), func(p sdkwitness.Problem) bool { return odd > 0 && sdkwitness.SimulatorExtra(p) })
				// The SDK's status enum takes any JSON value; the documents list
				// two.
				if resp.Status == nil || (resp.Status.Value() != "success" && resp.Status.Value() != "error") {
					t.Errorf("status %v is not one of the documented success, error", resp.Status)
				}
				if resp.Result == nil || resp.Result.Total == nil || resp.Result.AuditInfoList == nil {
					t.Fatalf("SDK decoded no result.total or result.auditInfoList from %s", sdk.Response)
				}
				for _, l := range *resp.Result.AuditInfoList {
					if l.Id == nil || l.Time == nil {
						t.Errorf("SDK decoded a record without id or time: %v", l)
					}
				}
				records += len(*resp.Result.AuditInfoList)
			}
			t.Logf("compared %d requests; the SDK decoded %d records of the simulator", len(ours), records)
		})
	}
}

// witnessInt32 reads query parameter name of our request as the SDK's
// *int32; a missing or non-integer value fails the test.
func witnessInt32(t *testing.T, r sdkwitness.Request, name string) *int32 {
	t.Helper()
	v, err := strconv.ParseInt(r.Query.Get(name), 10, 32)
	if err != nil {
		t.Fatalf("our request %s: %s: %v", r, name, err)
	}
	n := int32(v)
	return &n
}
