package dbss

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

const (
	goldenInstance = "dbss-ins-0001"
	goldenProject  = "054e292c9880d4992f02c0196d3ea468"
	goldenRegion   = "cn-north-4"
)

var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

func fixedNow() time.Time { return goldenNow }

func goldenStream() *Stream {
	cfg := Config{Instances: []string{goldenInstance}, PageSize: 100}
	return Streams(cfg, window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 5000}, nil, goldenRegion, goldenProject, time.Time{}, fixedNow)[0]
}

func pageRecords(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := decodePage(data, "test", 0, 100)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Raw
	}
	return out
}

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
		{rec("创建", "success", ""), map[string]any{"@timestamp": "2021-04-22T06:40:52.000Z", "event.action": "create", "event.type": "[creation]", "event.outcome": "success", "huaweicloud.dbss.action": "创建"}, []string{"source.ip"}},
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
		f := ecstest.FlatDoc(t, ev.Doc)
		for k, v := range tt.want {
			if fmt.Sprint(f[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want %v", tt.raw, k, f[k], v)
			}
		}
		for _, k := range tt.absent {
			if v, ok := f[k]; ok {
				t.Errorf("%s: %s = %v, want it absent", tt.raw, k, v)
			}
		}
	}
	for _, bad := range []string{`{}`, `{"id":null,"time":"2021-04-22 06:40:52"}`, `{"id":"x"}`, `{"id":"x","time":"bad"}`, `[]`, ``} {
		var ev pipeline.Event
		if err := s.Map([]byte(bad), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		}
	}
}

func TestMapECSFieldNames(t *testing.T) {
	ecs := ecstest.LoadECS(t)
	s := goldenStream()
	for _, page := range ecstest.PageFiles(t) {
		for _, raw := range pageRecords(t, page) {
			var ev pipeline.Event
			if s.Map(raw, &ev) == nil {
				ecs.Check(t, ev.Doc)
			}
		}
	}
}

func FuzzMap(f *testing.F) {
	for _, p := range ecstest.PageFiles(f) {
		for _, raw := range pageRecords(f, p) {
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"id":"1","time":"0000-01-01 00:00:00"}`))
	s := goldenStream()
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			return
		}
		if !json.Valid(ev.Doc) {
			t.Fatalf("invalid JSON for %q: %s", raw, ev.Doc)
		}
		ecstest.CheckDoc(t, raw, &ev, Dataset)
	})
}

type bodyDoer struct{ body []byte }

func (d bodyDoer) Do(context.Context, huaweiapi.Request) ([]byte, error) { return d.body, nil }

func FuzzDecodePage(f *testing.F) {
	for _, p := range ecstest.PageFiles(f) {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	for _, b := range []string{`{"operate_log":[],"total_num":0}`, `{"operate_log":null,"total_num":5}`, `{"total_num":-1}`, `{}`, `<html>`} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, total, err := decodePage(body, "i", 0, 100)
		if err != nil {
			if !pipeline.IsPermanent(err) {
				t.Fatalf("retryable error for a bad body: %v", err)
			}
			return
		}
		if len(recs) > 100 || total < 0 {
			t.Fatalf("%d records, total %d", len(recs), total)
		}
		// A reader served this body forever must neither panic nor loop.
		s := goldenStream()
		s.api = bodyDoer{body}
		s.start = goldenNow.Add(-time.Hour)
		rd, err := s.Open(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := rd.Next(context.Background()); err != nil {
				break
			}
		}
	})
}
