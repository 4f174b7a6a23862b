package essink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/essink/estest"
	"github.com/hwcaudit/hwcaudit/sinks/sinktest"
)

// testConfig is the Config defaults (as go-envconfig fills them) pointed at srv.
func testConfig(srv *estest.Server) Config {
	return Config{
		URLs:         []string{srv.URL},
		Target:       "logs-{dataset}-{namespace}",
		Namespace:    "default",
		BulkMaxBytes: 5 << 20,
		BulkMaxDocs:  1000,
		ItemRetries:  3,
		RetryBackoff: time.Millisecond,
		Timeout:      30 * time.Second,
	}
}

func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func ev(id, dataset, doc string) pipeline.Event {
	return pipeline.Event{ID: id, Dataset: dataset, Timestamp: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Doc: []byte(doc)}
}

func doc(id string) string {
	return fmt.Sprintf(`{"@timestamp":"2024-05-01T00:00:00Z","event":{"id":%q,"dataset":"huaweicloud.swr_audit"},"message":"m"}`, id)
}

func batchOf(ids ...string) *pipeline.Batch {
	b := &pipeline.Batch{Stream: "test/s"}
	for _, id := range ids {
		b.Events = append(b.Events, ev(id, "huaweicloud.swr_audit", doc(id)))
	}
	return b
}

const swrStream = "logs-huaweicloud.swr_audit-default"

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string
		strip  bool // remove the data_stream fields the sink adds
	}{
		{"Index", "hwcaudit-test", false},
		{"DataStream", "logs-{dataset}-{namespace}", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *estest.Server
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T) (pipeline.Sink, sinktest.ReadAll) {
					srv = estest.New(t)
					cfg := testConfig(srv)
					cfg.Target = tc.target
					cfg.BulkMaxBytes = 256 << 10
					cfg.BulkMaxDocs = 100
					s := newSink(t, cfg)
					return s, func(t *testing.T) [][]byte {
						var out [][]byte
						for _, name := range srv.Targets() {
							for _, d := range srv.Docs(name) {
								if tc.strip {
									d = stripDataStream(t, d)
								}
								out = append(out, d)
							}
						}
						return out
					}
				},
				Dedupes:       true,
				MaxEventBytes: 256 << 10,
				Down:          func(t *testing.T) { srv.Stop() },
				Up:            func(t *testing.T) { srv.Start(t) },
			})
		})
	}
}

// stripDataStream removes the data_stream member after checking that it
// names the data stream the document is in.
func stripDataStream(t *testing.T, d []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(d, &m); err != nil {
		t.Fatalf("stored document is not JSON: %v", err)
	}
	if _, ok := m["data_stream"]; !ok {
		t.Errorf("document in a data stream has no data_stream fields: %.200s", d)
	}
	delete(m, "data_stream")
	out, _ := json.Marshal(m)
	return out
}

func TestConflictCountsAsDelivered(t *testing.T) {
	srv := estest.New(t)
	s := newSink(t, testConfig(srv))
	b := batchOf("a", "b", "c")
	for i := range 3 {
		if err := s.Write(t.Context(), b); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if n := len(srv.Docs(swrStream)); n != 3 {
		t.Errorf("stored %d documents, want 3", n)
	}
	if st := srv.Stats(); st.Items != 9 {
		t.Errorf("server saw %d items, want 9 (3 created, 6 conflicts)", st.Items)
	}
}

func TestMixedItemStatuses(t *testing.T) {
	srv := estest.New(t)
	srv.SetFieldType("huaweicloud.taurusdb.size_kb", "long")
	s := newSink(t, testConfig(srv))
	if err := s.Write(t.Context(), batchOf("dup")); err != nil {
		t.Fatal(err)
	}
	b := batchOf("new", "dup", "busy", "bad", "ok")
	b.Events[3].Doc = []byte(`{"@timestamp":"2024-05-01T00:00:00Z","event":{"id":"bad"},"huaweicloud":{"taurusdb":{"size_kb":"lots"}}}`)
	srv.FailItem("busy", 429, 503)
	err := s.Write(t.Context(), b)
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write = %v, want *pipeline.RejectedError", err)
	}
	if len(rej.Reasons) != 1 || !strings.Contains(rej.Reasons[3], "document_parsing_exception") || !strings.Contains(rej.Reasons[3], "size_kb") {
		t.Errorf("Reasons = %v, want index 3 with the type and reason", rej.Reasons)
	}
	got := ids(t, srv.Docs(swrStream))
	if want := "dup,new,ok,busy"; got != want {
		t.Errorf("stored %s, want %s", got, want)
	}
}

