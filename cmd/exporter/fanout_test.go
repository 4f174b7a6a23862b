package main

import (
	"encoding/json"
	"testing"

	"github.com/hwcaudit/hwcaudit/sinks/essink/estest"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
	"github.com/hwcaudit/hwcaudit/sources/swr"
)

// esIDs counts the documents of the SWR data stream by event.id.
func esIDs(t *testing.T, es *estest.Server) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, doc := range es.Docs("logs-" + swr.Dataset + "-default") {
		var d struct{ Event struct{ ID string } }
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatalf("stored document is not JSON: %.100s", doc)
		}
		ids[d.Event.ID]++
	}
	return ids
}

// TestEverySinkAtOnce writes to the file, Kafka, Elasticsearch and S3 sinks
// in one run. While Elasticsearch is down no checkpoint moves, whatever the
// other sinks accepted; once it is back, every sink holds every event, and
// Elasticsearch, which deduplicates by _id, holds each exactly once.
func TestEverySinkAtOnce(t *testing.T) {
	t.Parallel()
	broker := newKafkaBroker(t)
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	es := estest.New(t)

	h := newHarness(t, simConfig(51, 120))
	h.env["HWCAUDIT_SINKS"] = "file,kafka,elasticsearch,s3"
	h.env["HWCAUDIT_KAFKA_BROKERS"] = broker.addr()
	h.env["ELASTICSEARCH_URL"] = es.URL
	useS3(h, srv, bucket)
	h.env["HWCAUDIT_CHECKPOINT_URL"] = "file://./state"
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "2s"

	es.Stop()
	h.mustRun(exitFailed, "run")
	if marks := readCheckpoints(t, h.stateDir()); len(marks) != 0 {
		t.Fatalf("checkpoints saved while Elasticsearch was down: %v", marks)
	}

	es.Start(t)
	h.env["HWCAUDIT_ELASTICSEARCH_SETUP"] = "true"
	h.mustRun(exitOK, "run")
	out := readOutput(t, h.datasetDir(), false)
	checkExported(t, h.sim, out, atLeastOnce)
	want := out.ids()
	kafka, s3, elastic := kafkaIDs(t, broker.addr()), s3EventIDs(t, srv, bucket, "audit"), esIDs(t, es)
	for id := range want {
		if kafka[id] == 0 || s3[id] == 0 {
			t.Fatalf("event %s: %d copies in Kafka, %d in S3", id, kafka[id], s3[id])
		}
		if elastic[id] != 1 {
			t.Fatalf("event %s is %d times in Elasticsearch, want once", id, elastic[id])
		}
	}
	if len(elastic) != len(want) {
		t.Errorf("Elasticsearch holds %d events, want %d", len(elastic), len(want))
	}
	if es.IndexTemplate("logs-huaweicloud") == nil {
		t.Error("HWCAUDIT_ELASTICSEARCH_SETUP=true installed no index template")
	}
}
