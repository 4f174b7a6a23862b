package taurusdb

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	gaussdb "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/gaussdb/v3"
	gaussmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/gaussdb/v3/model"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi/sdkwitness"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// TestSDKWitnessTaurusDBLinks sends the download link request through our
// SQL stream's code and the same request with the official SDK's
// GaussDBClient.ShowAuditLogDownloadLink, compares the two, and checks
// the simulator's answer against the SDK's response model; then the link
// is fetched the way the stream fetches it.
func TestSDKWitnessTaurusDBLinks(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	sim := simulator.New(simulator.Config{
		ProjectID:   sdkwitness.ProjectID,
		Credentials: []simulator.Credential{{AK: sdkwitness.AK, SK: sdkwitness.SK}},
		Seed:        5,
		TaurusDB: simulator.TaurusDBConfig{
			Instances: []string{witnessInstance},
			Files:     3,
			Start:     now.Add(-time.Hour),
			Interval:  time.Minute,
			SQL:       simulator.TaurusDBSQLConfig{Records: 4},
		},
	})
	rec := sdkwitness.NewRecorder(t, sim)
	cfg := Config{Instances: []string{witnessInstance}, Endpoint: rec.URL, PageSize: 10, SQL: true,
		SQLMaxRecordBytes: 4096, SQLPageRecords: 10, SQLReadTimeout: 10 * time.Second}
	if err := cfg.Validate("cn-north-4"); err != nil {
		t.Fatal(err)
	}
	api := sdkwitness.OurClient(t, sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)
	s := NewSQLStreams(cfg, api, nil, "cn-north-4", sdkwitness.ProjectID, Options{
		Window: window.Config{SettleDelay: time.Minute, MaxRecords: 100}, Now: time.Now})[0]
	files := sim.TaurusDBRecords(witnessInstance)
	for _, ids := range [][]string{{files[0].ID}, {files[0].ID, files[1].ID, files[2].ID}} {
		links, err := s.requestLinks(context.Background(), ids)
		if err != nil || len(links) != len(ids) {
			t.Fatalf("our request for %d ids: %v, %v", len(ids), links, err)
		}
		ours := rec.Take()
		if len(ours) != 1 {
			t.Fatalf("our stream sent %d requests: %v", len(ours), ours)
		}

		//lint:ignore SA1019 the witness builds the client as the SDK's own examples do
		client := gaussdb.NewGaussDBClient(gaussdb.GaussDBClientBuilder().
			WithEndpoints([]string{rec.URL}).
			WithCredential(sdkwitness.Credentials(sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)).
			WithHttpConfig(sdkwitness.HTTPConfig()).
			Build())
		resp, sdkErr := client.ShowAuditLogDownloadLink(&gaussmodel.ShowAuditLogDownloadLinkRequest{
			ContentType: "application/json",
			InstanceId:  witnessInstance,
			Body:        &gaussmodel.AuditLogDownloadLinkRequestBody{Ids: ids},
		})
		sdk := rec.TakeMatching(t, ours[0], sdkErr)
		if sdkErr != nil {
			t.Fatalf("the SDK could not read the simulator's answer to %s: %v", sdk, sdkErr)
		}
		sdkwitness.CheckAnswer(t, sdk, new(gaussmodel.ShowAuditLogDownloadLinkResponse), nil)
		if resp.Links == nil || len(*resp.Links) != len(ids) {
			t.Fatalf("SDK read %v links for %d ids", resp.Links, len(ids))
		}
		for i, l := range *resp.Links {
			if !strings.Contains(l, "/"+ids[i]+"?") {
				t.Errorf("link %d is not for id %s", i, ids[i])
			}
		}
		// The link works with a plain GET and nothing else.
		dl, status, err := s.get(context.Background(), links[0], &fileCursor{ID: ids[0]})
		if err != nil || status != 0 {
			t.Fatalf("download: HTTP %d, %v", status, err)
		}
		if err := (&sqlReader{s: s}).position(dl, &fileCursor{ID: ids[0]}); err != nil {
			t.Fatalf("download: %v", err)
		}
		n := 0
		for {
			if _, err := dl.file.next(); err != nil {
				break
			}
			n++
		}
		dl.close()
		if n != 4 {
			t.Errorf("the file held %d records, want 4", n)
		}
		gets := rec.Take()
		if len(gets) != 1 || gets[0].Method != http.MethodGet {
			t.Fatalf("download requests %v", gets)
		}
		for _, h := range []string{"Authorization", "X-Sdk-Date", "X-Auth-Token", "X-Project-Id", "Content-Type"} {
			if v := gets[0].Header.Get(h); v != "" {
				t.Errorf("the download sent %s: %s", h, v)
			}
		}
	}
	if st := sim.TaurusDBSQLStats(); st.CredentialLeaks != 0 {
		t.Errorf("a download carried credentials: %+v", st)
	}
}