func ids(t *testing.T, docs [][]byte) string {
	t.Helper()
	var out []string
	for _, d := range docs {
		var v struct {
			Event struct{ ID string } `json:"event"`
		}
		if err := json.Unmarshal(d, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.Event.ID)
	}
	return strings.Join(out, ",")
}

func TestItem429RetriedAlone(t *testing.T) {
	srv := estest.New(t)
	s := newSink(t, testConfig(srv))
	srv.FailItem("b", 429, 429)
	if err := s.Write(t.Context(), batchOf("a", "b", "c")); err != nil {
		t.Fatalf("Write = %v, want nil after item retries", err)
	}
	st := srv.Stats()
	if st.BulkRequests != 3 || st.Items != 5 {
		t.Errorf("server saw %d requests with %d items, want 3 with 5 (only the refused item re-sent)", st.BulkRequests, st.Items)
	}
	if got := ids(t, srv.Docs(swrStream)); got != "a,c,b" {
		t.Errorf("stored %s", got)
	}
}

func TestItemRetriesExhausted(t *testing.T) {
	srv := estest.New(t)
	cfg := testConfig(srv)
	cfg.ItemRetries = 2
	s := newSink(t, cfg)
	srv.FailItem("b", 429, 429, 429)
	err := s.Write(t.Context(), batchOf("a", "b"))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("Write = %v, want a retryable error", err)
	}
	var rej *pipeline.RejectedError
	if errors.As(err, &rej) {
		t.Fatalf("Write = %v: a throttled item must not be dead-lettered", err)
	}
	if !strings.Contains(err.Error(), "es_rejected_execution_exception") {
		t.Errorf("error %q does not say why", err)
	}
	// The pipeline's retry: "a" answers 409, "b" is now accepted.
	if err := s.Write(t.Context(), batchOf("a", "b")); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := ids(t, srv.Docs(swrStream)); got != "a,b" {
		t.Errorf("stored %s", got)
	}
}

func TestItemRetryRespectsContext(t *testing.T) {
	srv := estest.New(t)
	cfg := testConfig(srv)
	cfg.RetryBackoff = time.Hour
	s := newSink(t, cfg)
	srv.FailItem("a", 429)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Write(ctx, batchOf("a")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v, want context.DeadlineExceeded", err)
	}
}

func TestRequestLevelErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		permanent  bool
		wait       time.Duration
	}{
		{"429 Retry-After", 429, "7", false, 7 * time.Second},
		{"503", 503, "", false, 0},
		{"413", 413, "", true, 0},
		{"403", 403, "", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := estest.New(t)
			s := newSink(t, testConfig(srv))
			if err := s.Write(t.Context(), batchOf("warm")); err != nil { // product check
				t.Fatal(err)
			}
			srv.FailRequests(1, tc.status, tc.retryAfter)
			err := s.Write(t.Context(), batchOf("a"))
			if err == nil {
				t.Fatal("Write = nil")
			}
			if pipeline.IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tc.permanent, tc.permanent)
			}
			if d, ok := pipeline.RetryAfter(err); ok != (tc.wait > 0) || d != tc.wait {
				t.Errorf("RetryAfter = %s, %v; want %s", d, ok, tc.wait)
			}
			if !tc.permanent {
				if err := s.Write(t.Context(), batchOf("a")); err != nil {
					t.Errorf("retry: %v", err)
				}
			}
		})
	}
}

