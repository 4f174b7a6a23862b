package kafkasink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/kafkasink/kafkatest"
	"github.com/hwcaudit/hwcaudit/sinks/sinktest"
)

// config returns the environment defaults with brokers and topic set, the
// way the exporter would build it.
func config(t testing.TB, addr, topic string, env map[string]string) Config {
	t.Helper()
	m := map[string]string{"HWCAUDIT_KAFKA_BROKERS": addr}
	if topic != "" {
		m["HWCAUDIT_KAFKA_TOPIC"] = topic
	}
	for k, v := range env {
		m[k] = v
	}
	var c Config
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &c, Lookuper: envconfig.MapLookuper(m)}); err != nil {
		t.Fatal(err)
	}
	return c
}

func newCluster(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()[0]
}

func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func values(msgs []kafka.Message) [][]byte {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.Value
	}
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestConformance(t *testing.T) {
	const maxMsg = 64 << 10
	env := map[string]string{"HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES": strconv.Itoa(maxMsg)}

	t.Run("OneTopicOnePartition", func(t *testing.T) {
		// The cluster persists to a directory, so Down/Up can stop it and
		// start a new one on the same port without losing what it holds.
		var (
			mu      sync.Mutex
			cluster *kfake.Cluster
			port    int
			dir     string
		)
		start := func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(1, "audit"))
			if err != nil {
				t.Fatalf("start kfake on port %d: %v", port, err)
			}
			mu.Lock()
			cluster = c
			mu.Unlock()
		}
		sinktest.Run(t, sinktest.Harness{
			New: func(t *testing.T) (pipeline.Sink, sinktest.ReadAll) {
				port, dir = freePort(t), t.TempDir()
				start(t)
				t.Cleanup(func() {
					mu.Lock()
					defer mu.Unlock()
					cluster.Close()
				})
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
				s, err := New(config(t, addr, "audit", env))
				if err != nil {
					t.Fatal(err)
				}
				return s, func(t *testing.T) [][]byte { return values(kafkatest.ReadAll(t, addr, nil)) }
			},
			Ordered:       true,
			MaxEventBytes: maxMsg - 512,
			Down: func(t *testing.T) {
				mu.Lock()
				defer mu.Unlock()
				cluster.Close()
			},
			Up: start,
		})
	})

	t.Run("TemplatedTopics", func(t *testing.T) {
		env := map[string]string{
			"HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES":  strconv.Itoa(maxMsg),
			"HWCAUDIT_KAFKA_AUTO_CREATE_TOPICS": "true",
		}
		sinktest.Run(t, sinktest.Harness{
			New: func(t *testing.T) (pipeline.Sink, sinktest.ReadAll) {
				_, addr := newCluster(t, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
				s, err := New(config(t, addr, "hwc.{dataset}", env))
				if err != nil {
					t.Fatal(err)
				}
				return s, func(t *testing.T) [][]byte {
					msgs := kafkatest.ReadAll(t, addr, nil)
					for _, m := range msgs {
						if ds := string(header(m, HeaderDataset)); m.Topic != "hwc."+ds {
							t.Errorf("record of dataset %q in topic %q", ds, m.Topic)
						}
					}
					return values(msgs)
				}
			},
			// Three partitions: order is kept per key only.
			MaxEventBytes: maxMsg - 512,
		})
	})
}

