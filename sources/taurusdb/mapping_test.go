package taurusdb

import (
	"context"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

const (
	goldenInstance = "3d39c18788b54a919bab633874c159dfin07"
	goldenProject  = "054e292c9880d4992f02c0196d3ea468"
	goldenRegion   = "cn-north-4"
)

var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

func fixedNow() time.Time { return goldenNow }

func goldenStream() *Stream { return goldenStreamOf(nil, time.Time{}) }

// goldenStreamOf is the golden stream reading api from start.
func goldenStreamOf(api huaweiapi.Doer, start time.Time) *Stream {
	cfg := Config{Instances: []string{goldenInstance}, PageSize: 100}
	return Streams(cfg, window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 5000}, api, goldenRegion, goldenProject, start, fixedNow)[0]
}

// pageRecords splits a page file into its raw records, as the reader does.
var pageRecords = windowtest.PageRecords(decodePage)

func TestMapGolden(t *testing.T) {
	ecstest.MapGolden(t, Dataset, pageRecords, goldenStream().Map)
}

func TestMapFields(t *testing.T) {
	s := goldenStream()
	tests := []struct {
		raw  string
		want map[string]any
	}{
		{`{"id":"x","name":"n","size":20481.835938,"begin_time":"2019-11-06T09:03:34+0800","end_time":"2019-11-06T10:39:15+0800"}`,
			map[string]any{"@timestamp": "2019-11-06T02:39:15.000Z", "event.start": "2019-11-06T01:03:34.000Z", "event.end": "2019-11-06T02:39:15.000Z",
				"file.size": 20973400.0, "file.name": "n", "huaweicloud.taurusdb.size_kb": 20481.835938,
				"event.category": []any{"database", "file"}, "event.type": []any{"info"}}},
		{`{"id":"x","end_time":"2019-12-31T23:30:00-0500"}`, map[string]any{"@timestamp": "2020-01-01T04:30:00.000Z"}},
		{`{"id":"x","begin_time":"2019-12-31T23:30:00Z"}`, map[string]any{"@timestamp": "2019-12-31T23:30:00.000Z"}},
		{`{"id":7,"end_time":"2019-12-31T23:30:00Z","size":"1"}`, map[string]any{"huaweicloud.taurusdb.audit_log_id": "7", "file.size": 1024.0}},
	}
	for _, tt := range tests {
		var ev pipeline.Event
		if err := s.Map([]byte(tt.raw), &ev); err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		ecstest.CheckDoc(t, []byte(tt.raw), &ev, Dataset)
		ecstest.CheckFields(t, tt.raw, ev.Doc, tt.want, nil)
	}
	for _, bad := range []string{`{}`, `{"id":null,"end_time":"2019-12-31T23:30:00Z"}`, `{"id":"x"}`, `{"id":"x","end_time":"bad"}`, `[]`, ``} {
		var ev pipeline.Event
		if err := s.Map([]byte(bad), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		}
	}
}

func FuzzMap(f *testing.F) {
	ecstest.FuzzMap(f, Dataset, pageRecords, goldenStream().Map, []byte(`{"id":"1","end_time":"0000-01-01T00:00:00+2359"}`))
}

type bodyDoer struct{ body []byte }

func (d bodyDoer) Do(context.Context, huaweiapi.Request) ([]byte, error) { return d.body, nil }

func FuzzDecodePage(f *testing.F) {
	// A reader served the body forever, from an hour before goldenNow.
	serve := func(body []byte) pipeline.Stream { return goldenStreamOf(bodyDoer{body}, goldenNow.Add(-time.Hour)) }
	windowtest.FuzzDecodePage(f, decodePage, serve, `{"audit_logs":[],"total_count":0}`, `{"audit_logs":null,"total_count":5}`, `{"total_count":-1}`, `{}`, `<html>`)
}
