// Package artifact reads the audit logs of CodeArts Artifact repositories
// and file stores: GET /cloudartifact/v5/{tenant_id}/{project_id}/{module}/{repo}/audit,
// one stream per configured module/repo, delivered oldest first.
package artifact

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	artifactregion "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/codeartsartifact/v2/region"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/newestfirst"
)

// MaxPageSize is the API's upper bound for page_size. Below MinPageSize the
// reader could not always choose a page that overlaps what it delivered.
const (
	MaxPageSize = 100
	MinPageSize = newestfirst.MinPageSize
)

// Modules the API accepts in the {module} path segment.
const (
	ModuleFile       = "file"
	ModuleRepository = "repository"
)

// Config selects the CodeArts Artifact repositories to read.
type Config struct {
	// TenantID is the {tenant_id} of the API: 8 to 32 letters or digits.
	// Required when Repos is set.
	TenantID string `env:"HWCAUDIT_ARTIFACT_TENANT_ID"`
	// Repos are "module/repo" pairs, module "file" or "repository", e.g.
	// "file/cn-north-4_5a77…_maven_1_108". Empty: Artifact is not read.
	Repos []string `env:"HWCAUDIT_ARTIFACT_REPOS"`
	// Endpoint overrides the region's CodeArts Artifact endpoint, which the
	// Huawei Cloud SDK's table gives (codeartsartifact/v2/region), e.g.
	// https://cloudartifacts-ext.cn-north-4.myhuaweicloud.com. Required in
	// regions the table does not list.
	Endpoint string `env:"HWCAUDIT_ARTIFACT_ENDPOINT"`
	// Timezone is the UTC offset in which the API's zone-less "time" values
	// ("2023/10/27 15:46:19") are read, as ±HH:MM. Default +08:00 (China
	// Standard Time, the zone of the documented examples).
	Timezone string `env:"HWCAUDIT_ARTIFACT_TIMEZONE,default=+08:00"`
	// PageSize is the largest page_size of a request, 20..100. Default 100.
	PageSize int `env:"HWCAUDIT_ARTIFACT_PAGE_SIZE,default=100"`
	// Concurrency is how many requests a stream keeps in flight while it
	// catches up; the exporter sets it from HWCAUDIT_CONCURRENCY. Default 1.
	Concurrency int
}

var (
	tenantRE = regexp.MustCompile(`^[A-Za-z0-9]{8,32}$`)
	zoneRE   = regexp.MustCompile(`^[+-]([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// Validate reports the first invalid setting, naming its variable.
func (c *Config) Validate(region string) error {
	for _, r := range c.Repos {
		if _, _, err := splitRepo(r); err != nil {
			return fmt.Errorf("HWCAUDIT_ARTIFACT_REPOS: %w", err)
		}
	}
	if _, err := parseZone(c.Timezone); err != nil {
		return fmt.Errorf("HWCAUDIT_ARTIFACT_TIMEZONE: %w", err)
	}
	if c.PageSize < MinPageSize || c.PageSize > MaxPageSize {
		return fmt.Errorf("HWCAUDIT_ARTIFACT_PAGE_SIZE: must be %d..%d, got %d", MinPageSize, MaxPageSize, c.PageSize)
	}
	if len(c.Repos) == 0 {
		return nil
	}
	if !tenantRE.MatchString(c.TenantID) {
		return fmt.Errorf("HWCAUDIT_ARTIFACT_TENANT_ID: must be 8 to 32 letters or digits, got %q", c.TenantID)
	}
	_, err := endpoints.Resolve(c.Endpoint, region)
	return err
}

// endpoints finds the CodeArts Artifact API: HWCAUDIT_ARTIFACT_ENDPOINT or
// the SDK's table.
var endpoints = huaweiapi.ServiceEndpoint{Service: "CodeArts Artifact", Variable: "HWCAUDIT_ARTIFACT_ENDPOINT", Regions: artifactregion.SafeValueOf}

// splitRepo splits "module/repo".
func splitRepo(s string) (module, repo string, err error) {
	module, repo, ok := strings.Cut(s, "/")
	switch {
	case !ok:
		return "", "", fmt.Errorf("%q is not module/repo", s)
	case module != ModuleFile && module != ModuleRepository:
		return "", "", fmt.Errorf("%q: module must be %s or %s", s, ModuleFile, ModuleRepository)
	case !huaweiapi.ValidID(repo):
		return "", "", fmt.Errorf("%q: %q is not a repository id (1 to 128 letters, digits, '-' and '_')", s, repo)
	}
	return module, repo, nil
}

// parseZone reads a ±HH:MM offset.
func parseZone(s string) (*time.Location, error) {
	if !zoneRE.MatchString(s) {
		return nil, fmt.Errorf("want a UTC offset such as +08:00, got %q", s)
	}
	h := int(s[1]-'0')*10 + int(s[2]-'0')
	m := int(s[4]-'0')*10 + int(s[5]-'0')
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return time.FixedZone("UTC"+s, off), nil
}

// endpoint returns the API base URL for region; Validate reported any
// reason it has none.
func (c *Config) endpoint(region string) string {
	ep, _ := endpoints.Resolve(c.Endpoint, region)
	return ep
}