func TestAuthFailure(t *testing.T) {
	const key, user, pass = "c2VjcmV0LWlkOnNlY3JldC1rZXk=", "writer", "hunter2-pass"
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		secret string
	}{
		{"WrongAPIKey", func(c *Config) { c.APIKey = "d3Jvbmc6a2V5LXZhbHVlLXNlY3JldA==" }, "d3Jvbmc6a2V5LXZhbHVlLXNlY3JldA=="},
		{"WrongPassword", func(c *Config) { c.Username, c.Password = user, "wrong-password-xyz" }, "wrong-password-xyz"},
		{"NoCredentials", func(c *Config) {}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := estest.New(t)
			srv.RequireAPIKey(key)
			srv.RequireBasic(user, pass)
			cfg := testConfig(srv)
			tc.cfg(&cfg)
			s := newSink(t, cfg)
			err := s.Write(t.Context(), batchOf("a"))
			if err == nil || !pipeline.IsPermanent(err) {
				t.Fatalf("Write = %v, want a permanent error", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "401") || !strings.Contains(msg, "HWCAUDIT_ELASTICSEARCH_API_KEY") {
				t.Errorf("error %q does not explain the failure", msg)
			}
			for _, secret := range []string{tc.secret, key, pass} {
				if secret != "" && strings.Contains(msg, secret) {
					t.Errorf("error %q contains a secret", msg)
				}
			}
		})
	}
	t.Run("RightCredentials", func(t *testing.T) {
		srv := estest.New(t)
		srv.RequireAPIKey(key)
		srv.RequireBasic(user, pass)
		cfg := testConfig(srv)
		cfg.APIKey = key
		if err := newSink(t, cfg).Write(t.Context(), batchOf("a")); err != nil {
			t.Fatalf("api key: %v", err)
		}
		cfg = testConfig(srv)
		cfg.Username, cfg.Password = user, pass
		if err := newSink(t, cfg).Write(t.Context(), batchOf("b")); err != nil {
			t.Fatalf("basic: %v", err)
		}
	})
}

func TestBulkSplit(t *testing.T) {
	mk := func(n, size int) *pipeline.Batch {
		b := &pipeline.Batch{Stream: "split"}
		for i := range n {
			id := fmt.Sprintf("e%03d", i)
			d := fmt.Sprintf(`{"@timestamp":"2024-05-01T00:00:00Z","event":{"id":%q},"message":%q}`, id, strings.Repeat("x", size))
			b.Events = append(b.Events, ev(id, "huaweicloud.swr_audit", d))
		}
		return b
	}
	for _, tc := range []struct {
		name              string
		maxBytes, maxDocs int
		n, size           int
		wantReqs          int
	}{
		{"ByCount", 1 << 20, 10, 95, 10, 10},
		{"ByBytes", 4096, 1000, 40, 900, 0},  // ~1.1 KiB per item: 3 per request
		{"OneBigDoc", 1000, 1000, 3, 900, 3}, // each item exceeds the limit with its action line
		{"Exact", 1 << 20, 50, 100, 10, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := estest.New(t)
			cfg := testConfig(srv)
			cfg.BulkMaxBytes, cfg.BulkMaxDocs = tc.maxBytes, tc.maxDocs
			s := newSink(t, cfg)
			if err := s.Write(t.Context(), mk(tc.n, tc.size)); err != nil {
				t.Fatal(err)
			}
			st := srv.Stats()
			if st.MaxItems > tc.maxDocs {
				t.Errorf("a request held %d items, limit %d", st.MaxItems, tc.maxDocs)
			}
			if tc.name != "OneBigDoc" && st.MaxBodyBytes > tc.maxBytes {
				t.Errorf("a request body was %d bytes, limit %d", st.MaxBodyBytes, tc.maxBytes)
			}
			if tc.name != "ByBytes" && st.BulkRequests != tc.wantReqs {
				t.Errorf("%d requests, want %d", st.BulkRequests, tc.wantReqs)
			}
			if n := len(srv.Docs(swrStream)); n != tc.n {
				t.Errorf("stored %d, want %d", n, tc.n)
			}
			// Packed: no two consecutive requests could have been one.
			if tc.name == "ByBytes" && st.BulkRequests > tc.n/2+1 {
				t.Errorf("%d requests for %d items: badly packed", st.BulkRequests, tc.n)
			}
		})
	}
}

