package artifact

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
)

const (
	goldenTenant  = "5a775fdcb14f4431b6c0015618140bc3"
	goldenProject = "0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f"
	goldenRegion  = "cn-south-1"
	goldenRepo    = "xx-xxxxx-x_5a775fdcb14f4431b6c0015618140bc3_maven_1_108"
)

// goldenNow stamps event.ingested, so golden documents are stable.
var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

func fixedNow() time.Time { return goldenNow }

func goldenStream(module string) *Stream {
	cfg := Config{TenantID: goldenTenant, Repos: []string{module + "/" + goldenRepo}, Timezone: "+08:00", PageSize: 100}
	return Streams(cfg, nil, goldenRegion, goldenProject, time.Time{}, fixedNow)[0]
}

func pageRecords(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := decodePage(data, time.UTC, "test", 0, 100)
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
	ecstest.MapGolden(t, Dataset, pageRecords, goldenStream(ModuleFile).Map)
}

func TestMapFields(t *testing.T) {
	file, repo := goldenStream(ModuleFile), goldenStream(ModuleRepository)
	tests := []struct {
		s    *Stream
		raw  string
		want map[string]any
	}{
		{file, `{"id":"2271182","module":"file","operation":"upload","time":"2023/10/27 15:46:19","data":"1/1/1/1-1-1.jar","reason":null,"userAgent":"UA","operator":"op","ipSource":"10.172.180.79"}`,
			map[string]any{"@timestamp": "2023-10-27T07:46:19.000Z", "event.category": "[file]", "event.type": "[creation]", "event.action": "upload",
				"file.name": "1-1-1.jar", "file.path": "1/1/1/1-1-1.jar", "user.name": "op", "related.user": "[op]", "user_agent.original": "UA",
				"source.ip": "10.172.180.79", "event.reason": nil, "huaweicloud.artifact.audit_id": "2271182", "cloud.service.name": "codeartsartifact",
				"cloud.account.id": goldenTenant}},
		{repo, `{"id":"7","module":"repository","operation":"Delete","time":"2023/10/27 15:46:19","data":"x","reason":"cleanup"}`,
			map[string]any{"event.category": "[configuration]", "event.type": "[deletion]", "event.action": "delete", "file.path": nil,
				"event.reason": "cleanup", "huaweicloud.artifact.data": "x", "huaweicloud.artifact.operation": "Delete"}},
		{file, `{"id":"0007","time":"2023/10/27 15:46:19","operation":"frobnicate","ipSource":"nope"}`,
			map[string]any{"event.type": "[info]", "huaweicloud.artifact.audit_id": "7", "huaweicloud.artifact.module": "file", "source.ip": nil,
				"huaweicloud.artifact.ip_source": "nope", "user.name": nil}},
		{file, `{"id":"8","time":"2023/10/27 15:46:19","operation":"download","operator":"devcloud_op_01","operatorNickName":"张三","operatorTenantName":"acme-prod"}`,
			map[string]any{"user.name": "devcloud_op_01", "user.full_name": "张三", "user.domain": "acme-prod", "related.user": "[devcloud_op_01]",
				"event.type": "[access]", "huaweicloud.artifact.operator_tenant_name": nil}},
		{file, `{"id":"9","time":"2023/10/27 15:46:19","operatorTenantName":"acme-prod"}`,
			map[string]any{"user.domain": "acme-prod", "user.name": nil, "related.user": nil}},
	}
	for _, tt := range tests {
		var ev pipeline.Event
		if err := tt.s.Map([]byte(tt.raw), &ev); err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		ecstest.CheckDoc(t, []byte(tt.raw), &ev, Dataset)
		f := ecstest.FlatDoc(t, ev.Doc)
		for k, v := range tt.want {
			if fmt.Sprint(f[k]) != fmt.Sprint(v) && !(v == nil && f[k] == nil) {
				t.Errorf("%s: %s = %v, want %v", tt.raw, k, f[k], v)
			}
		}
	}
	for _, bad := range []string{`{}`, `{"id":null,"time":"2023/10/27 15:46:19"}`, `{"id":"1"}`, `{"id":"1","time":"bad"}`,
		`{"id":"-1","time":"2023/10/27 15:46:19"}`, `[]`, ``, `{"id":"1","time":"2023/10/27 15:46:19","operator":5}`} {
		var ev pipeline.Event
		if err := file.Map([]byte(bad), &ev); err == nil {
			t.Errorf("Map(%s) succeeded", bad)
		} else if ev.Doc != nil {
			t.Errorf("Map(%s) failed but left a document", bad)
		}
	}
}

func TestMapDeterministicIDs(t *testing.T) {
	raw := []byte(`{"id":"5","time":"2023/10/27 15:46:19"}`)
	var a, b, c pipeline.Event
	_ = goldenStream(ModuleFile).Map(raw, &a)
	_ = goldenStream(ModuleFile).Map([]byte(`{"id":"005","time":"2023/10/27 15:46:20"}`), &b)
	_ = goldenStream(ModuleRepository).Map(raw, &c)
	if a.ID != b.ID || a.ID == c.ID {
		t.Errorf("event ids: %s %s %s; want the same id for the same record id and repository only", a.ID, b.ID, c.ID)
	}
}

func TestMapECSFieldNames(t *testing.T) {
	ecs := ecstest.LoadECS(t)
	for _, module := range []string{ModuleFile, ModuleRepository} {
		s := goldenStream(module)
		for _, page := range ecstest.PageFiles(t) {
			for _, raw := range pageRecords(t, page) {
				var ev pipeline.Event
				if s.Map(raw, &ev) == nil {
					ecs.Check(t, ev.Doc)
				}
			}
		}
		for op := range eventTypes {
			var ev pipeline.Event
			raw := fmt.Sprintf(`{"id":"1","module":%q,"operation":%q,"time":"2023/10/27 15:46:19"}`, module, op)
			if err := s.Map([]byte(raw), &ev); err != nil {
				t.Fatal(err)
			}
			ecs.Check(t, ev.Doc)
		}
	}
}

func FuzzMap(f *testing.F) {
	for _, p := range ecstest.PageFiles(f) {
		for _, raw := range pageRecords(f, p) {
			f.Add(raw)
		}
	}
	for _, raw := range []string{`{"id":"1","time":"0000/01/01 00:00:00"}`, `{"id":"1","time":"9999/12/31 23:59:59"}`,
		`{"id":1,"time":"2023/10/27 15:46:19","data":"\ud800","operator":"\u0000"}`, `null`, `[]`, `"x"`} {
		f.Add([]byte(raw))
	}
	s := goldenStream(ModuleFile)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			if ev.Doc != nil {
				t.Errorf("Map failed (%v) but left a document", err)
			}
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
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, body := range []string{
		`{"status":"success","result":{"auditInfoList":[],"total":0}}`, `{"status":"error","trace_id":"1-2"}`,
		`{"result":{"auditInfoList":[{"id":"1"},{"id":"2"}],"total":2}}`, `{"result":{"auditInfoList":null,"total":9}}`,
		`{"result":{"auditInfoList":[{"time":"2023/10/27 15:46:19"}],"total":1000000}}`, `{"result":{}}`, `{}`, `[]`, `<html>`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, _, err := decodePage(body, time.UTC, "fuzz", 0, 100)
		if err == nil && len(recs) > 100 {
			t.Errorf("%d records for page size 100", len(recs))
		}
		// A reader served this body forever must neither panic nor loop.
		s := goldenStream(ModuleFile)
		s.api = bodyDoer{body}
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
