package kafkasink

import (
	"context"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// Check asks the brokers for the cluster's metadata over the transport
// New builds for Write (TLS files, SASL login), so that a check that
// passes means a run can connect and log in. Errors name the brokers and
// are redacted as Write's are; a certificate failure says how to fix it.
func Check(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer s.transport.CloseIdleConnections()
	brokers := strings.Join(cfg.brokers(), ",")
	c := &kafka.Client{Addr: kafka.TCP(cfg.brokers()...), Transport: s.transport}
	if _, err = c.Metadata(ctx, &kafka.MetadataRequest{}); err == nil {
		return nil
	}
	if e := egress.CertError(err, "kafkasink: check", "broker(s) "+brokers,
		"set HWCAUDIT_KAFKA_TLS_CA_FILE to the PEM CA that signed the brokers' certificates"); e != nil {
		return s.secrets.Error(e)
	}
	return s.secrets.Error(fmt.Errorf("kafkasink: check: metadata from broker(s) %s: %w", brokers, err))
}
