// Package kafkatest reads back what a Kafka-protocol broker holds, for the
// tests of the Kafka sink and of the exporter that uses it.
package kafkatest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// ReadAll returns every record of every non-internal topic, ordered by
// topic, partition and offset.
func ReadAll(t testing.TB, addr string, mech sasl.Mechanism) []kafka.Message {
	t.Helper()
	return ReadAllWith(t, addr, &kafka.Dialer{Timeout: 10 * time.Second, SASLMechanism: mech})
}

// ReadAllWith is ReadAll through d, for brokers that need TLS.
func ReadAllWith(t testing.TB, addr string, d *kafka.Dialer) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	parts, err := conn.ReadPartitions()
	conn.Close()
	if err != nil {
		t.Fatalf("read partitions: %v", err)
	}
	parts = slices.DeleteFunc(parts, func(p kafka.Partition) bool { return strings.HasPrefix(p.Topic, "__") })
	slices.SortFunc(parts, func(a, b kafka.Partition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return a.ID - b.ID
	})
	var out []kafka.Message
	for _, p := range parts {
		out = append(out, readPartition(t, ctx, d, addr, p.Topic, p.ID)...)
	}
	return out
}

func readPartition(t testing.TB, ctx context.Context, d *kafka.Dialer, addr, topic string, partition int) []kafka.Message {
	t.Helper()
	conn, err := d.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		t.Fatalf("dial leader %s/%d: %v", topic, partition, err)
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		t.Fatalf("offsets %s/%d: %v", topic, partition, err)
	}
	if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for off := first; off < last; {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		batch := conn.ReadBatch(1, 16<<20)
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			out = append(out, m)
			off = m.Offset + 1
		}
		if err := batch.Close(); err != nil {
			t.Fatalf("read %s/%d at %d: %v", topic, partition, off, err)
		}
	}
	return out
}