func TestGzip(t *testing.T) {
	srv := estest.New(t)
	cfg := testConfig(srv)
	cfg.Compress = true
	s := newSink(t, cfg)
	if err := s.Write(t.Context(), batchOf("a", "b")); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.GzipRequests != 1 || st.BulkRequests != 1 {
		t.Errorf("stats %+v, want one gzip bulk request", st)
	}
	if got := ids(t, srv.Docs(swrStream)); got != "a,b" {
		t.Errorf("stored %s", got)
	}
}

func TestDataStreamFields(t *testing.T) {
	srv := estest.New(t)
	cfg := testConfig(srv)
	cfg.Namespace = "prod"
	s := newSink(t, cfg)
	b := &pipeline.Batch{Stream: "ds", Events: []pipeline.Event{
		ev("plain", "huaweicloud.swr_audit", `{"@timestamp":"2024-05-01T00:00:00Z","event":{"id":"plain"}}`),
		ev("own", "huaweicloud.swr_audit", `{"@timestamp":"2024-05-01T00:00:00Z","data_stream":{"type":"logs","dataset":"huaweicloud.swr_audit","namespace":"prod"},"event":{"id":"own"}}`),
		ev("mentions", "huaweicloud.swr_audit", `{"@timestamp":"2024-05-01T00:00:00Z","event":{"id":"mentions"},"message":"data_stream","x":"\"data_stream\""}`),
		ev("multiline", "Huawei-Cloud/DBSS", "{\n  \"@timestamp\": \"2024-05-01T00:00:00Z\",\n  \"event\": {\"id\": \"multiline\"}\n}\n"),
		ev("nodataset", "", `{"@timestamp":"2024-05-01T00:00:00Z","event":{"id":"nodataset"} }`),
	}}
	if err := s.Write(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ stream, dataset string }{
		"plain":     {"logs-huaweicloud.swr_audit-prod", "huaweicloud.swr_audit"},
		"own":       {"logs-huaweicloud.swr_audit-prod", "huaweicloud.swr_audit"},
		"mentions":  {"logs-huaweicloud.swr_audit-prod", "huaweicloud.swr_audit"},
		"multiline": {"logs-huawei_cloud_dbss-prod", "huawei_cloud_dbss"},
		"nodataset": {"logs-generic-prod", "generic"},
	}
	found := 0
	for _, name := range srv.Targets() {
		if !srv.IsDataStream(name) {
			t.Errorf("%s is not a data stream", name)
		}
		for _, d := range srv.Docs(name) {
			var v struct {
				Event      struct{ ID string } `json:"event"`
				DataStream struct {
					Type, Dataset, Namespace string
				} `json:"data_stream"`
			}
			if err := json.Unmarshal(d, &v); err != nil {
				t.Fatalf("stored %q: %v", d, err)
			}
			w, ok := want[v.Event.ID]
			if !ok {
				t.Errorf("unexpected %s", v.Event.ID)
				continue
			}
			found++
			if name != w.stream || v.DataStream.Type != "logs" || v.DataStream.Dataset != w.dataset || v.DataStream.Namespace != "prod" {
				t.Errorf("%s in %s with data_stream %+v, want %s / %s", v.Event.ID, name, v.DataStream, w.stream, w.dataset)
			}
			if n := bytes.Count(d, []byte(`"data_stream":{`)); n != 1 {
				t.Errorf("%s has %d data_stream objects: %s", v.Event.ID, n, d)
			}
		}
	}
	if found != len(want) {
		t.Errorf("found %d documents, want %d", found, len(want))
	}
	if b.Events[0].Doc[len(b.Events[0].Doc)-2] != '}' || bytes.Contains(b.Events[0].Doc, []byte("data_stream")) {
		t.Errorf("Write modified the event document: %s", b.Events[0].Doc)
	}
}

