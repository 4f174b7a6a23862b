package kafkasink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// DatasetPlaceholder in Config.Topic is replaced by the event's dataset.
const DatasetPlaceholder = "{dataset}"

// Config configures the Kafka sink. Validate is self-contained: it needs
// nothing from the caller beyond the filled struct.
type Config struct {
	// Brokers are the bootstrap brokers, host:port, comma-separated in the
	// environment. Required.
	Brokers []string `env:"HWCAUDIT_KAFKA_BROKERS"`

	// Topic is the destination topic. "{dataset}" is replaced by the event's
	// event.dataset (e.g. "huaweicloud.swr_audit"), with characters Kafka
	// does not allow in topic names replaced by '_'. Default "{dataset}".
	Topic string `env:"HWCAUDIT_KAFKA_TOPIC,default={dataset}"`

	// AutoCreateTopics lets the broker create a missing topic on first
	// write (if the broker allows it). Off by default: a missing topic is a
	// retryable error naming the topic, so records wait in the source until
	// an operator creates it. Default false.
	AutoCreateTopics bool `env:"HWCAUDIT_KAFKA_AUTO_CREATE_TOPICS,default=false"`

	// Compression is the codec for record batches: none, gzip, snappy, lz4
	// or zstd. Default zstd.
	Compression string `env:"HWCAUDIT_KAFKA_COMPRESSION,default=zstd"`

	// BatchSize is the most records sent to one partition in one produce
	// request. Default 1000.
	BatchSize int `env:"HWCAUDIT_KAFKA_BATCH_SIZE,default=1000"`

	// BatchBytes caps the uncompressed size of one partition's batch. It
	// must be at least MaxMessageBytes. Default 1048576 (1 MiB).
	BatchBytes int64 `env:"HWCAUDIT_KAFKA_BATCH_BYTES,default=1048576"`

	// BatchTimeout is how long an incomplete batch waits for more records
	// (from concurrent writes) before it is sent. Writes are synchronous, so
	// this is added to the latency of a write that does not fill a batch.
	// Default 5ms.
	BatchTimeout time.Duration `env:"HWCAUDIT_KAFKA_BATCH_TIMEOUT,default=5ms"`

	// MaxMessageBytes is the largest record the broker accepts (the broker's
	// message.max.bytes or the topic's max.message.bytes). Larger records,
	// counted uncompressed with key, headers and batch overhead, go to the
	// dead letter without being sent. Default 1048576 (1 MiB, Kafka's
	// default).
	MaxMessageBytes int `env:"HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES,default=1048576"`

	// WriteTimeout bounds one produce attempt. Default 10s.
	WriteTimeout time.Duration `env:"HWCAUDIT_KAFKA_WRITE_TIMEOUT,default=10s"`

	// TLS enables TLS to the brokers (SASL_SSL on Huawei DMS for Kafka).
	// Default false.
	TLS bool `env:"HWCAUDIT_KAFKA_TLS,default=false"`
	// TLSCAFile is a PEM file of CAs to trust instead of the system pool.
	TLSCAFile string `env:"HWCAUDIT_KAFKA_TLS_CA_FILE"`
	// TLSCertFile and TLSKeyFile are a PEM client certificate and key for
	// mutual TLS; both or neither.
	TLSCertFile string `env:"HWCAUDIT_KAFKA_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"HWCAUDIT_KAFKA_TLS_KEY_FILE"`
	// TLSInsecureSkipVerify disables verification of the broker's
	// certificate. For tests only. Default false.
	TLSInsecureSkipVerify bool `env:"HWCAUDIT_KAFKA_TLS_INSECURE_SKIP_VERIFY,default=false"`

	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables
	// SASL. Without TLS it is refused (PLAIN sends the password in the
	// clear, SCRAM the events) unless every broker is on loopback or
	// AllowInsecure is set.
	SASLMechanism string `env:"HWCAUDIT_KAFKA_SASL_MECHANISM"`
	// SASLUsername and SASLPassword are required with SASLMechanism.
	SASLUsername string `env:"HWCAUDIT_KAFKA_SASL_USERNAME"`
	SASLPassword string `env:"HWCAUDIT_KAFKA_SASL_PASSWORD"`

	// AllowInsecure accepts SASL without TLS to brokers that are not on
	// loopback. Default false.
	AllowInsecure bool `env:"HWCAUDIT_KAFKA_ALLOW_INSECURE,default=false"`
}

