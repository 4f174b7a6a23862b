package swr

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc/ecstest"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

const (
	goldenInstance = "7f3c2a10-5b8e-4d21-9c4f-0e6a1b2c3d4e"
	goldenProject  = "0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f"
	goldenRegion   = "cn-north-4"
)

// goldenNow stamps event.ingested, so golden documents are stable.
var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

// goldenStream is the "pull" stream of one instance, as Streams builds it.
func goldenStream(now func() time.Time) *Stream {
	cfg := Config{Instances: []string{goldenInstance}, Operations: []string{"pull"}, PageSize: 100}
	return Streams(cfg, nil, goldenRegion, goldenProject, time.Time{}, now)[0]
}

func fixedNow() time.Time { return goldenNow }

// pageRecords splits a page file into its raw records, as the reader does.
func pageRecords(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := decodePage(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// allPageRecords are the records of every testdata page.
func allPageRecords(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, f := range ecstest.PageFiles(t) {
		out = append(out, pageRecords(t, f)...)
	}
	return out
}

func TestMapGolden(t *testing.T) {
	ecstest.MapGolden(t, Dataset, pageRecords, goldenStream(fixedNow).Map)
}

func TestMapFields(t *testing.T) {
	const digest = "sha256:22eb792e7202aee4895dc0ad09126c310161e4ca40d3cec70c32505cffee7f06"
	rec := func(opTime, op, res, user string) string {
		b, _ := json.Marshal(map[string]any{"id": 7, "op_time": opTime, "operation": op, "resource": res, "resource_type": "artifact", "username": user})
		return string(b)
	}
	const t0 = "2025-06-01T07:00:00.000Z"
	tests := []struct {
		name   string
		raw    string
		want   map[string]any
		absent []string
	}{
		{
			name: "UTC op_time",
			raw:  rec("2020-12-24T11:19:54.907Z", "pull", "library/ubuntu", "u"),
			want: map[string]any{"@timestamp": "2020-12-24T11:19:54.907Z"},
		},
		{
			name: "op_time at +08:00 is converted to UTC",
			raw:  rec("2020-12-24T19:19:54.907+08:00", "pull", "library/ubuntu", "u"),
			want: map[string]any{"@timestamp": "2020-12-24T11:19:54.907Z"},
		},
		{
			name: "op_time at -05:00 crosses midnight",
			raw:  rec("2020-12-23T22:30:00-05:00", "pull", "library/ubuntu", "u"),
			want: map[string]any{"@timestamp": "2020-12-24T03:30:00.000Z"},
		},
		{
			name: "zone-less op_time is UTC",
			raw:  rec("2020-12-24T11:19:54.907", "pull", "library/ubuntu", "u"),
			want: map[string]any{"@timestamp": "2020-12-24T11:19:54.907Z"},
		},
		{
			name: "op_time with a space",
			raw:  rec("2020-12-24 11:19:54", "pull", "library/ubuntu", "u"),
			want: map[string]any{"@timestamp": "2020-12-24T11:19:54.000Z"},
		},
		{
			name: "nanoseconds truncate to milliseconds",
			raw:  rec("2020-12-24T11:19:54.907999999Z", "pull", "library/ubuntu", "u"),
			want: map[string]any{"@timestamp": "2020-12-24T11:19:54.907Z"},
		},
		{
			name:   "repository only",
			raw:    rec(t0, "delete", "prod/order-service", "admin"),
			want:   map[string]any{"huaweicloud.swr.repository": "prod/order-service", "event.type": []any{"deletion"}, "event.action": "delete"},
			absent: []string{"huaweicloud.swr.tag", "huaweicloud.swr.digest", "related.hash"},
		},
		{
			name:   "repository and tag",
			raw:    rec(t0, "create", "library/nginx:1.25", "admin"),
			want:   map[string]any{"huaweicloud.swr.repository": "library/nginx", "huaweicloud.swr.tag": "1.25", "event.type": []any{"creation"}},
			absent: []string{"huaweicloud.swr.digest", "related.hash"},
		},
		{
			name: "digest after a colon, as documented",
			raw:  rec(t0, "pull", "library/ubuntu:"+digest, "admin"),
			want: map[string]any{"huaweicloud.swr.repository": "library/ubuntu", "huaweicloud.swr.digest": digest, "event.type": []any{"access"},
				"related.hash": []any{digest, digest[len("sha256:"):]}},
			absent: []string{"huaweicloud.swr.tag"},
		},
		{
			name:   "digest after @",
			raw:    rec(t0, "pull", "library/ubuntu@"+digest, "admin"),
			want:   map[string]any{"huaweicloud.swr.repository": "library/ubuntu", "huaweicloud.swr.digest": digest, "related.hash": []any{digest, digest[len("sha256:"):]}},
			absent: []string{"huaweicloud.swr.tag"},
		},
		{
			name: "sha512 digest",
			raw:  rec(t0, "delete", "a/b@sha512:"+strings.Repeat("0f", 64), "admin"),
			want: map[string]any{"related.hash": []any{"sha512:" + strings.Repeat("0f", 64), strings.Repeat("0f", 64)}},
		},
		{
			name:   "a digest that is not hex is not a hash",
			raw:    rec(t0, "pull", "a/b@sha256:"+strings.Repeat("zz", 32), "admin"),
			want:   map[string]any{"huaweicloud.swr.digest": "sha256:" + strings.Repeat("zz", 32), "related.user": []any{"admin"}},
			absent: []string{"related.hash"},
		},
		{
			name:   "a short digest is not a hash",
			raw:    rec(t0, "pull", "a/b:sha256:22eb", "admin"),
			want:   map[string]any{"huaweicloud.swr.digest": "sha256:22eb"},
			absent: []string{"related.hash"},
		},
		{
			name:   "digest without a user",
			raw:    rec(t0, "pull", "a/b@"+digest, ""),
			want:   map[string]any{"related.hash": []any{digest, digest[len("sha256:"):]}},
			absent: []string{"user.id", "related.user"},
		},
		{
			name: "registry host with a port",
			raw:  rec(t0, "pull", "registry.example.com:5000/team/app:v2", "admin"),
			want: map[string]any{"huaweicloud.swr.repository": "registry.example.com:5000/team/app", "huaweicloud.swr.tag": "v2"},
		},
		{
			name: "nested repository",
			raw:  rec(t0, "pull", "infra/billing/worker:release-2024.06", "admin"),
			want: map[string]any{"huaweicloud.swr.repository": "infra/billing/worker", "huaweicloud.swr.tag": "release-2024.06"},
		},
		{
			name:   "username is the documented user ID",
			raw:    rec(t0, "pull", "a/b", "robot$Clair-f279f0f6-45d9-11eb-b153-02550a00004a"),
			want:   map[string]any{"user.id": "robot$Clair-f279f0f6-45d9-11eb-b153-02550a00004a", "related.user": []any{"robot$Clair-f279f0f6-45d9-11eb-b153-02550a00004a"}},
			absent: []string{"user.name"},
		},
		{
			name: "unicode user",
			raw:  rec(t0, "pull", "a/b", "田中太郎 🚀"),
			want: map[string]any{"user.id": "田中太郎 🚀", "related.user": []any{"田中太郎 🚀"}},
		},
		{
			name:   "no user",
			raw:    rec(t0, "pull", "a/b", ""),
			absent: []string{"user.id", "user.name", "related.user", "related.hash"},
		},
		{
			name:   "null optional fields",
			raw:    `{"id":7,"op_time":"` + t0 + `","operation":null,"resource":null,"resource_type":null,"username":null}`,
			want:   map[string]any{"event.action": "pull", "huaweicloud.swr.operation": "pull"},
			absent: []string{"user.id", "huaweicloud.swr.resource", "huaweicloud.swr.resource_type", "huaweicloud.swr.repository"},
		},
		{
			name: "operation in upper case",
			raw:  rec(t0, "DELETE", "a/b", "u"),
			want: map[string]any{"event.action": "delete", "event.type": []any{"deletion"}},
		},
		{
			name: "update is a change",
			raw:  rec(t0, "update", "a/b", "u"),
			want: map[string]any{"event.type": []any{"change"}},
		},
		{
			name: "unknown operation is info",
			raw:  rec(t0, "scan", "a/b", "u"),
			want: map[string]any{"event.type": []any{"info"}, "event.action": "scan"},
		},
		{
			name: "quoted id",
			raw:  `{"id":"138","op_time":"` + t0 + `","operation":"pull"}`,
			want: map[string]any{"huaweicloud.swr.audit_id": "138"},
		},
		{
			name: "stream context",
			raw:  rec(t0, "pull", "a/b", "u"),
			want: map[string]any{
				"ecs.version": "9.4.0", "event.kind": "event", "event.category": []any{"file"}, "event.outcome": "unknown",
				"event.module": "huaweicloud", "event.provider": "swr", "event.dataset": "huaweicloud.swr_audit",
				"event.ingested": "2026-01-02T03:04:05.678Z", "cloud.provider": "huaweicloud", "cloud.region": goldenRegion,
				"cloud.project.id": goldenProject, "cloud.service.name": "swr", "huaweicloud.swr.instance_id": goldenInstance,
				"huaweicloud.swr.audit_id": "7",
			},
		},
	}
	s := goldenStream(fixedNow)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev pipeline.Event
			if err := s.Map([]byte(tt.raw), &ev); err != nil {
				t.Fatal(err)
			}
			ecstest.CheckDoc(t, []byte(tt.raw), &ev, Dataset)
			f := ecstest.FlatDoc(t, ev.Doc)
			for k, want := range tt.want {
				if got, ok := f[k]; !ok || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := f[k]; ok {
					t.Errorf("%s = %v, want it absent", k, v)
				}
			}
		})
	}
}

