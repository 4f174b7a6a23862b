package cts

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
	"github.com/hwcaudit/hwcaudit/sources/window/windowtest"
)

const (
	goldenProject = "054e292c9880d4992f02c0196d3ea468"
	goldenRegion  = "cn-north-4"
)

var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

func fixedNow() time.Time { return goldenNow }

// goldenStreams are the golden system and data streams reading api from
// start.
func goldenStreams(api huaweiapi.Doer, start time.Time) []*Stream {
	cfg := Config{Enabled: true, TraceTypes: []string{TypeSystem, TypeData}, PageSize: 100, Lookback: 10 * time.Minute}
	return Streams(cfg, window.Config{SettleDelay: 5 * time.Minute, MaxRecords: 5000}, api, goldenRegion, goldenProject, start, fixedNow)
}

func goldenStream() *Stream { return goldenStreams(nil, time.Time{})[0] }

// decodeAt is decodePage in the form windowtest wants: the records of a
// page, counted as its total.
func decodeAt(body []byte, stream string, _, limit int) ([]window.Record, int64, error) {
	recs, _, err := decodePage(body, stream, limit, 10*time.Minute)
	return recs, int64(len(recs)), err
}

var pageRecords = windowtest.PageRecords(decodeAt)

// TestMapGolden maps every trace of testdata/pages and compares with
// testdata/golden: data.json with the data stream, the others with the
// system stream.
func TestMapGolden(t *testing.T) {
	streams := goldenStreams(nil, time.Time{})
	ecstest.MapGolden(t, Dataset, pageRecords, func(raw []byte, ev *pipeline.Event) error {
		return streams[0].Map(raw, ev)
	})
	// The data page again, as the data stream maps it.
	t.Run("data-stream", func(t *testing.T) {
		var got strings.Builder
		for _, raw := range pageRecords(t, filepath.Join("testdata", "pages", "data.json")) {
			var ev pipeline.Event
			if err := streams[1].Map(raw, &ev); err != nil {
				t.Fatal(err)
			}
			ecstest.CheckDoc(t, raw, &ev, Dataset)
			got.Write(ev.Doc)
			got.WriteByte('\n')
		}
		ecstest.Golden(t, filepath.Join("testdata", "golden", "data-stream.ndjson"), []byte(got.String()))
	})
}

