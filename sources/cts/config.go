// Package cts reads the traces of Cloud Trace Service (CTS), the audit
// trail of a Huawei Cloud project: GET /v3/{project_id}/traces, one stream
// per trace type (system: management traces; data: data traces of OBS),
// delivered oldest first through the shared time-window reader
// (sources/window) in its marker mode.
//
// The API keeps the traces of the last seven days only: a stream whose
// checkpoint or start time is older starts at the oldest trace still kept
// and logs a warning naming the stream and the time range that can
// no longer be read.
package cts

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// MaxPageSize is the largest "limit" the API accepts.
const MaxPageSize = 200

// Trace types the API lists.
const (
	TypeSystem = "system"
	TypeData   = "data"
)

// Config selects the trace types to read and how.
type Config struct {
	// Enabled reads the traces of the project the exporter signs for
	// (HWCAUDIT_PROJECT_ID). Default false.
	Enabled bool `env:"HWCAUDIT_CTS_ENABLED,default=false"`
	// TraceTypes are the trace types read, one stream each: system
	// (management traces) and/or data (data traces of OBS buckets that a
	// data tracker records). Default system.
	TraceTypes []string `env:"HWCAUDIT_CTS_TRACE_TYPES,default=system"`
	// Endpoint overrides the region's endpoint from the SDK's table,
	// https://cts.{region}.myhuaweicloud.com (eu-west-101:
	// https://cts.eu-west-101.myhuaweicloud.eu).
	Endpoint string `env:"HWCAUDIT_CTS_ENDPOINT"`
	// PageSize is the "limit" of a request, 1..200. Default 200. Lower it
	// when traces carry request and response bodies so large that 200 of
	// them pass HWCAUDIT_HTTP_MAX_BODY_BYTES.
	PageSize int `env:"HWCAUDIT_CTS_PAGE_SIZE,default=200"`
	// Lookback is how much earlier than its window each query starts.
	// The reader windows traces by record_time (when CTS recorded them);
	// if the API selects by time (when the operation happened) instead, a
	// trace is only listed in its window when the query reaches back to
	// its time: set it to the longest delay expected between the two. The
	// reader raises it when it sees a longer one. A trace recorded before
	// it happened by at most this much is keyed by its time (see keyOf).
	// 0..12h. Default 10m.
	Lookback time.Duration `env:"HWCAUDIT_CTS_LOOKBACK,default=10m"`
}

// Validate reports the first invalid setting, naming its variable.
// projectID is HWCAUDIT_PROJECT_ID, whose traces are read.
func (c *Config) Validate(region, projectID string) error {
	seen := map[string]bool{}
	for _, t := range c.TraceTypes {
		if t != TypeSystem && t != TypeData {
			return fmt.Errorf("HWCAUDIT_CTS_TRACE_TYPES: %q is not a trace type (system, data)", t)
		}
		if seen[t] {
			return fmt.Errorf("HWCAUDIT_CTS_TRACE_TYPES: %q is listed twice", t)
		}
		seen[t] = true
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		return fmt.Errorf("HWCAUDIT_CTS_PAGE_SIZE: must be 1..%d, got %d", MaxPageSize, c.PageSize)
	}
	if c.Lookback < 0 || c.Lookback > MaxSpan/2 {
		return fmt.Errorf("HWCAUDIT_CTS_LOOKBACK: must be 0..%s, got %s", MaxSpan/2, c.Lookback)
	}
	if !c.Enabled {
		return nil
	}
	if len(c.TraceTypes) == 0 {
		return fmt.Errorf("HWCAUDIT_CTS_TRACE_TYPES: name at least one trace type (system, data) when HWCAUDIT_CTS_ENABLED is true")
	}
	if projectID == "" {
		return fmt.Errorf("HWCAUDIT_PROJECT_ID: required to read Cloud Trace Service traces (HWCAUDIT_CTS_ENABLED)")
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("HWCAUDIT_CTS_ENDPOINT: want an http(s) URL such as https://cts.cn-north-4.myhuaweicloud.com, got %s", egress.RedactURL(c.Endpoint))
		}
	} else if region == "" {
		return fmt.Errorf("HWCAUDIT_REGION: required to build the CTS endpoint (or set HWCAUDIT_CTS_ENDPOINT)")
	}
	return nil
}

// Configured reports whether any stream is to be read.
func (c *Config) Configured() bool { return c.Enabled && len(c.TraceTypes) > 0 }

// endpoints are the regions whose CTS endpoint is not
// https://cts.{region}.myhuaweicloud.com, as the SDK's services/cts/v3/region
// table lists them (TestEndpointsMatchSDK compares every region).
var endpoints = map[string]string{
	"eu-west-101": "https://cts.eu-west-101.myhuaweicloud.eu",
}

// Endpoint returns the API base URL for region.
func (c *Config) endpoint(region string) string {
	if c.Endpoint != "" {
		return strings.TrimRight(c.Endpoint, "/")
	}
	return Endpoint(region)
}

// Endpoint is the CTS endpoint of region, from the SDK's region table.
func Endpoint(region string) string {
	if e, ok := endpoints[region]; ok {
		return e
	}
	return "https://cts." + region + ".myhuaweicloud.com"
}

// types returns the configured trace types, in the documented order.
func (c *Config) types() []string {
	var out []string
	for _, t := range []string{TypeSystem, TypeData} {
		if slices.Contains(c.TraceTypes, t) {
			out = append(out, t)
		}
	}
	return out
}