func TestMapErrors(t *testing.T) {
	const ok = `"op_time":"2025-06-01T07:00:00Z","operation":"pull"`
	tests := []struct {
		name, raw, want string
	}{
		{"missing id", `{` + ok + `}`, "no id"},
		{"null id", `{"id":null,` + ok + `}`, "not a non-negative integer"},
		{"non-numeric id", `{"id":"not-a-number",` + ok + `}`, "not a non-negative integer"},
		{"negative id", `{"id":-1,` + ok + `}`, "not a non-negative integer"},
		{"fractional id", `{"id":1.5,` + ok + `}`, "not a non-negative integer"},
		{"id beyond int64", `{"id":9223372036854775808,` + ok + `}`, "not a non-negative integer"},
		{"id as an object", `{"id":{"v":1},` + ok + `}`, "not a non-negative integer"},
		{"missing op_time", `{"id":1,"operation":"pull"}`, "op_time"},
		{"bad op_time", `{"id":1,"op_time":"24/12/2020 11:19:54"}`, "op_time"},
		{"op_time as a number", `{"id":1,"op_time":1608808794}`, "not a JSON object"},
		{"op_time out of range", `{"id":1,"op_time":"2020-13-40T25:61:00Z"}`, "op_time"},
		{"not an object: array", `[1,2,3]`, "not a JSON object"},
		{"not an object: string", `"pull"`, "not a JSON object"},
		{"not an object: null", `null`, "no id"},
		{"truncated", `{"id":1,"op_time":"2025-06-01T07:00:00Z"`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
	}
	s := goldenStream(fixedNow)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev pipeline.Event
			err := s.Map([]byte(tt.raw), &ev)
			if err == nil {
				t.Fatalf("Map succeeded: %s", ev.Doc)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestMapDeterministic(t *testing.T) {
	clock := goldenNow
	s := goldenStream(func() time.Time { clock = clock.Add(time.Hour); return clock })
	seen := map[string]int{}
	for i, raw := range allPageRecords(t) {
		var a, b pipeline.Event
		if err := s.Map(raw, &a); err != nil {
			t.Fatal(err)
		}
		b.Doc = make([]byte, 0, 8) // a reused buffer must not matter
		if err := s.Map(slices.Clone(raw), &b); err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID || !a.Timestamp.Equal(b.Timestamp) {
			t.Errorf("record %d: mapped twice to ids %s and %s", i, a.ID, b.ID)
		}
		fa, fb := ecstest.FlatDoc(t, a.Doc), ecstest.FlatDoc(t, b.Doc)
		if fa["event.ingested"] == fb["event.ingested"] {
			t.Fatalf("the test clock did not move: event.ingested %v", fa["event.ingested"])
		}
		delete(fa, "event.ingested")
		delete(fb, "event.ingested")
		if fmt.Sprint(fa) != fmt.Sprint(fb) {
			t.Errorf("record %d: documents differ beyond event.ingested:\n%s\n%s", i, a.Doc, b.Doc)
		}
		if j, dup := seen[a.ID]; dup {
			t.Errorf("records %d and %d share event.id %s", j, i, a.ID)
		}
		seen[a.ID] = i
	}

	// The id depends on the instance and the audit id only: the same record
	// read by another stream of the instance is the same event, another
	// instance's record with the same audit id is not.
	raw := []byte(`{"id":42,"op_time":"2025-06-01T07:00:00Z","operation":"pull"}`)
	ids := map[string]string{}
	for _, c := range []struct{ ins, op string }{{"a", "pull"}, {"a", "create"}, {"b", "pull"}} {
		cfg := Config{Instances: []string{c.ins}, Operations: []string{c.op}, PageSize: 100}
		var ev pipeline.Event
		if err := Streams(cfg, nil, "r", "p", time.Time{}, fixedNow)[0].Map(raw, &ev); err != nil {
			t.Fatal(err)
		}
		ids[c.ins+"/"+c.op] = ev.ID
	}
	if ids["a/pull"] != ids["a/create"] || ids["a/pull"] == ids["b/pull"] {
		t.Errorf("event ids by instance/stream: %v", ids)
	}
}

func TestMapConcurrent(t *testing.T) {
	// Map must be safe from several goroutines; run under -race.
	s := goldenStream(fixedNow)
	recs := allPageRecords(t)
	want := make([]string, len(recs))
	for i, raw := range recs {
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			t.Fatal(err)
		}
		want[i] = string(ev.Doc)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i, raw := range recs {
				var ev pipeline.Event
				if err := s.Map(raw, &ev); err != nil || string(ev.Doc) != want[i] {
					t.Errorf("record %d mapped differently under concurrency (%v)", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMapECSFieldNames(t *testing.T) {
	ecs := ecstest.LoadECS(t)
	s := goldenStream(fixedNow)
	recs := allPageRecords(t)
	// Every operation and event type, not only the pages' ones.
	for _, op := range []string{"pull", "create", "delete", "update", "other"} {
		recs = append(recs, []byte(`{"id":1,"op_time":"2025-06-01T07:00:00Z","operation":"`+op+`","resource":"a/b:c","resource_type":"tag","username":"u"}`))
	}
	for i, raw := range recs {
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		ecs.Check(t, ev.Doc)
	}
}

func FuzzMap(f *testing.F) {
	for _, raw := range allPageRecords(f) {
		f.Add(raw)
	}
	for _, raw := range []string{
		`{"id":1,"op_time":"2025-06-01T07:00:00Z"}`, `{"id":"1","op_time":"2025-06-01 07:00:00"}`,
		`{"id":1,"op_time":"0000-01-01T00:00:00+23:59"}`, `{"id":1,"op_time":"9999-12-31T23:59:59-23:59"}`,
		`{"id":1,"op_time":"2025-06-01T07:00:00Z","resource":"@","username":"\ud800"}`, `null`, `[]`, `"x"`,
	} {
		f.Add([]byte(raw))
	}
	s := goldenStream(fixedNow)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev pipeline.Event
		if err := s.Map(raw, &ev); err != nil {
			if ev.Doc != nil {
				t.Errorf("Map failed (%v) but left a document", err)
			}
			return
		}
		if !json.Valid(ev.Doc) {
			t.Fatalf("invalid JSON document for %q: %s", raw, ev.Doc)
		}
		ecstest.CheckDoc(t, raw, &ev, Dataset)
	})
}

// pageDoer answers every request with one body.
type pageDoer struct {
	body  []byte
	calls int
}

func (d *pageDoer) Do(context.Context, huaweiapi.Request) ([]byte, error) {
	d.calls++
	return d.body, nil
}

func FuzzDecodePage(f *testing.F) {
	for _, p := range ecstest.PageFiles(f) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, body := range []string{
		`{"audit_logs":[],"total":0}`, `{"audit_logs":[{"id":2},{"id":1}],"total":-5}`,
		`{"audit_logs":[{"id":1},{"id":2}],"total":2}`, `{"audit_logs":null,"total":9}`,
		`{"audit_logs":[{"op_time":"2025-06-01T07:00:00Z"}],"total":1000000}`, `{"total":1}`, `{}`, `[]`, `<html>`,
	} {
		f.Add([]byte(body))
	}
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		d := &pageDoer{body: body}
		s := testStream(d, 100, base)
		recs, total, err := s.fetch(context.Background(), 0, 100)
		if err != nil {
			if !pipeline.IsPermanent(err) {
				t.Errorf("a body that does not decode gave a retryable error: %v", err)
			}
		} else {
			if len(recs) > 100 {
				t.Errorf("%d records for limit 100", len(recs))
			}
			_ = total
		}
		// A reader served this body forever must neither panic nor loop.
		s = testStream(&pageDoer{body: body}, 100, base)
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

func FuzzCursor(f *testing.F) {
	for _, c := range []string{
		`{"id":120,"op_time":"2026-11-01T00:02:00Z","from_end":80}`, `{"id":120,"skip":2,"from_end":80}`,
		`{"id":5,"skip":-3}`, `{"id":-1}`, `{}`, `null`, `{"id":999999}`, `{"id":120,"from_end":-7}`,
		`{"id":9223372036854775807,"skip":9223372036854775807,"from_end":-9223372036854775808}`,
		`{"id":1,"skip":1000,"from_end":1000}`, `"x"`,
	} {
		f.Add([]byte(c))
	}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cur []byte) {
		api := newListAPI(250, base)
		s := testStream(api, 100, base)
		rd, err := s.Open(context.Background(), cur)
		if err != nil {
			if !pipeline.IsPermanent(err) {
				t.Errorf("a cursor that does not decode gave a retryable error: %v", err)
			}
			return
		}
		last := int64(-1)
		for range 20 {
			p, err := rd.Next(context.Background())
			if err != nil {
				return
			}
			for _, raw := range p.Records {
				var k struct{ ID int64 }
				_ = json.Unmarshal(raw, &k)
				if k.ID <= last {
					t.Fatalf("record %d delivered after %d", k.ID, last)
				}
				last = k.ID
			}
		}
	})
}

// benchRecords returns n SWR-shaped records, varied like the simulator's.
func benchRecords(n int) [][]byte {
	users := []string{"robot$Clair-f279f0f6-45d9-11eb-b153-02550a00004a", "admin", "张三", "robot$prod+k8s-node"}
	resources := []string{
		"library/ubuntu:sha256:22eb792e7202aee4895dc0ad09126c310161e4ca40d3cec70c32505cffee7f06",
		"library/nginx:1.25", "prod/order-service", "team-payments/redis@sha256:22eb792e7202aee4895dc0ad09126c310161e4ca40d3cec70c32505cffee7f06",
	}
	ops := []string{"pull", "create", "delete"}
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"id":%d,"op_time":"%s","operation":"%s","resource":"%s","resource_type":"artifact","username":"%s"}`,
			100000+i, t0.Add(time.Duration(i)*1537*time.Millisecond).Format("2006-01-02T15:04:05.000Z"),
			ops[i%len(ops)], resources[i%len(resources)], users[i%len(users)])
	}
	return out
}

// BenchmarkMap maps one API page of SWR-shaped records per op, as the
// pipeline does with each page it reads.
// BenchmarkMap measures the transform stage on SWR records as the
// pipeline runs it (pipeline.MapRecords, a page at a time), including the
// split of the API's page into records: records/s is per core.
func BenchmarkMap(b *testing.B) {
	bodies := ecstest.PageBodies(b, benchRecords(10*MaxPageSize), MaxPageSize, func(logs []json.RawMessage) any {
		return map[string]any{"audit_logs": logs, "total": 10 * MaxPageSize}
	})
	s := goldenStream(fixedNow)
	ecstest.BenchmarkMap(b, s, s.Key(), bodies, MaxPageSize, func(_ int, body []byte) ([][]byte, error) {
		recs, _, err := decodePage(body)
		return recs, err
	})
}
