// Package taurusdb reads the audit log files of TaurusDB (GaussDB for MySQL)
// instances: GET /v3/{project_id}/instances/{instance_id}/audit-logs, one
// stream per instance, one event per audit log file, delivered oldest first
// through the shared time-window reader (sources/window).
package taurusdb

import (
	"fmt"
	"regexp"
	"time"

	gaussdbregion "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/gaussdb/v3/region"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// MaxPageSize is the API's upper bound for "limit".
const MaxPageSize = 100

// Config selects the TaurusDB instances to read.
type Config struct {
	// Instances are the TaurusDB instance ids. Empty: TaurusDB is not read.
	Instances []string `env:"HWCAUDIT_GAUSSDB_INSTANCES"`
	// Endpoint overrides the region's GaussDB for MySQL endpoint, which the
	// Huawei Cloud SDK's table gives (gaussdb/v3/region), e.g.
	// https://gaussdb.cn-north-4.myhuaweicloud.com. Required in regions the
	// table does not list.
	Endpoint string `env:"HWCAUDIT_GAUSSDB_ENDPOINT"`
	// PageSize is the "limit" of a request, 1..100. Default 100.
	PageSize int `env:"HWCAUDIT_GAUSSDB_PAGE_SIZE,default=100"`
	// Lookback is how far before each window a query starts, so that a
	// file is found whichever of its times the API filters on (the
	// documents do not say): at least the longest span of an audit log
	// file, end_time − begin_time. A longer span seen while reading raises
	// it for the stream. Each query lists the files of this much more
	// time, so a much longer value than the files need costs requests.
	// Default 24h.
	Lookback time.Duration `env:"HWCAUDIT_GAUSSDB_LOOKBACK,default=24h"`
}

// instanceRE is the documented shape of a TaurusDB instance id: 36
// letters or digits, the last four "in07".
var instanceRE = regexp.MustCompile(`^[A-Za-z0-9]{32}in07$`)

// Validate reports the first invalid setting, naming its variable.
func (c *Config) Validate(region string) error {
	for _, id := range c.Instances {
		if !instanceRE.MatchString(id) {
			return fmt.Errorf("HWCAUDIT_GAUSSDB_INSTANCES: %q is not an instance id (36 letters or digits ending in in07)", id)
		}
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		return fmt.Errorf("HWCAUDIT_GAUSSDB_PAGE_SIZE: must be 1..%d, got %d", MaxPageSize, c.PageSize)
	}
	if c.Lookback < 0 || c.Lookback > MaxSpan/2 {
		return fmt.Errorf("HWCAUDIT_GAUSSDB_LOOKBACK: must be 0..%s, got %s", MaxSpan/2, c.Lookback)
	}
	if len(c.Instances) == 0 {
		return nil
	}
	_, err := endpoints.Resolve(c.Endpoint, region)
	return err
}

// endpoints finds the TaurusDB API, which is GaussDB for MySQL's:
// HWCAUDIT_GAUSSDB_ENDPOINT or the SDK's table.
var endpoints = huaweiapi.ServiceEndpoint{Service: "TaurusDB", Variable: "HWCAUDIT_GAUSSDB_ENDPOINT", Regions: gaussdbregion.SafeValueOf}

// endpoint returns the API base URL for region; Validate reported any
// reason it has none.
func (c *Config) endpoint(region string) string {
	ep, _ := endpoints.Resolve(c.Endpoint, region)
	return ep
}
