package artifact

import (
	"strings"
	"testing"
)

// TestEndpointFromSDKRegions: the default endpoint is the Huawei Cloud SDK
// table's, not a pattern; a region it lacks needs HWCAUDIT_ARTIFACT_ENDPOINT, which
// then serves any region.
func TestEndpointFromSDKRegions(t *testing.T) {
	tests := []struct {
		region, override string
		want             string // the endpoint, or "" for an error naming HWCAUDIT_ARTIFACT_ENDPOINT
	}{
		{"cn-north-4", "", "https://cloudartifacts-ext.cn-north-4.myhuaweicloud.com"},
		{"cn-south-1", "", "https://artifact.cn-south-1.myhuaweicloud.com"},
		{"eu-west-101", "", ""},
		{"ap-southeast-1", "", ""},
		{"xx-nowhere-1", "", ""},
		{"xx-nowhere-1", "https://proxy.example/", "https://proxy.example"},
		{"eu-west-101", "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.region+" "+tt.override, func(t *testing.T) {
			c := Config{TenantID: "5a775fdcb14f4431b6c0015618140bc3", Repos: []string{"file/r1"}, Timezone: "+08:00", PageSize: 100}
			c.Endpoint = tt.override
			err := c.Validate(tt.region)
			if tt.want == "" {
				if err == nil || !strings.HasPrefix(err.Error(), "HWCAUDIT_ARTIFACT_ENDPOINT: ") || !strings.Contains(err.Error(), tt.region) {
					t.Fatalf("Validate = %v, want an error naming HWCAUDIT_ARTIFACT_ENDPOINT and %s", err, tt.region)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := c.endpoint(tt.region); got != tt.want {
				t.Errorf("endpoint = %s, want %s", got, tt.want)
			}
		})
	}
	c := Config{TenantID: "5a775fdcb14f4431b6c0015618140bc3", Repos: []string{"file/r1"}, Timezone: "+08:00", PageSize: 100}
	if err := c.Validate(""); err == nil || !strings.HasPrefix(err.Error(), "HWCAUDIT_REGION: ") || !strings.Contains(err.Error(), "HWCAUDIT_ARTIFACT_ENDPOINT") {
		t.Errorf("without a region: %v", err)
	}
}
