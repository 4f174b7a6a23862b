// Package dbss reads the audit logs of Database Security Service (DBSS)
// instances, up to three streams per instance, each delivered oldest first
// through the shared time-window reader (sources/window):
//
//   - operation: the users' operation logs, POST
//     /v1/{project_id}/audit/{instance_id}/operation-log, falling back to
//     /v1/{project_id}/{instance_id}/dbss/audit/operate-log;
//   - sql: the audited SQL statements, POST
//     /v2/{project_id}/audit/{instance_id}/sqls, falling back to
//     /v1/{project_id}/{instance_id}/audit/sqls;
//   - alarm: the alarm logs, POST
//     /v2/{project_id}/audit/{instance_id}/alarm-log, falling back to
//     /v1/{project_id}/{instance_id}/audit/alarm-log.
//
// The newer path is asked first; where it cannot serve the request (400,
// 403, 404, 405, 501) the older one is used, and remembered per stream.
package dbss

import (
	"fmt"
	"slices"
	"strings"

	dbssregion "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dbss/v1/region"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// MaxPageSize is the largest "size" the reader asks for.
const MaxPageSize = 100

// Config selects the DBSS instances to read.
type Config struct {
	// Instances are the DBSS instance ids. Empty: DBSS is not read.
	Instances []string `env:"HWCAUDIT_DBSS_INSTANCES"`
	// Endpoint overrides the region's DBSS endpoint, which the Huawei Cloud
	// SDK's table gives (dbss/v1/region), e.g.
	// https://dbss.cn-north-4.myhuaweicloud.com. Required in regions the
	// table does not list.
	Endpoint string `env:"HWCAUDIT_DBSS_ENDPOINT"`
	// PageSize is the "size" of a request, 1..100. Default 100.
	PageSize int `env:"HWCAUDIT_DBSS_PAGE_SIZE,default=100"`
	// Streams are the kinds of log read of every instance, any of
	// operation, sql and alarm. Default operation: the SQL audit can hold
	// orders of magnitude more records than the operation log, and each
	// kind needs its own permission, so the others are opted into.
	Streams []string `env:"HWCAUDIT_DBSS_STREAMS,default=operation"`
}

// Validate reports the first invalid setting, naming its variable.
func (c *Config) Validate(region string) error {
	for _, id := range c.Instances {
		if !huaweiapi.ValidID(id) {
			return fmt.Errorf("HWCAUDIT_DBSS_INSTANCES: %q is not an instance id (1 to 128 letters, digits, '-' and '_')", id)
		}
	}
	if _, err := c.kinds(); err != nil {
		return err
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		return fmt.Errorf("HWCAUDIT_DBSS_PAGE_SIZE: must be 1..%d, got %d", MaxPageSize, c.PageSize)
	}
	if len(c.Instances) == 0 {
		return nil
	}
	_, err := endpoints.Resolve(c.Endpoint, region)
	return err
}

// endpoints finds the DBSS API: HWCAUDIT_DBSS_ENDPOINT or the SDK's table.
var endpoints = huaweiapi.ServiceEndpoint{Service: "DBSS", Variable: "HWCAUDIT_DBSS_ENDPOINT", Regions: dbssregion.SafeValueOf}

// endpoint returns the API base URL for region; Validate reported any
// reason it has none.
func (c *Config) endpoint(region string) string {
	ep, _ := endpoints.Resolve(c.Endpoint, region)
	return ep
}

// kinds returns the kinds Streams names, in the order operation, sql,
// alarm; none named is operation alone.
func (c *Config) kinds() ([]Kind, error) {
	seen := map[Kind]bool{}
	for _, name := range c.Streams {
		k := Kind(strings.ToLower(strings.TrimSpace(name)))
		if k == "" {
			continue
		}
		if !slices.Contains(allKinds, k) {
			return nil, fmt.Errorf("HWCAUDIT_DBSS_STREAMS: %q is not one of operation, sql, alarm", name)
		}
		if seen[k] {
			return nil, fmt.Errorf("HWCAUDIT_DBSS_STREAMS: %q is listed twice", name)
		}
		seen[k] = true
	}
	if len(seen) == 0 {
		return []Kind{Operation}, nil
	}
	var out []Kind
	for _, k := range allKinds {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out, nil
}
