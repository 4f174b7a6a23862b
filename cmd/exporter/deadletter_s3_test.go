package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
)

// useS3DeadLetter sends the exporter's dead letters to url on srv, with the
// S3 sink's connection variables and credentials from the AWS chain; the
// S3 sink itself is not used.
func useS3DeadLetter(h *harness, srv *s3test.Server, url string) {
	h.env["AWS_ACCESS_KEY_ID"] = srv.AccessKey
	h.env["AWS_SECRET_ACCESS_KEY"] = srv.SecretKey
	h.env["AWS_REGION"] = srv.Region
	h.env["HWCAUDIT_S3_ENDPOINT"] = srv.Endpoint
	h.env["HWCAUDIT_S3_FORCE_PATH_STYLE"] = "true"
	h.env["HWCAUDIT_DEADLETTER"] = url
}

func TestCheckDeadLetterS3(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)

	h := newHarness(t, simConfig(1, 5))
	useS3DeadLetter(h, srv, "s3://"+bucket+"/dead")
	r := h.mustRun(exitOK, "check")
	want := "ok    dead letter: bucket " + bucket + " is reachable (letters go to s3://" + bucket + "/dead)\n"
	if !strings.Contains(r.stdout, want) {
		t.Errorf("missing %q in\n%s", want, r.stdout)
	}

	h = newHarness(t, simConfig(1, 5))
	useS3DeadLetter(h, srv, "s3://no-such-bucket/dead")
	r = h.mustRun(exitFailed, "check")
	if !regexp.MustCompile(`(?m)^FAIL  dead letter: HWCAUDIT_DEADLETTER s3://no-such-bucket/dead: HeadBucket no-such-bucket: `).MatchString(r.stdout) {
		t.Errorf("no FAIL line for the missing dead-letter bucket:\n%v", r)
	}
}

func TestCheckDeadLetterS3ConfigError(t *testing.T) {
	t.Parallel()
	for url, why := range map[string]string{
		"s3://Audit_Letters/dead":   "bucket name",
		"s3:///dead":                "names no bucket",
		"gs://bucket/dead":          "not supported",
		"s3://bucket/dead?region=x": "HWCAUDIT_S3_REGION",
	} {
		h := newHarness(t, simConfig(1, 5))
		h.env["HWCAUDIT_DEADLETTER"] = url
		r := h.run("check")
		if r.code != exitUsage || !strings.Contains(r.stderr, "HWCAUDIT_DEADLETTER") || !strings.Contains(r.stderr, why) {
			t.Errorf("%s: want exit %d naming HWCAUDIT_DEADLETTER and %q, got\n%v", url, exitUsage, why, r)
		}
	}
}
