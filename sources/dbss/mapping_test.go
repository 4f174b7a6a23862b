package dbss

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

const (
	goldenInstance = "dbss-ins-0001"
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
	rec := func(action, result, ip string) string {
		b, _ := json.Marshal(map[string]any{"id": "x", "user": "u", "time": "2021-04-22 06:40:52", "action": action, "result": result, "ip": ip})
		return string(b)
	}
	tests := []struct {
		raw    string
		want   map[string]any
		absent []string
	}{
		{rec("创建", "success", ""), map[string]any{"@timestamp": "2021-04-22T06:40:52.000Z", "event.category": "[configuration]", "event.action": "create", "event.type": "[creation]", "event.outcome": "success", "huaweicloud.dbss.action": "创建"}, []string{"source.ip"}},
		{rec("删除", "fail", ""), map[string]any{"event.action": "delete", "event.type": "[deletion]", "event.outcome": "failure"}, nil},
		{rec("更新", "", ""), map[string]any{"event.action": "update", "event.type": "[change]", "event.outcome": "unknown"}, nil},
		{rec("下载", "success", ""), map[string]any{"event.action": "download", "event.type": "[access]"}, nil},
		{rec("DOWNLOAD", "success", ""), map[string]any{"event.action": "download", "event.type": "[access]"}, nil},
		{rec("create", "success", "192.0.2.7"), map[string]any{"source.ip": "192.0.2.7", "related.ip": "[192.0.2.7]", "related.user": "[u]", "user.name": "u"}, nil},
		{rec("create", "success", "2001:DB8::1"), map[string]any{"source.ip": "2001:db8::1"}, nil},
		{rec("create", "success", "999.1.1.1"), map[string]any{"huaweicloud.dbss.ip": "999.1.1.1"}, []string{"source.ip", "related.ip"}},
		{`{"id":"x","time":1619073652000}`, map[string]any{"@timestamp": "2021-04-22T06:40:52.000Z", "event.type": "[info]"}, []string{"user.name", "event.action"}},
	}
	for _, tt := range tests {
		var ev pipeline.Event
		if err := s.Map([]byte(tt.raw), &ev); err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		ecstest.CheckDoc(t, []byte(tt.raw), &ev, Dataset)
		ecstest.CheckFields(t, tt.raw, ev.Doc, tt.want, tt.absent)
	}
	for _, bad := range []string{`{}`, `{"id":null,"time":"2021-04-22 06:40:52"}`, `{"id":"x"}`, `{"id":"x","time":"bad"}`, `[]`, ``} {
		var ev pipeline.Event
		if err := s.Map([]byte(bad), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		}
	}
}

func FuzzMap(f *testing.F) {
	ecstest.FuzzMap(f, Dataset, pageRecords, goldenStream().Map, []byte(`{"id":"1","time":"0000-01-01 00:00:00"}`))
}

type bodyDoer struct{ body []byte }

func (d bodyDoer) Do(context.Context, huaweiapi.Request) ([]byte, error) { return d.body, nil }

func FuzzDecodePage(f *testing.F) {
	// A reader served the body forever, from an hour before goldenNow.
	serve := func(body []byte) pipeline.Stream { return goldenStreamOf(bodyDoer{body}, goldenNow.Add(-time.Hour)) }
	windowtest.FuzzDecodePage(f, decodePage, serve, `{"operate_log":[],"total_num":0}`, `{"operate_log":null,"total_num":5}`, `{"total_num":-1}`, `{}`, `<html>`)
}