func header(m kafka.Message, key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

func testBatch(stream string, n, size int) *pipeline.Batch {
	b := &pipeline.Batch{Stream: stream}
	for i := range n {
		id := fmt.Sprintf("%s#%d", stream, i)
		doc := fmt.Sprintf(`{"event":{"id":%q,"dataset":"huaweicloud.swr_audit"},"message":%q}`, id, strings.Repeat("m", size))
		b.Events = append(b.Events, pipeline.Event{
			ID: id, Dataset: "huaweicloud.swr_audit", Doc: []byte(doc),
			Timestamp: time.Date(2024, 5, 1, 12, 0, i, 0, time.UTC),
		})
	}
	return b
}

func write(t testing.TB, s *Sink, b *pipeline.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return s.Write(ctx, b)
}

func TestRecordShape(t *testing.T) {
	_, addr := newCluster(t, kfake.SeedTopics(4, "huaweicloud.swr_audit"))
	s := newSink(t, config(t, addr, "", nil)) // default topic "{dataset}"
	b := testBatch("swr/ins-1/pull", 20, 10)
	if err := write(t, s, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := kafkatest.ReadAll(t, addr, nil)
	if len(got) != len(b.Events) {
		t.Fatalf("got %d records, want %d", len(got), len(b.Events))
	}
	byID := make(map[string]pipeline.Event)
	for _, ev := range b.Events {
		byID[ev.ID] = ev
	}
	part := make(map[string]int)
	for _, m := range got {
		ev, ok := byID[string(m.Key)]
		if !ok {
			t.Fatalf("record key %q is not an event.id", m.Key)
		}
		if m.Topic != "huaweicloud.swr_audit" {
			t.Errorf("topic %q, want huaweicloud.swr_audit", m.Topic)
		}
		if string(m.Value) != string(ev.Doc) {
			t.Errorf("value %q, want %q", m.Value, ev.Doc)
		}
		if h := string(header(m, HeaderDataset)); h != ev.Dataset {
			t.Errorf("header %s = %q, want %q", HeaderDataset, h, ev.Dataset)
		}
		if h := string(header(m, HeaderStream)); h != b.Stream {
			t.Errorf("header %s = %q, want %q", HeaderStream, h, b.Stream)
		}
		if !m.Time.Equal(ev.Timestamp) {
			t.Errorf("record time %s, want %s", m.Time, ev.Timestamp)
		}
		part[string(m.Key)] = m.Partition
	}
	// The same event.id lands on the same partition again.
	s2 := newSink(t, config(t, addr, "", nil))
	if err := write(t, s2, b); err != nil {
		t.Fatal(err)
	}
	s2.Close(context.Background())
	for _, m := range kafkatest.ReadAll(t, addr, nil) {
		if p := part[string(m.Key)]; p != m.Partition {
			t.Errorf("key %q on partition %d and %d", m.Key, p, m.Partition)
		}
	}
	if len(slices.Compact(slices.Sorted(func(yield func(int) bool) {
		for _, p := range part {
			if !yield(p) {
				return
			}
		}
	}))) < 2 {
		t.Errorf("20 keys all on one partition of 4: %v", part)
	}
}

func TestAcksAll(t *testing.T) {
	c, addr := newCluster(t, kfake.SeedTopics(1, "audit"))
	var mu sync.Mutex
	var acks []int16
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		acks = append(acks, req.(*kmsg.ProduceRequest).Acks)
		mu.Unlock()
		return nil, nil, false
	})
	s := newSink(t, config(t, addr, "audit", nil))
	for i := range 3 {
		if err := write(t, s, testBatch(fmt.Sprint("acks/", i), 5, 10)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acks) == 0 {
		t.Fatal("no produce request seen")
	}
	for _, a := range acks {
		if a != -1 {
			t.Errorf("produce request with acks=%d, want -1 (all)", a)
		}
	}
}

func TestCompression(t *testing.T) {
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			_, addr := newCluster(t, kfake.SeedTopics(1, "audit"))
			s := newSink(t, config(t, addr, "audit", map[string]string{"HWCAUDIT_KAFKA_COMPRESSION": codec}))
			b := testBatch("codec/"+codec, 50, 500)
			if err := write(t, s, b); err != nil {
				t.Fatal(err)
			}
			s.Close(context.Background())
			got := kafkatest.ReadAll(t, addr, nil)
			if len(got) != len(b.Events) {
				t.Fatalf("got %d records, want %d", len(got), len(b.Events))
			}
			for i, m := range got {
				if string(m.Value) != string(b.Events[i].Doc) || string(m.Key) != b.Events[i].ID {
					t.Errorf("record %d: key %q value %.60q, want %q %.60q", i, m.Key, m.Value, b.Events[i].ID, b.Events[i].Doc)
				}
			}
		})
	}
}

