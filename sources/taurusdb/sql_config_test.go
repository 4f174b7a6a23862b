package taurusdb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

func TestSQLConfigValidate(t *testing.T) {
	ok := Config{Instances: []string{simIns}, Endpoint: "https://gaussdb.example.com", PageSize: 100, SQL: true,
		SQLMaxRecordBytes: 1 << 20, SQLPageRecords: 1000, SQLReadTimeout: time.Minute, SQLColumns: SQLFields}
	if err := ok.Validate("cn-north-4"); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		variable string
		edit     func(*Config)
	}{
		{"HWCAUDIT_GAUSSDB_SQL_MAX_RECORD_BYTES", func(c *Config) { c.SQLMaxRecordBytes = 100 }},
		{"HWCAUDIT_GAUSSDB_SQL_MAX_RECORD_BYTES", func(c *Config) { c.SQLMaxRecordBytes = 65<<20 + 1 }},
		{"HWCAUDIT_GAUSSDB_SQL_PAGE_RECORDS", func(c *Config) { c.SQLPageRecords = 0 }},
		{"HWCAUDIT_GAUSSDB_SQL_PAGE_RECORDS", func(c *Config) { c.SQLPageRecords = 100_001 }},
		{"HWCAUDIT_GAUSSDB_SQL_READ_TIMEOUT", func(c *Config) { c.SQLReadTimeout = time.Millisecond }},
		{"HWCAUDIT_GAUSSDB_SQL_COLUMNS", func(c *Config) { c.SQLColumns = []string{"record_id", "record_id"} }},
		{"HWCAUDIT_GAUSSDB_SQL_COLUMNS", func(c *Config) { c.SQLColumns = []string{"a", " b"} }},
		{"HWCAUDIT_GAUSSDB_SQL_COLUMNS", func(c *Config) { c.SQLColumns = []string{"a", "b"} }},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate("cn-north-4")
		if err == nil || !strings.HasPrefix(err.Error(), tc.variable+":") {
			t.Errorf("%+v: got %v, want an error naming %s", c, err, tc.variable)
		}
		// Off, the statement settings are not read.
		c.SQL = false
		if err := c.Validate("cn-north-4"); err != nil {
			t.Errorf("SQL off: %v", err)
		}
	}
	if s := NewSQLStreams(Config{Instances: []string{simIns}}, nil, nil, "cn-north-4", simProject, Options{}); s != nil {
		t.Errorf("SQL off gives %d streams", len(s))
	}
}

func TestSQLCursorRefusesGarbage(t *testing.T) {
	s := NewSQLStreams(Config{Instances: []string{simIns}, PageSize: 10, SQL: true}, nil, nil, "cn-north-4", simProject,
		Options{Window: window.Config{SettleDelay: time.Minute, MaxRecords: 100}, Now: time.Now})[0]
	if s.Key() != "taurusdb_sql/"+simIns {
		t.Errorf("key %s", s.Key())
	}
	for _, bad := range []string{`[]`, `{"files":{"through":"x"}}`, `{"file":{"id":"","records":1}}`, `{"file":{"id":"a","records":-1}}`, `{"file":{"id":"a","format":"xml"}}`} {
		_, err := s.Open(context.Background(), []byte(bad))
		if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), s.Key()) {
			t.Errorf("cursor %s: %v, want a permanent error naming the stream", bad, err)
		}
	}
	good := `{"files":{"through":"2025-06-01T00:00:00Z","lookback_s":3600},"done":[{"id":"x","t":1748736000}],"file":{"id":"y","records":5,"offset":900,"format":"csv-header","columns":["record_id","timestamp"]}}`
	if _, err := s.Open(context.Background(), []byte(good)); err != nil {
		t.Errorf("cursor %s: %v", good, err)
	}
}
