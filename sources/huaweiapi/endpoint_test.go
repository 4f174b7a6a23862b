package huaweiapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/region"
	swrregion "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/swr/v2/region"
)

// fakeTable is a region table of two regions, one with a bad endpoint.
func fakeTable(id string) (*region.Region, error) {
	switch id {
	case "cn-north-4":
		return region.NewRegion(id, "https://svc.cn-north-4.example.com/", "https://svc.cn-north-4.example.cn"), nil
	case "broken-1":
		return region.NewRegion(id, "svc.broken-1.example.com"), nil
	case "empty-1":
		return region.NewRegion(id), nil
	}
	return nil, errors.New("region id '" + id + "' is not in the following supported regions of service 'SVC': [cn-north-4]")
}

func TestServiceEndpointResolve(t *testing.T) {
	e := ServiceEndpoint{Service: "Svc", Variable: "HWCAUDIT_SVC_ENDPOINT", Regions: fakeTable}
	tests := []struct {
		name, override, region string
		want                   string // the endpoint, or the variable the error starts with
		wantErr                bool
		mention                []string
	}{
		{name: "table, first endpoint, no trailing slash", region: "cn-north-4", want: "https://svc.cn-north-4.example.com"},
		{name: "override wins over the table", override: "https://proxy.example/api/", region: "cn-north-4", want: "https://proxy.example/api"},
		{name: "override serves an unknown region", override: "http://127.0.0.1:8080", region: "xx-nowhere-1", want: "http://127.0.0.1:8080"},
		{name: "override needs no region", override: "https://proxy.example", want: "https://proxy.example"},
		{name: "unknown region", region: "xx-nowhere-1", wantErr: true, want: "HWCAUDIT_SVC_ENDPOINT",
			mention: []string{`"xx-nowhere-1"`, "https://svc.cn-north-4.example.com/"}},
		{name: "no region", wantErr: true, want: "HWCAUDIT_REGION", mention: []string{"HWCAUDIT_SVC_ENDPOINT"}},
		{name: "override without scheme", override: "svc.example.com", region: "cn-north-4", wantErr: true, want: "HWCAUDIT_SVC_ENDPOINT"},
		{name: "override with another scheme", override: "ftp://svc.example.com", region: "cn-north-4", wantErr: true, want: "HWCAUDIT_SVC_ENDPOINT"},
		{name: "override password is not echoed", override: "https://u:hunter2@/", region: "cn-north-4", wantErr: true, want: "HWCAUDIT_SVC_ENDPOINT"},
		{name: "table entry that is not a URL", region: "broken-1", wantErr: true, want: "HWCAUDIT_SVC_ENDPOINT", mention: []string{"HUAWEICLOUD_SDK_REGION_"}},
		{name: "table entry without endpoints", region: "empty-1", wantErr: true, want: "HWCAUDIT_SVC_ENDPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Resolve(tt.override, tt.region)
			if !tt.wantErr {
				if err != nil || got != tt.want {
					t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %q, want an error naming %s", got, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want+": ") {
				t.Errorf("error %q does not start with %s", err, tt.want)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// The SDK's lookup honours its own per-region variable before its table;
// Resolve passes that on, and an override still wins over it.
func TestServiceEndpointSDKOverride(t *testing.T) {
	e := ServiceEndpoint{Service: "SWR", Variable: "HWCAUDIT_SWR_ENDPOINT", Regions: swrregion.SafeValueOf}
	// A region id no table lists, so the SDK's process-wide cache of this
	// variable cannot change what other tests see.
	t.Setenv("HUAWEICLOUD_SDK_REGION_SWR_XX_HWCAUDIT_TEST_1", "https://swr.mirror.example")
	if got, err := e.Resolve("", "xx-hwcaudit-test-1"); err != nil || got != "https://swr.mirror.example" {
		t.Errorf("with the SDK's variable: %q, %v", got, err)
	}
	if got, err := e.Resolve("https://mine.example", "xx-hwcaudit-test-1"); err != nil || got != "https://mine.example" {
		t.Errorf("override beside the SDK's variable: %q, %v", got, err)
	}
}
