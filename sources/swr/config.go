// Package swr reads the audit logs of SWR Enterprise (container registry)
// instances: GET /v2/{project_id}/instances/{instance_id}/audit-logs, one
// stream per instance and operation, delivered oldest first.
package swr

import (
	"fmt"
	"slices"
	"strings"

	swrregion "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/swr/v2/region"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/newestfirst"
)

// Operations the API accepts in its required "operation" parameter.
var knownOperations = []string{"pull", "create", "delete"}

// MaxPageSize is the API's upper bound for "limit". Below MinPageSize the
// reader could not always choose a page that overlaps what it delivered.
const (
	MaxPageSize = 100
	MinPageSize = newestfirst.MinPageSize
)

// Config selects the SWR instances to read.
type Config struct {
	// Instances are the SWR Enterprise instance ids. Empty: SWR is not read.
	Instances []string `env:"HWCAUDIT_SWR_INSTANCES"`
	// Operations are read as separate streams, because the API requires one
	// operation per request. Default pull,create,delete (all there are).
	Operations []string `env:"HWCAUDIT_SWR_OPERATIONS,default=pull,create,delete"`
	// Endpoint overrides the region's SWR endpoint, which the Huawei Cloud
	// SDK's table gives (swr/v2/region), e.g.
	// https://swr-api.cn-north-4.myhuaweicloud.com. Required in regions the
	// table does not list.
	Endpoint string `env:"HWCAUDIT_SWR_ENDPOINT"`
	// PageSize is the largest "limit" of a request, 20..100. Default 100.
	PageSize int `env:"HWCAUDIT_SWR_PAGE_SIZE,default=100"`
	// Concurrency is how many requests a stream keeps in flight while it
	// catches up; the exporter sets it from HWCAUDIT_CONCURRENCY. Default 1.
	Concurrency int
}

// Validate reports the first invalid setting, naming its variable.
func (c *Config) Validate(region string) error {
	for _, id := range c.Instances {
		if !huaweiapi.ValidID(id) {
			return fmt.Errorf("HWCAUDIT_SWR_INSTANCES: %q is not an instance id (1 to 128 letters, digits, '-' and '_')", id)
		}
	}
	if len(c.Operations) == 0 {
		return fmt.Errorf("HWCAUDIT_SWR_OPERATIONS: must name at least one of %s", strings.Join(knownOperations, ","))
	}
	for _, op := range c.Operations {
		if !slices.Contains(knownOperations, op) {
			return fmt.Errorf("HWCAUDIT_SWR_OPERATIONS: unknown operation %q (the API accepts %s)", op, strings.Join(knownOperations, ","))
		}
	}
	if c.PageSize < MinPageSize || c.PageSize > MaxPageSize {
		return fmt.Errorf("HWCAUDIT_SWR_PAGE_SIZE: must be %d..%d, got %d", MinPageSize, MaxPageSize, c.PageSize)
	}
	if len(c.Instances) == 0 {
		return nil
	}
	_, err := endpoints.Resolve(c.Endpoint, region)
	return err
}

// endpoints finds the SWR API: HWCAUDIT_SWR_ENDPOINT or the SDK's table.
var endpoints = huaweiapi.ServiceEndpoint{Service: "SWR", Variable: "HWCAUDIT_SWR_ENDPOINT", Regions: swrregion.SafeValueOf}

// endpoint returns the API base URL for region; Validate reported any
// reason it has none.
func (c *Config) endpoint(region string) string {
	ep, _ := endpoints.Resolve(c.Endpoint, region)
	return ep
}
