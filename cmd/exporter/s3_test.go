package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
	"github.com/hwcaudit/hwcaudit/sources/swr"
)

// useS3 points the exporter's S3 sink and checkpoint store at srv.
func useS3(h *harness, srv *s3test.Server, bucket string) {
	h.env["AWS_ACCESS_KEY_ID"] = srv.AccessKey
	h.env["AWS_SECRET_ACCESS_KEY"] = srv.SecretKey
	h.env["AWS_REGION"] = srv.Region
	h.env["HWCAUDIT_S3_BUCKET"] = bucket
	h.env["HWCAUDIT_S3_PREFIX"] = "audit"
	h.env["HWCAUDIT_S3_ENDPOINT"] = srv.Endpoint
	h.env["HWCAUDIT_S3_FORCE_PATH_STYLE"] = "true"
	h.env["HWCAUDIT_CHECKPOINT_URL"] = "s3://" + bucket + "/state?endpoint=" + srv.Endpoint + "&path_style=true&region=" + srv.Region
}

// s3EventIDs counts the events stored under prefix, by event.id.
func s3EventIDs(t *testing.T, srv *s3test.Server, bucket, prefix string) map[string]int {
	t.Helper()
	keys, bodies := srv.ReadAll(t, bucket, prefix)
	ids := map[string]int{}
	for i, body := range bodies {
		if !strings.HasPrefix(keys[i], prefix+"/dataset="+swr.Dataset+"/year=") || !strings.HasSuffix(keys[i], ".ndjson.gz") {
			t.Fatalf("object key %q is not Hive-partitioned gzip NDJSON", keys[i])
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			var d struct{ Event struct{ ID string } }
			if err := json.Unmarshal(line, &d); err != nil {
				t.Fatalf("%s: line is not JSON: %.100s", keys[i], line)
			}
			ids[d.Event.ID]++
		}
	}
	return ids
}

func TestS3SinkAndCheckpoints(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	h := newHarness(t, simConfig(41, 150))
	h.env["HWCAUDIT_SINKS"] = "file,s3"
	useS3(h, srv, bucket)
	h.mustRun(exitOK, "run")

	out := readOutput(t, h.datasetDir(), false)
	checkExported(t, h.sim, out, exactlyOnce)
	ids := s3EventIDs(t, srv, bucket, "audit")
	for id := range out.ids() {
		if ids[id] != 1 {
			t.Fatalf("event %s is in the files but %d times in S3", id, ids[id])
		}
	}
	if len(ids) != len(out.ids()) {
		t.Errorf("S3 holds %d events, the files %d", len(ids), len(out.ids()))
	}
	keys, _ := srv.ReadAll(t, bucket, "state/")
	if len(keys) == 0 {
		t.Fatal("no checkpoint objects under state/")
	}

	// The checkpoints live in S3: a second run from another directory
	// (another pod) finds them and has nothing to do.
	h.dir = t.TempDir()
	r := h.mustRun(exitOK, "run")
	if !strings.Contains(r.stdout, "nothing new") {
		t.Errorf("second run with S3 checkpoints is not caught up:\n%s", r.stdout)
	}
}

func TestS3SinkOutageHoldsTheCheckpoint(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	if !srv.CanStop() {
		t.Skip("an external S3 server cannot be stopped")
	}
	bucket := srv.Bucket(t)
	h := newHarness(t, simConfig(42, 100))
	h.env["HWCAUDIT_SINKS"] = "file,s3"
	useS3(h, srv, bucket)
	// The checkpoints stay local so that only the sink is cut off.
	h.env["HWCAUDIT_CHECKPOINT_URL"] = "file://./state"
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "2s"

	srv.Stop(t)
	h.mustRun(exitFailed, "run")
	if marks := readCheckpoints(t, h.stateDir()); len(marks) != 0 {
		t.Fatalf("checkpoints saved while S3 was down: %v", marks)
	}
	srv.Restart(t)
	h.mustRun(exitOK, "run")
	out := readOutput(t, h.datasetDir(), false)
	ids := s3EventIDs(t, srv, bucket, "audit")
	for id := range out.ids() {
		if ids[id] == 0 {
			t.Fatalf("event %s never reached S3", id)
		}
	}
}
