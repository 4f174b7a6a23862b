package dbss

import (
	"slices"
	"strings"
	"testing"
)

// TestConfigStreams: HWCAUDIT_DBSS_STREAMS names kinds in any order and
// case; streams come instance by instance, operation, sql, alarm; an
// unknown or repeated kind is an error naming the variable; nothing set
// is the operation logs alone, keyed as before the other kinds existed.
func TestConfigStreams(t *testing.T) {
	for _, tc := range []struct {
		streams  []string
		wantKeys []string
		err      string
	}{
		{nil, []string{"dbss/a", "dbss/b"}, ""},
		{[]string{""}, []string{"dbss/a", "dbss/b"}, ""},
		{[]string{"alarm", " SQL "}, []string{"dbss/a/sql", "dbss/a/alarm", "dbss/b/sql", "dbss/b/alarm"}, ""},
		{[]string{"operation", "sql", "alarm"}, []string{"dbss/a", "dbss/a/sql", "dbss/a/alarm", "dbss/b", "dbss/b/sql", "dbss/b/alarm"}, ""},
		{[]string{"sql", "audit"}, nil, `HWCAUDIT_DBSS_STREAMS: "audit" is not one of operation, sql, alarm`},
		{[]string{"sql", "sql"}, nil, `HWCAUDIT_DBSS_STREAMS: "sql" is listed twice`},
	} {
		cfg := Config{Instances: []string{"a", "b"}, PageSize: 100, Streams: tc.streams, Endpoint: "http://dbss.test"}
		err := cfg.Validate("")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %v, want %s", tc.streams, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.streams, err)
		}
		var keys []string
		for _, s := range NewStreams(cfg, nil, "r", "p", Options{}) {
			keys = append(keys, s.Key())
			if want := map[Kind]string{Operation: Dataset, SQL: DatasetSQL, Alarm: DatasetAlarm}[s.Kind()]; s.Dataset() != want {
				t.Errorf("%s: dataset %s, want %s", s.Key(), s.Dataset(), want)
			}
		}
		if !slices.Equal(keys, tc.wantKeys) {
			t.Errorf("%q: streams %v, want %v", tc.streams, keys, tc.wantKeys)
		}
	}
}