// InsecureSettings names the settings in force that weaken transport
// security, for a warning at start and for exporter check.
func (c Config) InsecureSettings() []string {
	var out []string
	if c.SASLMechanism != "" && !c.TLS {
		out = append(out, "HWCAUDIT_KAFKA_SASL_MECHANISM="+c.SASLMechanism+" without HWCAUDIT_KAFKA_TLS: the login and the events cross the network unencrypted")
	}
	if c.TLS && c.TLSInsecureSkipVerify {
		out = append(out, "HWCAUDIT_KAFKA_TLS_INSECURE_SKIP_VERIFY=true: the brokers' certificates are not verified")
	}
	return out
}

func (c Config) allLoopback() bool {
	for _, b := range c.brokers() {
		if !egress.IsLoopback(b) {
			return false
		}
	}
	return true
}

// secrets is what the sink's errors must never show.
func (c Config) secrets() *egress.Secrets {
	s := &egress.Secrets{}
	s.AddBasic(c.SASLUsername, c.SASLPassword)
	return s
}

// String describes the configuration without the SASL password, so that a
// logged Config never leaks it.
func (c Config) String() string {
	pw := ""
	if c.SASLPassword != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("{Brokers:%v Topic:%q AutoCreateTopics:%t Compression:%s BatchSize:%d BatchBytes:%d BatchTimeout:%s MaxMessageBytes:%d WriteTimeout:%s TLS:%t TLSCAFile:%q TLSCertFile:%q TLSKeyFile:%q TLSInsecureSkipVerify:%t SASLMechanism:%q SASLUsername:%q SASLPassword:%s AllowInsecure:%t}",
		c.Brokers, c.Topic, c.AutoCreateTopics, c.Compression, c.BatchSize, c.BatchBytes, c.BatchTimeout, c.MaxMessageBytes, c.WriteTimeout,
		c.TLS, c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile, c.TLSInsecureSkipVerify, c.SASLMechanism, c.SASLUsername, pw, c.AllowInsecure)
}

// GoString keeps %#v from printing the password too.
func (c Config) GoString() string { return "kafkasink.Config" + c.String() }

var codecs = map[string]kafka.Compression{
	"none":   0,
	"gzip":   kafka.Gzip,
	"snappy": kafka.Snappy,
	"lz4":    kafka.Lz4,
	"zstd":   kafka.Zstd,
}

