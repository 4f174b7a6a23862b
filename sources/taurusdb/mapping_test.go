package taurusdb

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
	goldenInstance = "3d39c18788b54a919bab633874c159dfin07"
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
	tests := []struct {
		raw  string
		want map[string]any
	}{
		{`{"id":"x","name":"n","size":20481.835938,"begin_time":"2019-11-06T09:03:34+0800","end_time":"2019-11-06T10:39:15+0800"}`,
			map[string]any{"@timestamp": "2019-11-06T02:39:15.000Z", "event.start": "2019-11-06T01:03:34.000Z", "event.end": "2019-11-06T02:39:15.000Z",
				"file.size": 20973400.0, "file.name": "n", "huaweicloud.taurusdb.size_kb": 20481.835938}},
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
		f := ecstest.FlatDoc(t, ev.Doc)
		for k, v := range tt.want {
			if fmt.Sprint(f[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want %v", tt.raw, k, f[k], v)
			}
		}
	}
	for _, bad := range []string{`{}`, `{"id":null,"end_time":"2019-12-31T23:30:00Z"}`, `{"id":"x"}`, `{"id":"x","end_time":"bad"}`, `[]`, ``} {
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
	f.Add([]byte(`{"id":"1","end_time":"0000-01-01T00:00:00+2359"}`))
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
	for _, b := range []string{`{"audit_logs":[],"total_count":0}`, `{"audit_logs":null,"total_count":5}`, `{"total_count":-1}`, `{}`, `<html>`} {
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
