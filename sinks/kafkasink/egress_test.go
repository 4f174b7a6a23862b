package kafkasink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress/egresstest"
)

// TestUntrustedBrokerIsPermanent: a broker whose certificate does not
// verify is a permanent error naming the brokers and the fix, not a network
// fault retried until the budget runs out.
func TestUntrustedBrokerIsPermanent(t *testing.T) {
	cert, _, _ := testCA(t)
	_, addr := newCluster(t,
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.SeedTopics(1, "audit"))
	s := newSink(t, config(t, addr, "audit", map[string]string{
		"HWCAUDIT_KAFKA_TLS":           "true",
		"HWCAUDIT_KAFKA_WRITE_TIMEOUT": "2s",
	}))
	err := write(t, s, testBatch("tls/c", 1, 10))
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "HWCAUDIT_KAFKA_TLS_CA_FILE") {
		t.Errorf("Write = %v, want a permanent error naming %s and HWCAUDIT_KAFKA_TLS_CA_FILE", err, addr)
	}
}

// TestSASLWithoutTLSNeedsOptIn: SASL in the clear is refused unless every
// broker is on loopback or HWCAUDIT_KAFKA_ALLOW_INSECURE is set.
func TestSASLWithoutTLSNeedsOptIn(t *testing.T) {
	c := Config{Brokers: []string{"kafka-0.internal:9092"}, Topic: "t", Compression: "zstd", BatchSize: 1, BatchBytes: 1 << 20,
		BatchTimeout: 1, MaxMessageBytes: 1 << 20, WriteTimeout: 1, SASLMechanism: "PLAIN", SASLUsername: "u", SASLPassword: "p-secret"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "HWCAUDIT_KAFKA_ALLOW_INSECURE") || strings.Contains(err.Error(), "p-secret") {
		t.Errorf("Validate(SASL without TLS) = %v, want a refusal naming HWCAUDIT_KAFKA_ALLOW_INSECURE", err)
	}
	c.AllowInsecure = true
	if err := c.Validate(); err != nil || len(c.InsecureSettings()) != 1 {
		t.Errorf("with the opt-in: %v, insecure settings %q", err, c.InsecureSettings())
	}
	c.AllowInsecure = false
	c.Brokers = []string{"127.0.0.1:9092", "localhost:9093"}
	if err := c.Validate(); err != nil {
		t.Errorf("SASL on loopback: %v", err)
	}
	c.Brokers = []string{"kafka:9093"}
	c.TLS = true
	if err := c.Validate(); err != nil {
		t.Errorf("SASL_SSL: %v", err)
	}
}

// TestErrorsHoldNoPassword: whatever a broker or the client library puts
// in an error, the SASL password never reaches the sink's error.
func TestErrorsHoldNoPassword(t *testing.T) {
	const pw = "kafka/pass+word=secret"
	s := &Sink{cfg: Config{Brokers: []string{"b:9093"}, SASLMechanism: "PLAIN", SASLUsername: "u", SASLPassword: pw}}
	s.secrets = s.cfg.secrets()
	b := &pipeline.Batch{Stream: "s"}
	msgs := []kafka.Message{{Topic: "t"}}
	for form, echo := range egresstest.SecretForms(pw) {
		for _, inner := range []error{
			fmt.Errorf("broker said %s: %w", echo, kafka.SASLAuthenticationFailed),
			errors.New("dial: " + echo),
		} {
			err := s.classify(b, msgs, inner)
			if strings.Contains(err.Error(), echo) || strings.Contains(err.Error(), pw) {
				t.Errorf("%s: error shows the password: %v", form, err)
			}
		}
	}
}