// Validate reports the first setting that cannot work, naming its
// environment variable. It never includes the password.
func (c Config) Validate() error {
	brokers := c.brokers()
	if len(brokers) == 0 {
		return errors.New("HWCAUDIT_KAFKA_BROKERS: required, a comma-separated list of host:port")
	}
	for _, b := range brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return fmt.Errorf("HWCAUDIT_KAFKA_BROKERS: %q is not host:port", b)
		}
	}
	if err := validTopicTemplate(c.Topic); err != nil {
		return fmt.Errorf("HWCAUDIT_KAFKA_TOPIC: %w", err)
	}
	if _, ok := codecs[strings.ToLower(c.Compression)]; !ok {
		return fmt.Errorf("HWCAUDIT_KAFKA_COMPRESSION: %q is not one of none, gzip, snappy, lz4, zstd", c.Compression)
	}
	switch {
	case c.BatchSize <= 0:
		return fmt.Errorf("HWCAUDIT_KAFKA_BATCH_SIZE: must be positive, got %d", c.BatchSize)
	case c.MaxMessageBytes <= 0:
		return fmt.Errorf("HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES: must be positive, got %d", c.MaxMessageBytes)
	case c.BatchBytes < int64(c.MaxMessageBytes):
		return fmt.Errorf("HWCAUDIT_KAFKA_BATCH_BYTES: must be at least HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES (%d), got %d", c.MaxMessageBytes, c.BatchBytes)
	case c.BatchTimeout <= 0:
		return fmt.Errorf("HWCAUDIT_KAFKA_BATCH_TIMEOUT: must be positive, got %s", c.BatchTimeout)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("HWCAUDIT_KAFKA_WRITE_TIMEOUT: must be positive, got %s", c.WriteTimeout)
	}
	if !c.TLS {
		switch {
		case c.TLSCAFile != "":
			return errors.New("HWCAUDIT_KAFKA_TLS_CA_FILE: set, but HWCAUDIT_KAFKA_TLS is off")
		case c.TLSCertFile != "" || c.TLSKeyFile != "":
			return errors.New("HWCAUDIT_KAFKA_TLS_CERT_FILE: set, but HWCAUDIT_KAFKA_TLS is off")
		case c.TLSInsecureSkipVerify:
			return errors.New("HWCAUDIT_KAFKA_TLS_INSECURE_SKIP_VERIFY: set, but HWCAUDIT_KAFKA_TLS is off")
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("HWCAUDIT_KAFKA_TLS_CERT_FILE and HWCAUDIT_KAFKA_TLS_KEY_FILE: set both or neither")
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
		if c.SASLUsername != "" || c.SASLPassword != "" {
			return errors.New("HWCAUDIT_KAFKA_SASL_MECHANISM: required when HWCAUDIT_KAFKA_SASL_USERNAME or _PASSWORD is set")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASLUsername == "" {
			return errors.New("HWCAUDIT_KAFKA_SASL_USERNAME: required with HWCAUDIT_KAFKA_SASL_MECHANISM")
		}
		if c.SASLPassword == "" {
			return errors.New("HWCAUDIT_KAFKA_SASL_PASSWORD: required with HWCAUDIT_KAFKA_SASL_MECHANISM")
		}
	default:
		return fmt.Errorf("HWCAUDIT_KAFKA_SASL_MECHANISM: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASLMechanism)
	}
	if c.SASLMechanism != "" && !c.TLS && !c.AllowInsecure && !c.allLoopback() {
		return fmt.Errorf("HWCAUDIT_KAFKA_SASL_MECHANISM: %s without HWCAUDIT_KAFKA_TLS sends the login and the events unencrypted to brokers that are not on loopback; set HWCAUDIT_KAFKA_TLS=true (SASL_SSL) or HWCAUDIT_KAFKA_ALLOW_INSECURE=true to accept it",
			strings.ToUpper(c.SASLMechanism))
	}
	return nil
}

func (c Config) brokers() []string {
	var out []string
	for _, b := range c.Brokers {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// validTopicTemplate checks the fixed part of a topic template; the dataset
// part is sanitized per event.
func validTopicTemplate(t string) error {
	if t == "" {
		return errors.New("must not be empty")
	}
	fixed := strings.ReplaceAll(t, DatasetPlaceholder, "")
	if strings.ContainsAny(fixed, "{}") {
		return fmt.Errorf("%q: the only placeholder is %s", t, DatasetPlaceholder)
	}
	for _, r := range fixed {
		if !topicByte(r) {
			return fmt.Errorf("%q: topic names may hold only [a-zA-Z0-9._-]", t)
		}
	}
	if !strings.Contains(t, DatasetPlaceholder) && (t == "." || t == "..") {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	if len(fixed) > maxTopicLen {
		return fmt.Errorf("%q: longer than %d characters", t, maxTopicLen)
	}
	return nil
}

const maxTopicLen = 249

func topicByte(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecureSkipVerify} //nolint:gosec // opt-in, documented
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("HWCAUDIT_KAFKA_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("HWCAUDIT_KAFKA_TLS_CA_FILE: %s holds no PEM certificate", c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("HWCAUDIT_KAFKA_TLS_CERT_FILE/HWCAUDIT_KAFKA_TLS_KEY_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c Config) saslMechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: c.SASLUsername, Password: c.SASLPassword}, nil
	case "SCRAM-SHA-256":
		m, err := scram.Mechanism(scram.SHA256, c.SASLUsername, c.SASLPassword)
		if err != nil {
			// scram errors name the failing step, never the password.
			return nil, fmt.Errorf("HWCAUDIT_KAFKA_SASL_MECHANISM: %w", err)
		}
		return m, nil
	case "SCRAM-SHA-512":
		m, err := scram.Mechanism(scram.SHA512, c.SASLUsername, c.SASLPassword)
		if err != nil {
			return nil, fmt.Errorf("HWCAUDIT_KAFKA_SASL_MECHANISM: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("HWCAUDIT_KAFKA_SASL_MECHANISM: %q is not supported", c.SASLMechanism)
}