func TestPlainIndexUntouched(t *testing.T) {
	srv := estest.New(t)
	cfg := testConfig(srv)
	cfg.Target = "audit-{namespace}"
	s := newSink(t, cfg)
	b := batchOf("a")
	if err := s.Write(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	docs := srv.Docs("audit-default")
	if len(docs) != 1 || !bytes.Equal(docs[0], b.Events[0].Doc) {
		t.Errorf("stored %q, want the document unchanged", docs)
	}
}

func TestLocalRejections(t *testing.T) {
	srv := estest.New(t)
	cfg := testConfig(srv)
	cfg.BulkMaxBytes = 1000
	s := newSink(t, cfg)
	b := batchOf("ok1", "x", "x", "x", "x", "ok2")
	b.Events[1] = ev("", "d", `{}`)
	b.Events[2] = ev(strings.Repeat("i", 513), "d", `{}`)
	b.Events[3] = ev("big", "d", `{"m":"`+strings.Repeat("x", 1000)+`"}`)
	b.Events[4] = ev("notobj", "d", `[1,2]`)
	err := s.Write(t.Context(), b)
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) || len(rej.Reasons) != 4 {
		t.Fatalf("Write = %v, want 4 rejections", err)
	}
	for i := 1; i <= 4; i++ {
		if rej.Reasons[i] == "" {
			t.Errorf("event %d not rejected: %v", i, rej.Reasons)
		}
	}
	if got := ids(t, srv.Docs(swrStream)); got != "ok1,ok2" {
		t.Errorf("stored %s", got)
	}
}

func TestWriteAfterClose(t *testing.T) {
	srv := estest.New(t)
	s := newSink(t, testConfig(srv))
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), batchOf("a")); !pipeline.IsPermanent(err) {
		t.Errorf("Write after Close = %v, want permanent", err)
	}
}