func TestBrokerMessageTooLarge(t *testing.T) {
	// The broker's limit is below the sink's: only the broker's
	// MESSAGE_TOO_LARGE can catch the big record.
	_, addr := newCluster(t, kfake.SeedTopics(1, "audit"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "16384"}))
	s := newSink(t, config(t, addr, "audit", map[string]string{"HWCAUDIT_KAFKA_COMPRESSION": "none"}))
	b := testBatch("big/a", 5, 100)
	b.Events[2] = testBatch("big/a", 3, 32<<10).Events[2]
	err := write(t, s, b)
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write = %v, want *pipeline.RejectedError", err)
	}
	if len(rej.Reasons) != 1 || !strings.Contains(rej.Reasons[2], "MESSAGE_TOO_LARGE") {
		t.Fatalf("Reasons = %v, want index 2 with MESSAGE_TOO_LARGE", rej.Reasons)
	}
	s.Close(context.Background())
	var ids []string
	for _, m := range kafkatest.ReadAll(t, addr, nil) {
		ids = append(ids, string(m.Key))
	}
	want := []string{"big/a#0", "big/a#1", "big/a#3", "big/a#4"}
	if !slices.Equal(ids, want) {
		t.Errorf("stored %v, want %v", ids, want)
	}
}

func TestMissingTopic(t *testing.T) {
	_, addr := newCluster(t)
	s := newSink(t, config(t, addr, "no.such.topic", nil))
	err := write(t, s, testBatch("missing/a", 3, 10))
	if err == nil {
		t.Fatal("Write to a missing topic returned nil")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "no.such.topic") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q does not name the missing topic", err)
	}
	if pipeline.IsPermanent(err) {
		t.Errorf("missing topic is permanent; want retryable so creating the topic heals it")
	}
	var rej *pipeline.RejectedError
	if errors.As(err, &rej) {
		t.Errorf("missing topic rejected events: %v", err)
	}
}

func TestSASL(t *testing.T) {
	const user, pass = "dms-user", "s3cret-Passw0rd"
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, addr := newCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, user, pass), kfake.SeedTopics(1, "audit"))
			env := map[string]string{
				"HWCAUDIT_KAFKA_SASL_MECHANISM": mech,
				"HWCAUDIT_KAFKA_SASL_USERNAME":  user,
				"HWCAUDIT_KAFKA_SASL_PASSWORD":  pass,
			}
			cfg := config(t, addr, "audit", env)
			if strings.Contains(fmt.Sprint(cfg), pass) || strings.Contains(fmt.Sprintf("%+v %#v", cfg, cfg), pass) {
				t.Errorf("formatted Config shows the password")
			}
			s := newSink(t, cfg)
			b := testBatch("sasl/a", 5, 10)
			if err := write(t, s, b); err != nil {
				t.Fatal(err)
			}
			s.Close(context.Background())
			m, err := cfg.saslMechanism()
			if err != nil {
				t.Fatal(err)
			}
			if got := kafkatest.ReadAll(t, addr, m); len(got) != len(b.Events) {
				t.Errorf("got %d records, want %d", len(got), len(b.Events))
			}

			const wrong = "wrong-Passw0rd-xyz"
			env["HWCAUDIT_KAFKA_SASL_PASSWORD"] = wrong

			// kfake drops the connection on a wrong password; the error
			// must still fail the write without showing the password.
			bad := newSink(t, config(t, addr, "audit", env))
			err = write(t, bad, testBatch("sasl/b", 2, 10))
			if err == nil {
				t.Fatal("Write with a wrong password returned nil")
			}
			t.Logf("kfake: %v", err)
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pass) {
				t.Errorf("error shows the password: %v", err)
			}

			// Apache Kafka answers SaslAuthenticate with error 58 first.
			c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
				resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
				msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
				resp.ErrorMessage = &msg
				return resp, nil, true
			})
			bad = newSink(t, config(t, addr, "audit", env))
			err = write(t, bad, testBatch("sasl/c", 2, 10))
			if err == nil {
				t.Fatal("Write with a wrong password returned nil")
			}
			t.Logf("kafka: %v", err)
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pass) {
				t.Errorf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), "SASL") || !strings.Contains(err.Error(), user) {
				t.Errorf("error %q does not say the SASL login of %s failed", err, user)
			}
			if !pipeline.IsPermanent(err) {
				t.Errorf("refused login is retryable; want permanent")
			}
		})
	}
}

