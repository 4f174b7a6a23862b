package sinktest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// Batches returns n batches of per consecutive SWR audit events, each
// an ECS document of about 1.2 KB shaped like the swr source's golden
// output (sources/swr/testdata/golden): the record repeated, escaped, in
// event.original, users and resources varied, @timestamp 1.5 s apart so
// that a batch of 2000 spans about 50 minutes, event.ingested 90 s later.
func Batches(n, per int) []*pipeline.Batch {
	const (
		instance = "7f3c2a10-5b8e-4d21-9c4f-0e6a1b2c3d4e"
		dataset  = "huaweicloud.swr_audit"
		digest   = "sha256:22eb792e7202aee4895dc0ad09126c310161e4ca40d3cec70c32505cffee7f06"
	)
	users := []string{"robot$Clair-f279f0f6-45d9-11eb-b153-02550a00004a", "admin", "张三", "robot$prod+k8s-node"}
	repos := []string{"library/ubuntu", "library/nginx", "prod/order-service", "team-payments/redis"}
	ops := [][2]string{{"pull", "access"}, {"create", "creation"}, {"delete", "deletion"}}
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	out := make([]*pipeline.Batch, n)
	for k := range out {
		b := &pipeline.Batch{Stream: "swr/" + instance + "/pull", Events: make([]pipeline.Event, per)}
		for j := range b.Events {
			i := k*per + j
			ts := t0.Add(time.Duration(i) * 1537 * time.Millisecond)
			user, repo, op := users[i%len(users)], repos[i%len(repos)], ops[i%len(ops)]
			resource := repo + ":" + digest
			raw := fmt.Sprintf(`{"id":%d,"op_time":"%s","operation":"%s","resource":"%s","resource_type":"artifact","username":"%s"}`,
				100000+i, ts.Format("2006-01-02T15:04:05.000Z"), op[0], resource, user)
			original, err := json.Marshal(raw)
			if err != nil {
				panic(err)
			}
			h := uint64(i)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
			id := fmt.Sprintf("%016x%016x", h, h^0x5bd1e9955bd1e995)
			doc := fmt.Appendf(nil, `{"@timestamp":"%s","ecs":{"version":"9.4.0"},"event":{"kind":"event","category":["file"],"type":["%s"],"action":"%s","outcome":"unknown","dataset":"%s","module":"huaweicloud","provider":"swr","id":"%s","ingested":"%s","original":%s},"cloud":{"provider":"huaweicloud","region":"cn-north-4","project":{"id":"0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f"},"service":{"name":"swr"}},"user":{"id":"%s"},"related":{"user":["%s"]},"huaweicloud":{"swr":{"instance_id":"%s","audit_id":"%d","operation":"%s","resource_type":"artifact","resource":"%s","repository":"%s","digest":"%s"}}}`,
				ts.Format("2006-01-02T15:04:05.000Z"), op[1], op[0], dataset, id, ts.Add(90*time.Second).Format("2006-01-02T15:04:05.000Z"), original, user, user, instance, 100000+i, op[0], resource, repo, digest)
			b.Events[j] = pipeline.Event{ID: id, Timestamp: ts, Dataset: dataset, Doc: doc}
		}
		out[k] = b
	}
	return out
}

// Benchmark writes batches to s in turn, one per iteration, reports
// events/op, events/s and bytes per iteration, and closes s. Every sink's
// BenchmarkWrite runs it against its own destination.
func Benchmark(b *testing.B, s pipeline.Sink, batches []*pipeline.Batch) {
	b.Helper()
	var size int64
	for _, ev := range batches[0].Events {
		size += int64(len(ev.Doc)) + 1
	}
	b.SetBytes(size)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := s.Write(context.Background(), batches[n%len(batches)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	per := len(batches[0].Events)
	b.ReportMetric(float64(per), "events/op")
	b.ReportMetric(float64(n*per)/b.Elapsed().Seconds(), "events/s")
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}
