package huaweiapi

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/region"

	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// RegionTable looks a region up in one service's region table of the
// Huawei Cloud SDK: the SafeValueOf function of a
// services/<service>/<version>/region package, e.g. swr/v2/region.SafeValueOf.
//
// Host names are not one pattern across services and regions
// (swr-api.eu-west-101.myhuaweicloud.eu, gaussdbformysql.ap-southeast-1…,
// artifact.cn-south-1…), so they are taken from the table the SDK ships
// rather than built from a format string. The SDK consults its own
// overrides first: the variable HUAWEICLOUD_SDK_REGION_<SERVICE>_<REGION>
// and the file ~/.huaweicloud/regions.yaml (or HUAWEICLOUD_SDK_REGIONS_FILE).
type RegionTable func(id string) (*region.Region, error)

// ServiceEndpoint says where one service's API is reached: an override
// variable when it is set, else the SDK's region table.
type ServiceEndpoint struct {
	// Service names the service in messages, e.g. "SWR".
	Service string
	// Variable is the environment variable that overrides the endpoint,
	// e.g. "HWCAUDIT_SWR_ENDPOINT"; messages name it.
	Variable string
	// Regions is the service's SDK region table.
	Regions RegionTable
}

// exampleRegion is the region whose endpoint messages show as an example:
// every region table the exporter uses lists it.
const exampleRegion = "cn-north-4"

// Resolve returns the API base URL of the service in regionID, without a
// trailing slash. A non-empty override wins and must be an http(s) URL with
// a host. Otherwise the SDK's table decides, and its first endpoint is
// used, as the SDK's own clients do. Errors name the variable to set:
// HWCAUDIT_REGION when regionID is empty, Variable when the override is
// malformed or the table does not list regionID.
func (e ServiceEndpoint) Resolve(override, regionID string) (string, error) {
	if override != "" {
		if !httpURL(override) {
			return "", fmt.Errorf("%s: want an http(s) URL such as %s, got %s", e.Variable, e.example(), egress.RedactURL(override))
		}
		return strings.TrimRight(override, "/"), nil
	}
	if regionID == "" {
		return "", fmt.Errorf("HWCAUDIT_REGION: required to find the %s endpoint (or set %s)", e.Service, e.Variable)
	}
	r, err := e.Regions(regionID)
	if err != nil || r == nil || len(r.Endpoints) == 0 {
		// err lists every region the SDK knows: too long to repeat.
		return "", fmt.Errorf("%s: the Huawei Cloud SDK lists no %s endpoint for region %q; set %s to that region's endpoint (in %s it is %s)", e.Variable, e.Service, regionID, e.Variable, exampleRegion, e.example())
	}
	ep := r.Endpoints[0]
	if !httpURL(ep) {
		// Only the SDK's own overrides can produce this.
		return "", fmt.Errorf("%s: the Huawei Cloud SDK gives %s in %q the endpoint %s, which is not an http(s) URL (check HUAWEICLOUD_SDK_REGION_* and the SDK's regions file), or set %s", e.Variable, e.Service, regionID, egress.RedactURL(ep), e.Variable)
	}
	return strings.TrimRight(ep, "/"), nil
}

// example is the service's endpoint in exampleRegion, for messages.
func (e ServiceEndpoint) example() string {
	if r, err := e.Regions(exampleRegion); err == nil && r != nil && len(r.Endpoints) > 0 {
		return r.Endpoints[0]
	}
	return "https://HOST"
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