func TestMapFields(t *testing.T) {
	s := goldenStream()
	rec := func(name, service, code, rating string) string {
		m := map[string]any{"trace_id": "t-1", "time": 1619073652123, "record_time": 1619073653000, "trace_name": name, "service_type": service, "trace_rating": rating,
			"user": map[string]any{"name": "u", "id": "uid", "access_key_id": "AK1", "domain": map[string]any{"id": "did", "name": "dom"}}, "source_ip": "192.0.2.7"}
		if code != "" {
			m["code"] = code
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		raw    string
		want   map[string]any
		absent []string
	}{
		{rec("createServer", "ECS", "200", "normal"), map[string]any{
			"@timestamp": "2021-04-22T06:40:52.123Z", "event.id": "t-1", "event.action": "createServer", "event.provider": "ECS",
			"event.category": "[api]", "event.type": "[creation]", "event.outcome": "success", "event.severity": 1, "event.kind": "event",
			"cloud.provider": "huaweicloud", "cloud.region": goldenRegion, "cloud.project.id": goldenProject, "cloud.service.name": "ECS",
			"cloud.account.id": "did", "user.name": "u", "user.id": "uid", "user.domain": "dom", "huaweicloud.cts.user.access_key_id": "AK1",
			"source.ip": "192.0.2.7", "related.user": "[u]", "related.ip": "[192.0.2.7]", "http.response.status_code": 200,
			"huaweicloud.cts.record_time": "2021-04-22T06:40:53.000Z", "huaweicloud.cts.trace_type": "system",
		}, []string{"huaweicloud.cts.truncated"}},
		{rec("stopServer", "ECS", "302", "normal"), map[string]any{"event.category": "[api host]", "event.type": "[change]", "event.outcome": "success"}, nil},
		{rec("deleteUser", "IAM", "403", "warning"), map[string]any{"event.category": "[api iam]", "event.type": "[deletion]", "event.outcome": "failure", "event.severity": 2}, nil},
		{rec("login", "IAM", "", "normal"), map[string]any{"event.category": "[api authentication]", "event.type": "[start]", "event.outcome": "unknown"}, []string{"http.response.status_code"}},
		{rec("logout", "IAM", "", "normal"), map[string]any{"event.category": "[api authentication]", "event.type": "[end]"}, nil},
		{rec("listServers", "ECS", "200", "normal"), map[string]any{"event.category": "[api host]", "event.type": "[access]"}, nil},
		{rec("createVpc", "VPC", "500", "incident"), map[string]any{"event.category": "[api]", "event.type": "[creation]", "event.outcome": "failure", "event.severity": 3}, nil},
		{rec("showVpc", "VPC", "200", "normal"), map[string]any{"event.category": "[api network]", "event.type": "[access]"}, nil},
		{rec("PUT.OBJECT", "OBS", "200", "normal"), map[string]any{"event.category": "[api file]", "event.type": "[creation]"}, nil},
		{rec("GET.OBJECT", "OBS", "200", "normal"), map[string]any{"event.category": "[api file]", "event.type": "[access]"}, nil},
		{rec("resetPassword", "RDS", "200", "normal"), map[string]any{"event.category": "[api database]", "event.type": "[change]"}, nil},
		{rec("updateTracker", "CTS", "204", "normal"), map[string]any{"event.category": "[api configuration]", "event.type": "[change]"}, nil},
		{rec("frobnicate", "XYZ", "200", "odd"), map[string]any{"event.category": "[api]", "event.type": "[info]", "huaweicloud.cts.trace_rating": "odd"}, []string{"event.severity"}},
		{rec("createServer", "ECS", "99", "normal"), map[string]any{"event.outcome": "unknown", "huaweicloud.cts.code": "99"}, []string{"http.response.status_code"}},
		{`{"trace_id":"x","record_time":1619073653000,"source_ip":"999.1.1.1"}`, map[string]any{"@timestamp": "2021-04-22T06:40:53.000Z", "huaweicloud.cts.source_ip": "999.1.1.1", "event.provider": "cts"}, []string{"source.ip", "related.ip", "user.name"}},
		{`{"trace_id":"x","time":"1619073652123","user":{"user_name":"n"}}`, map[string]any{"@timestamp": "2021-04-22T06:40:52.123Z", "user.name": "n"}, []string{"huaweicloud.cts.record_time"}},
		{`{"trace_id":"x","time":1619073652123,"code":201,"user_agent":"curl/8.5.0"}`, map[string]any{"event.outcome": "success", "user_agent.original": "curl/8.5.0"}, nil},
	}
	for _, tt := range tests {
		var ev pipeline.Event
		if err := s.Map([]byte(tt.raw), &ev); err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		ecstest.CheckDoc(t, []byte(tt.raw), &ev, Dataset)
		ecstest.CheckFields(t, tt.raw, ev.Doc, tt.want, tt.absent)
	}
	for _, bad := range []string{`{}`, `{"trace_id":null,"time":1}`, `{"trace_id":"x"}`, `{"trace_id":"x","time":"bad"}`, `{"trace_id":true,"time":1}`,
		`{"trace_id":"x","time":1,"user":"u"}`, `{"trace_id":"x","time":1,"trace_name":5}`, `[]`, ``} {
		var ev pipeline.Event
		if err := s.Map([]byte(bad), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		}
	}
}

// TestMapTruncates maps traces whose request, response and message pass
// MaxFieldBytes and a trace past MaxOriginalBytes: the mapped fields and
// event.original are cut on a character boundary and the event is marked
// truncated, never dead-lettered.
func TestMapTruncates(t *testing.T) {
	s := goldenStream()
	big := strings.Repeat("é", MaxFieldBytes) // 2 bytes a character
	for _, tc := range []struct {
		name       string
		request    string
		original   bool // event.original cut
		wantTrunc  bool
		wantReqLen int
	}{
		{"small", `{"a":1}`, false, false, 7},
		{"request over the field cap", big, false, true, MaxFieldBytes},
		{"trace over the original cap", strings.Repeat("x", MaxOriginalBytes), true, true, MaxFieldBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(map[string]any{"trace_id": "t", "time": 1619073652123, "request": tc.request, "response": tc.request, "message": "m"})
			var ev pipeline.Event
			if err := s.Map(raw, &ev); err != nil {
				t.Fatal(err)
			}
			f := ecstest.FlatDoc(t, ev.Doc)
			if got := f["huaweicloud.cts.truncated"] == true; got != tc.wantTrunc {
				t.Errorf("truncated = %v, want %v", f["huaweicloud.cts.truncated"], tc.wantTrunc)
			}
			req, _ := f["huaweicloud.cts.request"].(string)
			if len(req) != tc.wantReqLen || !strings.HasPrefix(tc.request, req) {
				t.Errorf("request is %d bytes, want the first %d", len(req), tc.wantReqLen)
			}
			orig, _ := f["event.original"].(string)
			if tc.original {
				if len(orig) > MaxOriginalBytes || !strings.HasPrefix(string(raw), orig) || len(orig) < MaxOriginalBytes-4 {
					t.Errorf("event.original is %d bytes of a %d-byte trace, want its first %d", len(orig), len(raw), MaxOriginalBytes)
				}
			} else if orig != string(raw) {
				t.Errorf("event.original is not the trace")
			}
			if !json.Valid(ev.Doc) {
				t.Error("document is not valid JSON")
			}
		})
	}
}

func FuzzMap(f *testing.F) {
	ecstest.FuzzMap(f, Dataset, pageRecords, goldenStream().Map, []byte(`{"trace_id":"1","time":-1}`), []byte(`{"trace_id":"1","time":1,"user":{"domain":{"id":5}}}`))
}

type bodyDoer struct{ body []byte }

func (d bodyDoer) Do(context.Context, huaweiapi.Request) ([]byte, error) { return d.body, nil }

// FuzzDecodePage fuzzes the page decoder, and a reader whose API answers
// the body to every request (a marker that never changes included).
func FuzzDecodePage(f *testing.F) {
	serve := func(body []byte) pipeline.Stream { return goldenStreams(bodyDoer{body}, goldenNow.Add(-time.Hour))[0] }
	windowtest.FuzzDecodePage(f, decodeAt, serve, `{"traces":[],"meta_data":{"count":0,"marker":null}}`, `{"traces":null,"meta_data":{"marker":"x"}}`,
		`{"traces":[{"trace_id":"a","time":1767323044987}],"meta_data":{"marker":"a"}}`, `{"meta_data":5}`, `{}`, `<html>`)
}
