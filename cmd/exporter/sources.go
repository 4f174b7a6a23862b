package main

import (
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/artifact"
	"github.com/hwcaudit/hwcaudit/sources/cts"
	"github.com/hwcaudit/hwcaudit/sources/dbss"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/swr"
	"github.com/hwcaudit/hwcaudit/sources/taurusdb"
)

// The audit sources the exporter reads. Adding one is a package under
// sources/ and this file: its Config in SourcesConfig and its row in
// sourceTable (its variables reach `exporter help` through go generate:
// help_gen.go, which a test checks).
// run, backfill, check and demo all take their sources from here.

// SourcesConfig is every source's configuration; Config embeds it, so
// the fields read as cfg.SWR and so on.
type SourcesConfig struct {
	SWR      swr.Config
	Artifact artifact.Config
	TaurusDB taurusdb.Config
	DBSS     dbss.Config
	// CTS reads Cloud Trace Service traces of HWCAUDIT_PROJECT_ID.
	CTS cts.Config
}

// source wires one audit API.
type source struct {
	// name is the source in --sources and the first part of its streams'
	// keys.
	name string
	// dataset is the event.dataset of its events (the file sink's
	// directory).
	dataset string
	// moreDatasets are the other event.datasets its streams may write.
	moreDatasets []string
	// configured reports whether any stream is to be read.
	configured func(c *Config) bool
	// variable names what to set to read the source, for the error when
	// no source is configured; "" for a source that another one's
	// variable switches on.
	variable string
	// validate checks the source's settings, naming the variable at fault.
	validate func(c *Config) error
	// endpoint is the variable that overrides the source's API endpoint,
	// and the configured value ("" when none), which the exporter refuses
	// as plain http:// off loopback. Nil for a source that reads through
	// another's endpoint.
	endpoint func(c *Config) (variable, url string)
	// streams builds the source's streams on api; now is the clock.
	streams func(c *Config, api huaweiapi.Doer, now func() time.Time) []rangedStream
}

var sourceTable = []source{
	{
		name: "swr", dataset: swr.Dataset, variable: "HWCAUDIT_SWR_INSTANCES",
		configured: func(c *Config) bool { return len(c.SWR.Instances) > 0 },
		validate:   func(c *Config) error { return c.SWR.Validate(c.Region) },
		endpoint:   func(c *Config) (string, string) { return "HWCAUDIT_SWR_ENDPOINT", c.SWR.Endpoint },
		streams: func(c *Config, api huaweiapi.Doer, now func() time.Time) []rangedStream {
			return ranged(swr.Streams(c.SWR, api, c.Region, c.API.ProjectID, c.start, now))
		},
	},
	{
		name: "artifact", dataset: artifact.Dataset, variable: "HWCAUDIT_ARTIFACT_REPOS",
		configured: func(c *Config) bool { return len(c.Artifact.Repos) > 0 },
		validate:   func(c *Config) error { return c.Artifact.Validate(c.Region) },
		endpoint:   func(c *Config) (string, string) { return "HWCAUDIT_ARTIFACT_ENDPOINT", c.Artifact.Endpoint },
		streams: func(c *Config, api huaweiapi.Doer, now func() time.Time) []rangedStream {
			return ranged(artifact.Streams(c.Artifact, api, c.Region, c.API.ProjectID, c.start, now))
		},
	},
	{
		name: "taurusdb", dataset: taurusdb.Dataset, variable: "HWCAUDIT_GAUSSDB_INSTANCES",
		configured: func(c *Config) bool { return len(c.TaurusDB.Instances) > 0 },
		validate:   func(c *Config) error { return c.TaurusDB.Validate(c.Region) },
		endpoint:   func(c *Config) (string, string) { return "HWCAUDIT_GAUSSDB_ENDPOINT", c.TaurusDB.Endpoint },
		streams: func(c *Config, api huaweiapi.Doer, now func() time.Time) []rangedStream {
			return ranged(taurusdb.Streams(c.TaurusDB, c.Window, api, c.Region, c.API.ProjectID, c.start, now))
		},
	},
	{
		// The SQL statements inside TaurusDB audit log files: one stream
		// per instance beside its files stream, off unless
		// HWCAUDIT_GAUSSDB_SQL is set. Its settings are taurusdb.Config's,
		// which the taurusdb row validates; it names no variable of its
		// own for "no source is configured" (it needs the instances).
		name: "taurusdb_sql", dataset: taurusdb.SQLDataset,
		configured: func(c *Config) bool { return c.TaurusDB.SQL && len(c.TaurusDB.Instances) > 0 },
		validate:   func(*Config) error { return nil },
		streams: func(c *Config, api huaweiapi.Doer, now func() time.Time) []rangedStream {
			return ranged(taurusdb.NewSQLStreams(c.TaurusDB, api, nil, c.Region, c.API.ProjectID,
				taurusdb.Options{Window: c.Window, Start: c.start, Now: now}))
		},
	},
	{
		name: "dbss", dataset: dbss.Dataset, moreDatasets: []string{dbss.DatasetSQL, dbss.DatasetAlarm}, variable: "HWCAUDIT_DBSS_INSTANCES",
		configured: func(c *Config) bool { return len(c.DBSS.Instances) > 0 },
		validate:   func(c *Config) error { return c.DBSS.Validate(c.Region) },
		endpoint:   func(c *Config) (string, string) { return "HWCAUDIT_DBSS_ENDPOINT", c.DBSS.Endpoint },
		streams: func(c *Config, api huaweiapi.Doer, now func() time.Time) []rangedStream {
			return ranged(dbss.Streams(c.DBSS, c.Window, api, c.Region, c.API.ProjectID, c.start, now))
		},
	},
	{
		name: "cts", dataset: cts.Dataset, variable: "HWCAUDIT_CTS_ENABLED",
		configured: func(c *Config) bool { return c.CTS.Configured() },
		validate:   func(c *Config) error { return c.CTS.Validate(c.Region, c.API.ProjectID) },
		endpoint:   func(c *Config) (string, string) { return "HWCAUDIT_CTS_ENDPOINT", c.CTS.Endpoint },
		streams: func(c *Config, api huaweiapi.Doer, now func() time.Time) []rangedStream {
			return ranged(cts.Streams(c.CTS, c.Window, api, c.Region, c.API.ProjectID, c.start, now))
		},
	},
}

// ranged is streams as the exporter handles them.
func ranged[S rangedStream](streams []S) []rangedStream {
	out := make([]rangedStream, len(streams))
	for i, s := range streams {
		out[i] = s
	}
	return out
}

// allStreams is every configured source's streams, in table order.
func allStreams(c *Config, api huaweiapi.Doer, now func() time.Time) []rangedStream {
	var out []rangedStream
	for _, src := range sourceTable {
		out = append(out, src.streams(c, api, now)...)
	}
	return out
}

// sourceNames are the names --sources accepts.
func sourceNames() []string {
	names := make([]string, len(sourceTable))
	for i, src := range sourceTable {
		names[i] = src.name
	}
	return names
}

// sourceVariables joins what to set to read any source.
func sourceVariables() string {
	var v []string
	for _, src := range sourceTable {
		if src.variable != "" {
			v = append(v, src.variable)
		}
	}
	return strings.Join(v, ", ")
}
