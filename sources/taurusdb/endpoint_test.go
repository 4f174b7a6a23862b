package taurusdb

import (
	"strings"
	"testing"
	"time"
)

// TestEndpointFromSDKRegions: the default endpoint is the Huawei Cloud SDK
// table's, not a pattern; a region it lacks needs HWCAUDIT_GAUSSDB_ENDPOINT, which
// then serves any region.
func TestEndpointFromSDKRegions(t *testing.T) {
	tests := []struct {
		region, override string
		want             string // the endpoint, or "" for an error naming HWCAUDIT_GAUSSDB_ENDPOINT
	}{
		{"cn-north-4", "", "https://gaussdb.cn-north-4.myhuaweicloud.com"},
		{"eu-west-101", "", ""},
		{"ap-southeast-1", "", "https://gaussdbformysql.ap-southeast-1.myhuaweicloud.com"},
		{"xx-nowhere-1", "", ""},
		{"xx-nowhere-1", "https://proxy.example/", "https://proxy.example"},
		{"eu-west-101", "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.region+" "+tt.override, func(t *testing.T) {
			c := Config{Instances: []string{"0123456789abcdef0123456789abcdefin07"}, PageSize: 100, Lookback: 24 * time.Hour}
			c.Endpoint = tt.override
			err := c.Validate(tt.region)
			if tt.want == "" {
				if err == nil || !strings.HasPrefix(err.Error(), "HWCAUDIT_GAUSSDB_ENDPOINT: ") || !strings.Contains(err.Error(), tt.region) {
					t.Fatalf("Validate = %v, want an error naming HWCAUDIT_GAUSSDB_ENDPOINT and %s", err, tt.region)
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
	c := Config{Instances: []string{"0123456789abcdef0123456789abcdefin07"}, PageSize: 100, Lookback: 24 * time.Hour}
	if err := c.Validate(""); err == nil || !strings.HasPrefix(err.Error(), "HWCAUDIT_REGION: ") || !strings.Contains(err.Error(), "HWCAUDIT_GAUSSDB_ENDPOINT") {
		t.Errorf("without a region: %v", err)
	}
}
