// Package taurusdb reads the audit log files of TaurusDB (GaussDB for MySQL)
// instances: GET /v3/{project_id}/instances/{instance_id}/audit-logs, one
// stream per instance, one event per audit log file, delivered oldest first
// through the shared time-window reader (sources/window).
package taurusdb

import (
	"fmt"
	"regexp"
	"strings"
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

	// SQL, when true, also reads the SQL statements inside each audit log
	// file: one stream per instance ("taurusdb_sql/{instance}"), one event
	// per statement (dataset huaweicloud.taurusdb_sql). Off by default:
	// each file is downloaded, and files reach 100 MB. Default false.
	SQL bool `env:"HWCAUDIT_GAUSSDB_SQL,default=false"`
	// SQLMaxRecordBytes caps one statement record of a file, 1 KiB..64
	// MiB: a longer record is dead-lettered with its first
	// SQLMaxRecordBytes bytes and the reason, never held whole. Default
	// 1048576 (1 MiB).
	SQLMaxRecordBytes int `env:"HWCAUDIT_GAUSSDB_SQL_MAX_RECORD_BYTES,default=1048576"`
	// SQLPageRecords caps the statements of one page, 1..100000: the
	// unit of delivery and checkpointing inside a file. Pages are also
	// cut at 4 MiB of records. Default 1000.
	SQLPageRecords int `env:"HWCAUDIT_GAUSSDB_SQL_PAGE_RECORDS,default=1000"`
	// SQLReadTimeout ends a file download that delivered no byte for this
	// long (and bounds the wait for its response headers); the next
	// attempt resumes where it stopped. 1s..1h. Default 1m.
	SQLReadTimeout time.Duration `env:"HWCAUDIT_GAUSSDB_SQL_READ_TIMEOUT,default=1m"`
	// SQLColumns is the column order of an audit log file in CSV without
	// a header row (a file with a header row names its own). Default: the
	// user guide's field order.
	SQLColumns []string `env:"HWCAUDIT_GAUSSDB_SQL_COLUMNS,default=record_id,connection_id,connection_status,name,timestamp,command_class,sqltext,user,host,external_user,ip,default_db"`
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
	if err := c.validateSQL(); err != nil {
		return err
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

// validateSQL checks the SQL statement settings when SQL is on.
func (c *Config) validateSQL() error {
	if !c.SQL {
		return nil
	}
	if c.SQLMaxRecordBytes < 1<<10 || c.SQLMaxRecordBytes > 64<<20 {
		return fmt.Errorf("HWCAUDIT_GAUSSDB_SQL_MAX_RECORD_BYTES: must be %d..%d, got %d", 1<<10, 64<<20, c.SQLMaxRecordBytes)
	}
	if c.SQLPageRecords < 1 || c.SQLPageRecords > 100_000 {
		return fmt.Errorf("HWCAUDIT_GAUSSDB_SQL_PAGE_RECORDS: must be 1..100000, got %d", c.SQLPageRecords)
	}
	if c.SQLReadTimeout < time.Second || c.SQLReadTimeout > time.Hour {
		return fmt.Errorf("HWCAUDIT_GAUSSDB_SQL_READ_TIMEOUT: must be 1s..1h, got %s", c.SQLReadTimeout)
	}
	seen := map[string]bool{}
	for _, col := range c.SQLColumns {
		if col == "" || strings.TrimSpace(col) != col || seen[col] {
			return fmt.Errorf("HWCAUDIT_GAUSSDB_SQL_COLUMNS: %q: want distinct non-empty column names, e.g. %s", col, strings.Join(SQLFields, ","))
		}
		seen[col] = true
	}
	if len(c.SQLColumns) > 0 && !seen["record_id"] && !seen["timestamp"] {
		return fmt.Errorf("HWCAUDIT_GAUSSDB_SQL_COLUMNS: names neither record_id nor timestamp; want the file's columns, e.g. %s", strings.Join(SQLFields, ","))
	}
	return nil
}

// columns is the column order of a CSV file without a header row.
func (c *Config) columns() []string {
	if len(c.SQLColumns) > 0 {
		return c.SQLColumns
	}
	return SQLFields
}
