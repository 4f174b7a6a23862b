// Package dbss reads the user operation logs of Database Security Service
// (DBSS) instances: POST /v1/{project_id}/audit/{instance_id}/operation-log,
// falling back to the documented /v1/{project_id}/{instance_id}/dbss/audit/operate-log
// where the current path cannot serve the request (400, 403, 404, 405, 501). One stream per instance, delivered
// oldest first through the shared time-window reader (sources/window).
package dbss

import (
	"fmt"

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
}

// Validate reports the first invalid setting, naming its variable.
func (c *Config) Validate(region string) error {
	for _, id := range c.Instances {
		if !huaweiapi.ValidID(id) {
			return fmt.Errorf("HWCAUDIT_DBSS_INSTANCES: %q is not an instance id (1 to 128 letters, digits, '-' and '_')", id)
		}
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