func TestDownUpNoLoss(t *testing.T) {
	port, dir := freePort(t), t.TempDir()
	start := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(1, "audit"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := start()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := newSink(t, config(t, addr, "audit", nil))
	if err := write(t, s, testBatch("down/a", 5, 10)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	during := testBatch("down/b", 5, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := s.Write(ctx, during)
	cancel()
	if err == nil {
		t.Fatal("Write while the broker is down returned nil")
	}
	if pipeline.IsPermanent(err) {
		t.Errorf("broker down is permanent: %v", err)
	}
	c = start()
	defer c.Close()
	if err := write(t, s, during); err != nil {
		t.Fatalf("Write after the broker is back: %v", err)
	}
	s.Close(context.Background())
	if got := kafkatest.ReadAll(t, addr, nil); len(got) < 10 {
		t.Errorf("got %d records, want at least 10", len(got))
	}
}

func TestWriteAfterClose(t *testing.T) {
	_, addr := newCluster(t, kfake.SeedTopics(1, "audit"))
	s := newSink(t, config(t, addr, "audit", nil))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := write(t, s, testBatch("closed/a", 1, 1)); !pipeline.IsPermanent(err) || !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want permanent ErrClosed", err)
	}
}

func TestTopic(t *testing.T) {
	for _, tc := range []struct{ tmpl, dataset, want string }{
		{"{dataset}", "huaweicloud.swr_audit", "huaweicloud.swr_audit"},
		{"audit.{dataset}", "huaweicloud.cts", "audit.huaweicloud.cts"},
		{"fixed", "huaweicloud.cts", "fixed"},
		{"{dataset}", "", "unknown"},
		{"x.{dataset}", "a/b c:ü", "x.a_b_c___"},
	} {
		s := &Sink{cfg: Config{Topic: tc.tmpl}}
		if got := s.Topic(tc.dataset); got != tc.want {
			t.Errorf("Topic(%q) with %q = %q, want %q", tc.dataset, tc.tmpl, got, tc.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := config(t, "b:9092", "", nil)
	if c.Topic != "{dataset}" || c.Compression != "zstd" || c.MaxMessageBytes != 1<<20 || c.BatchBytes != 1<<20 ||
		c.BatchSize != 1000 || c.BatchTimeout != 5*time.Millisecond || c.TLS || c.TLSInsecureSkipVerify || c.AutoCreateTopics {
		t.Errorf("defaults = %v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults with brokers: %v", err)
	}
	c = config(t, "b1:9092, b2:9093", "", nil)
	if got := c.brokers(); !slices.Equal(got, []string{"b1:9092", "b2:9093"}) {
		t.Errorf("brokers = %q", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // the variable named in the error; "" for valid
	}{
		{map[string]string{"HWCAUDIT_KAFKA_BROKERS": ""}, "HWCAUDIT_KAFKA_BROKERS"},
		{map[string]string{"HWCAUDIT_KAFKA_BROKERS": "nohost"}, "HWCAUDIT_KAFKA_BROKERS"},
		{map[string]string{"HWCAUDIT_KAFKA_TOPIC": "a b"}, "HWCAUDIT_KAFKA_TOPIC"},
		{map[string]string{"HWCAUDIT_KAFKA_TOPIC": "{stream}"}, "HWCAUDIT_KAFKA_TOPIC"},
		{map[string]string{"HWCAUDIT_KAFKA_TOPIC": "hwc.{dataset}"}, ""},
		{map[string]string{"HWCAUDIT_KAFKA_COMPRESSION": "brotli"}, "HWCAUDIT_KAFKA_COMPRESSION"},
		{map[string]string{"HWCAUDIT_KAFKA_COMPRESSION": "none"}, ""},
		{map[string]string{"HWCAUDIT_KAFKA_BATCH_SIZE": "0"}, "HWCAUDIT_KAFKA_BATCH_SIZE"},
		{map[string]string{"HWCAUDIT_KAFKA_BATCH_BYTES": "1000"}, "HWCAUDIT_KAFKA_BATCH_BYTES"},
		{map[string]string{"HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES": "0"}, "HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES"},
		{map[string]string{"HWCAUDIT_KAFKA_BATCH_TIMEOUT": "0s"}, "HWCAUDIT_KAFKA_BATCH_TIMEOUT"},
		{map[string]string{"HWCAUDIT_KAFKA_TLS_CA_FILE": "/ca.pem"}, "HWCAUDIT_KAFKA_TLS_CA_FILE"},
		{map[string]string{"HWCAUDIT_KAFKA_TLS_INSECURE_SKIP_VERIFY": "true"}, "HWCAUDIT_KAFKA_TLS_INSECURE_SKIP_VERIFY"},
		{map[string]string{"HWCAUDIT_KAFKA_TLS": "true", "HWCAUDIT_KAFKA_TLS_CERT_FILE": "/c.pem"}, "HWCAUDIT_KAFKA_TLS_KEY_FILE"},
		{map[string]string{"HWCAUDIT_KAFKA_TLS": "true", "HWCAUDIT_KAFKA_TLS_INSECURE_SKIP_VERIFY": "true"}, ""},
		{map[string]string{"HWCAUDIT_KAFKA_SASL_MECHANISM": "GSSAPI", "HWCAUDIT_KAFKA_SASL_USERNAME": "u", "HWCAUDIT_KAFKA_SASL_PASSWORD": "topsecret"}, "HWCAUDIT_KAFKA_SASL_MECHANISM"},
		{map[string]string{"HWCAUDIT_KAFKA_SASL_MECHANISM": "PLAIN", "HWCAUDIT_KAFKA_SASL_PASSWORD": "topsecret"}, "HWCAUDIT_KAFKA_SASL_USERNAME"},
		{map[string]string{"HWCAUDIT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "HWCAUDIT_KAFKA_SASL_USERNAME": "u"}, "HWCAUDIT_KAFKA_SASL_PASSWORD"},
		{map[string]string{"HWCAUDIT_KAFKA_SASL_USERNAME": "u", "HWCAUDIT_KAFKA_SASL_PASSWORD": "topsecret"}, "HWCAUDIT_KAFKA_SASL_MECHANISM"},
		{map[string]string{"HWCAUDIT_KAFKA_SASL_MECHANISM": "scram-sha-256", "HWCAUDIT_KAFKA_SASL_USERNAME": "u", "HWCAUDIT_KAFKA_SASL_PASSWORD": "topsecret", "HWCAUDIT_KAFKA_TLS": "true"}, ""},
		{map[string]string{"HWCAUDIT_KAFKA_SASL_MECHANISM": "scram-sha-256", "HWCAUDIT_KAFKA_SASL_USERNAME": "u", "HWCAUDIT_KAFKA_SASL_PASSWORD": "topsecret"}, "HWCAUDIT_KAFKA_ALLOW_INSECURE"},
		{map[string]string{"HWCAUDIT_KAFKA_SASL_MECHANISM": "scram-sha-256", "HWCAUDIT_KAFKA_SASL_USERNAME": "u", "HWCAUDIT_KAFKA_SASL_PASSWORD": "topsecret", "HWCAUDIT_KAFKA_ALLOW_INSECURE": "true"}, ""},
	} {
		env := map[string]string{"HWCAUDIT_KAFKA_BROKERS": "kafka-1:9093,kafka-2:9093"}
		for k, v := range tc.env {
			env[k] = v
		}
		var c Config
		if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &c, Lookuper: envconfig.MapLookuper(env)}); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: Validate = %v, want nil", tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: Validate = %v, want an error naming %s", tc.env, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "topsecret"):
			t.Errorf("Validate error shows the password: %v", err)
		}
	}
}

func TestOversizedPrecheck(t *testing.T) {
	_, addr := newCluster(t, kfake.SeedTopics(1, "audit"))
	s := newSink(t, config(t, addr, "audit", map[string]string{"HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES": "4096", "HWCAUDIT_KAFKA_BATCH_BYTES": "4096"}))
	b := testBatch("pre/a", 3, 10)
	b.Events[0] = testBatch("pre/a", 1, 5000).Events[0]
	err := write(t, s, b)
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) || len(rej.Reasons) != 1 || !strings.Contains(rej.Reasons[0], "HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES") {
		t.Fatalf("Write = %v, want event 0 rejected naming HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES", err)
	}
	s.Close(context.Background())
	if got := kafkatest.ReadAll(t, addr, nil); len(got) != 2 {
		t.Errorf("got %d records, want 2", len(got))
	}
}

func BenchmarkWrite(b *testing.B) {
	_, addr := newCluster(b, kfake.SeedTopics(3, "audit"))
	for _, codec := range []string{"none", "zstd"} {
		b.Run(codec, func(b *testing.B) {
			s := newSink(b, config(b, addr, "audit", map[string]string{"HWCAUDIT_KAFKA_COMPRESSION": codec}))
			batch := testBatch("bench/a", 500, 600)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.Write(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch.Events))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