func TestSetup(t *testing.T) {
	srv := estest.New(t)
	cfg := testConfig(srv)
	cfg.Setup = true
	newSink(t, cfg) // New runs Setup
	comp := srv.ComponentTemplate(ComponentTemplateName)
	idx := srv.IndexTemplate(IndexTemplateName)
	if comp == nil || idx == nil {
		t.Fatalf("templates not installed: component %v, index %v", comp != nil, idx != nil)
	}
	var it struct {
		IndexPatterns []string  `json:"index_patterns"`
		DataStream    *struct{} `json:"data_stream"`
		Priority      int
		ComposedOf    []string `json:"composed_of"`
	}
	if err := json.Unmarshal(idx, &it); err != nil {
		t.Fatal(err)
	}
	if len(it.IndexPatterns) != 1 || it.IndexPatterns[0] != "logs-huaweicloud.*-*" || it.DataStream == nil || it.Priority <= 100 {
		t.Errorf("index template %s", idx)
	}
	if !strings.Contains(strings.Join(it.ComposedOf, ","), "logs@mappings,logs@settings,ecs@mappings,"+ComponentTemplateName) {
		t.Errorf("composed_of %v", it.ComposedOf)
	}
	var ct struct {
		Template struct {
			Mappings struct {
				Properties map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(comp, &ct); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"swr.audit_id", "taurusdb.size_kb", "taurusdb.begin_time", "dbss.ip", "artifact.data", "cts.record_time", "cts.user.access_key_id", "cts.truncated"} {
		v := any(ct.Template.Mappings.Properties["huaweicloud"])
		for _, p := range strings.Split(path, ".") {
			v = v.(map[string]any)["properties"].(map[string]any)[p]
		}
		if v == nil || v.(map[string]any)["type"] == "" {
			t.Errorf("huaweicloud.%s has no explicit mapping", path)
		}
	}
	// Idempotent.
	s := newSink(t, cfg)
	if err := s.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().TemplatePuts; n != 6 {
		t.Errorf("%d template PUTs, want 6", n)
	}
}

func TestSetupAuthFailure(t *testing.T) {
	srv := estest.New(t)
	srv.RequireAPIKey("good")
	cfg := testConfig(srv)
	cfg.APIKey = "bad-secret-key"
	cfg.Setup = true
	_, err := New(t.Context(), cfg)
	if err == nil || !pipeline.IsPermanent(err) || strings.Contains(err.Error(), "bad-secret-key") {
		t.Errorf("New = %v, want a permanent error without the key", err)
	}
}

func TestValidate(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("x"), 0o600)
	good := Config{URLs: []string{"https://es:9200"}, Target: "logs-{dataset}-{namespace}", Namespace: "default",
		BulkMaxBytes: 1, BulkMaxDocs: 1, ItemRetries: 3, RetryBackoff: time.Second, Timeout: time.Second, CAFile: ca}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		env    string
		mutate func(*Config)
	}{
		{"ELASTICSEARCH_URL", func(c *Config) { c.URLs = nil }},
		{"ELASTICSEARCH_URL", func(c *Config) { c.URLs = []string{"es:9200"} }},
		{"HWCAUDIT_ELASTICSEARCH_API_KEY", func(c *Config) { c.APIKey, c.Username, c.Password = "k", "u", "p" }},
		{"HWCAUDIT_ELASTICSEARCH_PASSWORD", func(c *Config) { c.Username = "u" }},
		{"HWCAUDIT_ELASTICSEARCH_USERNAME", func(c *Config) { c.Password = "p" }},
		{"HWCAUDIT_ELASTICSEARCH_CA_FILE", func(c *Config) { c.CAFile = ca + ".missing" }},
		{"HWCAUDIT_ELASTICSEARCH_NAMESPACE", func(c *Config) { c.Namespace = "Prod" }},
		{"HWCAUDIT_ELASTICSEARCH_NAMESPACE", func(c *Config) { c.Namespace = "a-b" }},
		{"HWCAUDIT_ELASTICSEARCH_TARGET", func(c *Config) { c.Target = "Audit" }},
		{"HWCAUDIT_ELASTICSEARCH_TARGET", func(c *Config) { c.Target = "logs-{stream}" }},
		{"HWCAUDIT_ELASTICSEARCH_TARGET", func(c *Config) { c.Target = "logs-audit" }},
		{"HWCAUDIT_ELASTICSEARCH_SETUP", func(c *Config) { c.Target, c.Setup = "audit", true }},
		{"HWCAUDIT_ELASTICSEARCH_BULK_MAX_BYTES", func(c *Config) { c.BulkMaxBytes = 0 }},
		{"HWCAUDIT_ELASTICSEARCH_BULK_MAX_DOCS", func(c *Config) { c.BulkMaxDocs = 0 }},
		{"HWCAUDIT_ELASTICSEARCH_ITEM_RETRIES", func(c *Config) { c.ItemRetries = -1 }},
		{"HWCAUDIT_ELASTICSEARCH_RETRY_BACKOFF", func(c *Config) { c.RetryBackoff = -1 }},
	} {
		c := good
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.env+":") {
			t.Errorf("%s: Validate = %v, want an error naming it", tc.env, err)
		}
	}
	c := good
	c.URLs = []string{"ftp://user:s3cret@es"}
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Validate = %v, want an error without the URL's password", err)
	}
}

