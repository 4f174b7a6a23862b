package artifact

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{TenantID: "5a775fdcb14f4431b6c0015618140bc3", Repos: []string{"file/r1", "repository/r2"}, Timezone: "+08:00", PageSize: 100}
	tests := []struct {
		name   string
		edit   func(c *Config)
		region string
		want   string // "" valid, else the variable the message must start with
	}{
		{"valid", func(*Config) {}, "cn-north-4", ""},
		{"valid artifact host", func(*Config) {}, "cn-south-1", ""},
		{"no repos needs nothing", func(c *Config) { c.Repos, c.TenantID = nil, "" }, "", ""},
		{"tenant too short", func(c *Config) { c.TenantID = "abc1234" }, "cn-north-4", "HWCAUDIT_ARTIFACT_TENANT_ID"},
		{"tenant too long", func(c *Config) { c.TenantID = strings.Repeat("a", 33) }, "cn-north-4", "HWCAUDIT_ARTIFACT_TENANT_ID"},
		{"tenant not alnum", func(c *Config) { c.TenantID = "abcd-1234" }, "cn-north-4", "HWCAUDIT_ARTIFACT_TENANT_ID"},
		{"tenant missing", func(c *Config) { c.TenantID = "" }, "cn-north-4", "HWCAUDIT_ARTIFACT_TENANT_ID"},
		{"repo without module", func(c *Config) { c.Repos = []string{"r1"} }, "cn-north-4", "HWCAUDIT_ARTIFACT_REPOS"},
		{"unknown module", func(c *Config) { c.Repos = []string{"files/r1"} }, "cn-north-4", "HWCAUDIT_ARTIFACT_REPOS"},
		{"empty repo", func(c *Config) { c.Repos = []string{"file/"} }, "cn-north-4", "HWCAUDIT_ARTIFACT_REPOS"},
		{"repo with slash", func(c *Config) { c.Repos = []string{"file/a/b"} }, "cn-north-4", "HWCAUDIT_ARTIFACT_REPOS"},
		{"bad zone", func(c *Config) { c.Timezone = "Asia/Shanghai" }, "cn-north-4", "HWCAUDIT_ARTIFACT_TIMEZONE"},
		{"zone out of range", func(c *Config) { c.Timezone = "+24:00" }, "cn-north-4", "HWCAUDIT_ARTIFACT_TIMEZONE"},
		{"negative zone", func(c *Config) { c.Timezone = "-05:30" }, "cn-north-4", ""},
		{"page size small", func(c *Config) { c.PageSize = 19 }, "cn-north-4", "HWCAUDIT_ARTIFACT_PAGE_SIZE"},
		{"page size large", func(c *Config) { c.PageSize = 101 }, "cn-north-4", "HWCAUDIT_ARTIFACT_PAGE_SIZE"},
		{"unknown region", func(*Config) {}, "xx-nowhere-1", "HWCAUDIT_ARTIFACT_ENDPOINT"},
		{"unknown region with endpoint", func(c *Config) { c.Endpoint = "https://artifact.example" }, "xx-nowhere-1", ""},
		{"bad endpoint", func(c *Config) { c.Endpoint = "artifact.example" }, "cn-north-4", "HWCAUDIT_ARTIFACT_ENDPOINT"},
		{"no region", func(*Config) {}, "", "HWCAUDIT_REGION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Repos = append([]string(nil), ok.Repos...)
			tt.edit(&c)
			err := c.Validate(tt.region)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want+":")):
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestCompareIDs(t *testing.T) {
	ids := []string{"0", "9", "10", "99", "100", "2271182", "99999999999999999999", "100000000000000000000"}
	for i := range ids {
		for j := range ids {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := compareIDs(ids[i], ids[j]); got != want {
				t.Errorf("compareIDs(%s, %s) = %d, want %d", ids[i], ids[j], got, want)
			}
		}
	}
	for in, want := range map[string]string{"000123": "123", "0": "0", "000": "0", "7": "7"} {
		if got, ok := normalizeID(in); !ok || got != want {
			t.Errorf("normalizeID(%q) = %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "-1", "1.5", "１２", "12a"} {
		if _, ok := normalizeID(bad); ok {
			t.Errorf("normalizeID(%q) accepted", bad)
		}
	}
}

func TestParseTimeZone(t *testing.T) {
	loc, _ := parseZone("+08:00")
	got, ok := parseTime("2023/10/27 15:46:19", loc)
	if !ok || !got.Equal(time.Date(2023, 10, 27, 7, 46, 19, 0, time.UTC)) || got.Location() != time.UTC {
		t.Fatalf("parseTime = %v, %v", got, ok)
	}
	loc, _ = parseZone("-05:30")
	if got, _ := parseTime("2023/10/27 15:46:19", loc); !got.Equal(time.Date(2023, 10, 27, 21, 16, 19, 0, time.UTC)) {
		t.Fatalf("in -05:30: %v", got)
	}
	if got, _ := parseTime("2023-10-27T15:46:19+01:00", loc); !got.Equal(time.Date(2023, 10, 27, 14, 46, 19, 0, time.UTC)) {
		t.Fatalf("a zoned time kept the configured zone: %v", got)
	}
}