// TestRealCluster writes to a real Elasticsearch when
// HWCAUDIT_TEST_ELASTICSEARCH_URL is set (with HWCAUDIT_ELASTICSEARCH_API_KEY
// or _USERNAME/_PASSWORD and _CA_FILE as needed).
func TestRealCluster(t *testing.T) {
	url := os.Getenv("HWCAUDIT_TEST_ELASTICSEARCH_URL")
	if url == "" {
		t.Skip("HWCAUDIT_TEST_ELASTICSEARCH_URL is not set: skipping the test against a real Elasticsearch cluster")
	}
	cfg := Config{
		URLs:         strings.Split(url, ","),
		APIKey:       os.Getenv("HWCAUDIT_ELASTICSEARCH_API_KEY"),
		Username:     os.Getenv("HWCAUDIT_ELASTICSEARCH_USERNAME"),
		Password:     os.Getenv("HWCAUDIT_ELASTICSEARCH_PASSWORD"),
		CAFile:       os.Getenv("HWCAUDIT_ELASTICSEARCH_CA_FILE"),
		Target:       "logs-{dataset}-{namespace}",
		Namespace:    fmt.Sprintf("hwcaudittest%d", time.Now().UnixNano()),
		BulkMaxBytes: 1 << 20,
		BulkMaxDocs:  50,
		ItemRetries:  3,
		RetryBackoff: 200 * time.Millisecond,
		Timeout:      30 * time.Second,
		Setup:        true,
	}
	cfg.TLSInsecureSkipVerify = os.Getenv("HWCAUDIT_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY") == "true"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stream := "logs-huaweicloud.swr_audit-" + cfg.Namespace
	t.Cleanup(func() {
		s.client.Indices.DeleteDataStream([]string{stream})
		s.Close(context.Background())
	})
	b := &pipeline.Batch{Stream: "itest"}
	for i := range 120 {
		id := fmt.Sprintf("itest-%d", i)
		b.Events = append(b.Events, ev(id, "huaweicloud.swr_audit", fmt.Sprintf(
			`{"@timestamp":"2024-05-01T00:00:%02dZ","event":{"id":%q,"dataset":"huaweicloud.swr_audit"},"huaweicloud":{"swr":{"audit_id":"%d"}}}`, i%60, id, i)))
	}
	for i := range 2 { // the second write is all 409s
		if err := s.Write(ctx, b); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	bad := &pipeline.Batch{Stream: "itest", Events: []pipeline.Event{
		ev("itest-bad", "huaweicloud.swr_audit", `{"@timestamp":"2024-05-01T00:00:00Z","huaweicloud":{"taurusdb":{"size_kb":"lots"}}}`),
	}}
	bad.Events[0].Dataset = "huaweicloud.swr_audit"
	var rej *pipeline.RejectedError
	if err := s.Write(ctx, bad); !errors.As(err, &rej) {
		t.Errorf("mapping error: Write = %v, want *pipeline.RejectedError", err)
	}
	s.client.Indices.Refresh(s.client.Indices.Refresh.WithIndex(stream))
	res, err := s.client.Count(s.client.Count.WithIndex(stream), s.client.Count.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var c struct{ Count int }
	json.NewDecoder(res.Body).Decode(&c)
	if c.Count != 120 {
		t.Errorf("%s holds %d documents, want 120", stream, c.Count)
	}
}

func BenchmarkWrite(b *testing.B) {
	srv := estest.New(b)
	cfg := testConfig(srv)
	s := newSink(b, cfg)
	const per = 500
	batches := make([]*pipeline.Batch, 0, 64)
	n := 0
	mk := func() *pipeline.Batch {
		bt := &pipeline.Batch{Stream: "bench"}
		for range per {
			id := fmt.Sprintf("bench-%09d", n)
			n++
			bt.Events = append(bt.Events, ev(id, "huaweicloud.swr_audit", fmt.Sprintf(
				`{"@timestamp":"2024-05-01T00:00:00Z","event":{"id":%q,"dataset":"huaweicloud.swr_audit","action":"pull"},"user":{"name":"alice"},"huaweicloud":{"swr":{"repository":"library/nginx","tag":"1.25","instance_id":"7f3c2a10"}},"message":"pull library/nginx:1.25"}`, id)))
		}
		return bt
	}
	for range 64 {
		batches = append(batches, mk())
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		// Past the first round the server answers 409s, which cost the
		// sink the same work.
		if err := s.Write(context.Background(), batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*per)/b.Elapsed().Seconds(), "records/s")
}
