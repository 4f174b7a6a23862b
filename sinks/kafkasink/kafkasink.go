// Package kafkasink produces ECS events to Kafka (including Huawei Cloud DMS
// for Kafka) with segmentio/kafka-go.
//
// Each event becomes one record: the key is event.id, the value is the ECS
// document, and the headers carry the dataset (HeaderDataset) and the source
// stream (HeaderStream). The topic is Config.Topic with "{dataset}" replaced
// by the event's dataset.
//
// Delivery is synchronous and waits for every in-sync replica
// (acks=all): Write returns nil only once the brokers acknowledged every
// record of the batch.
//
// Duplicates: Kafka cannot tell that a record is already stored, so a batch
// re-sent after a crash or a failed Write is stored again (at-least-once).
// Every copy is identical and carries the same key, so a compacted topic or
// a consumer deduplicating by key (event.id) sees each event once. Records
// are partitioned by a murmur2 hash of the key, as the Java client does, so
// one event.id always lands on one partition; order is kept per partition,
// and per stream only on single-partition topics.
package kafkasink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// Header names set on every record.
const (
	HeaderDataset = "event.dataset"
	HeaderStream  = "hwcaudit.stream"
)

// ErrClosed is returned (as a permanent error) by Write after Close.
var ErrClosed = errors.New("kafkasink: sink is closed")

// Sink is a pipeline.Sink producing to Kafka. It is safe for concurrent use;
// concurrent writes share produce requests.
type Sink struct {
	cfg       Config
	w         *kafka.Writer
	transport *kafka.Transport
	secrets   *egress.Secrets

	mu     sync.Mutex
	closed bool
}

var _ pipeline.Sink = (*Sink)(nil)

// New validates cfg, loads the TLS files and returns a sink. It does not
// contact the brokers: the first Write does.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	mech, err := cfg.saslMechanism()
	if err != nil {
		return nil, err
	}
	tr := &kafka.Transport{
		DialTimeout: 10 * time.Second,
		ClientID:    "hwcaudit",
		TLS:         tc,
		SASL:        mech,
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(cfg.brokers()...),
		// Topic stays empty: each message names its topic.
		Balancer: &kafka.Murmur2Balancer{},
		// The pipeline owns retries and backoff; a few quick attempts here
		// ride out a leader change without surfacing it.
		MaxAttempts:            3,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
		BatchSize:              cfg.BatchSize,
		BatchBytes:             cfg.BatchBytes,
		BatchTimeout:           cfg.BatchTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		WriteTimeout:           cfg.WriteTimeout,
		RequiredAcks:           kafka.RequireAll, // never the zero value, RequireNone
		Async:                  false,            // errors must reach Write
		Compression:            codecs[strings.ToLower(cfg.Compression)],
		AllowAutoTopicCreation: cfg.AutoCreateTopics,
		Transport:              tr,
	}
	return &Sink{cfg: cfg, w: w, transport: tr, secrets: cfg.secrets()}, nil
}

// Topic returns the topic an event of dataset goes to.
func (s *Sink) Topic(dataset string) string {
	if !strings.Contains(s.cfg.Topic, DatasetPlaceholder) {
		return s.cfg.Topic
	}
	t := strings.ReplaceAll(s.cfg.Topic, DatasetPlaceholder, sanitizeDataset(dataset))
	if len(t) > maxTopicLen {
		t = t[:maxTopicLen]
	}
	return t
}

func sanitizeDataset(ds string) string {
	if ds == "" {
		return "unknown"
	}
	b := []byte(ds)
	for i, c := range b {
		if !topicByte(rune(c)) {
			b[i] = '_'
		}
	}
	return string(b)
}

// Record size overheads, generous so that the estimate is never below what
// the broker counts: a v2 record batch header is 61 bytes, and a record's
// varint fields (length, attributes, timestamp and offset deltas, key and
// value lengths, header count) take at most 30.
const (
	batchOverhead  = 61
	recordOverhead = 30
	headerOverhead = 10
)

// recordSize estimates the uncompressed size of ev alone in a record batch.
func recordSize(stream string, ev *pipeline.Event) int {
	return batchOverhead + recordOverhead + len(ev.ID) + len(ev.Doc) +
		2*headerOverhead + len(HeaderDataset) + len(ev.Dataset) + len(HeaderStream) + len(stream)
}

// Write produces every event of b and returns nil once the brokers
// acknowledged all of them with acks=all.
//
// Events larger than MaxMessageBytes, and events the broker refuses with
// MESSAGE_TOO_LARGE, are reported in a *pipeline.RejectedError while the
// others are stored. A missing topic (with auto-creation off) is a
// retryable error naming the topic: creating it heals the stream without
// loss, and the pipeline gives up after its retry budget. A refused SASL
// login or authorization is permanent.
//
// When ctx ends first, Write returns its error, but records already handed
// to the producer may still be stored: Write does not modify b, and the
// caller must not modify the documents afterwards either.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	if b == nil || len(b.Events) == 0 {
		return nil
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return pipeline.Permanent(ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafkasink: stream %s: %w", b.Stream, err)
	}

	var rejected map[int]string
	reject := func(i int, reason string) {
		if rejected == nil {
			rejected = make(map[int]string)
		}
		rejected[i] = reason
	}
	msgs := make([]kafka.Message, 0, len(b.Events))
	idx := make([]int, 0, len(b.Events)) // msgs[j] is b.Events[idx[j]]
	streamHdr := []byte(b.Stream)
	for i := range b.Events {
		ev := &b.Events[i]
		if n := recordSize(b.Stream, ev); n > s.cfg.MaxMessageBytes {
			reject(i, fmt.Sprintf("kafka record of %d bytes exceeds HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES (%d)", n, s.cfg.MaxMessageBytes))
			continue
		}
		msgs = append(msgs, kafka.Message{
			Topic: s.Topic(ev.Dataset),
			Key:   []byte(ev.ID),
			Value: ev.Doc,
			Headers: []kafka.Header{
				{Key: HeaderDataset, Value: []byte(ev.Dataset)},
				{Key: HeaderStream, Value: streamHdr},
			},
			Time: ev.Timestamp,
		})
		idx = append(idx, i)
	}

	if len(msgs) > 0 {
		if err := s.w.WriteMessages(ctx, msgs...); err != nil {
			if err := s.retryTooLarge(ctx, b, msgs, idx, err, reject); err != nil {
				return err
			}
		}
	}
	if rejected != nil {
		return &pipeline.RejectedError{Reasons: rejected}
	}
	return nil
}

// retryTooLarge handles a failed WriteMessages. If the only failures are
// MESSAGE_TOO_LARGE, it re-sends those records one by one (the broker
// refuses a whole batch when it is too large, so a small record may have
// been refused only for sharing a batch with a big one) and rejects those
// the broker still refuses alone. Any other failure is returned, classified.
func (s *Sink) retryTooLarge(ctx context.Context, b *pipeline.Batch, msgs []kafka.Message, idx []int, err error, reject func(int, string)) error {
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		return s.classify(b, msgs, err)
	}
	var tooLarge []int
	for j, e := range werrs {
		switch {
		case e == nil:
		case errors.Is(e, kafka.MessageSizeTooLarge):
			tooLarge = append(tooLarge, j)
		default:
			return s.classify(b, msgs, e)
		}
	}
	for _, j := range tooLarge {
		err := s.w.WriteMessages(ctx, msgs[j])
		var we kafka.WriteErrors
		if errors.As(err, &we) && len(we) == 1 {
			err = we[0]
		}
		switch {
		case err == nil:
		case errors.Is(err, kafka.MessageSizeTooLarge):
			reject(idx[j], fmt.Sprintf("kafka broker refused the record of %d bytes for topic %s: MESSAGE_TOO_LARGE (raise the topic's max.message.bytes or lower HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES)",
				len(msgs[j].Value), msgs[j].Topic))
		default:
			return s.classify(b, msgs, err)
		}
	}
	return nil
}

// classify wraps a produce failure with context and decides, once, whether
// retrying can help; the result never shows the SASL password.
func (s *Sink) classify(b *pipeline.Batch, msgs []kafka.Message, err error) error {
	return s.secrets.Error(s.classifyRaw(b, msgs, err))
}

func (s *Sink) classifyRaw(b *pipeline.Batch, msgs []kafka.Message, err error) error {
	if errors.Is(err, io.ErrClosedPipe) {
		return pipeline.Permanent(ErrClosed)
	}
	var topics []string
	for i := range msgs {
		topics = append(topics, msgs[i].Topic)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	where := fmt.Sprintf("stream %s, topic %s", b.Stream, strings.Join(topics, ","))
	if e := egress.CertError(err, "kafkasink: "+where, "broker(s) "+strings.Join(s.cfg.brokers(), ","),
		"set HWCAUDIT_KAFKA_TLS_CA_FILE to the PEM CA that signed the brokers' certificates"); e != nil {
		return e
	}

	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return fmt.Errorf("kafkasink: %s: %w", where, err)
	}
	switch kerr {
	case kafka.UnknownTopicOrPartition:
		return fmt.Errorf("kafkasink: %s: topic does not exist and HWCAUDIT_KAFKA_AUTO_CREATE_TOPICS is off; create it: %w", where, err)
	case kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism, kafka.IllegalSASLState:
		return pipeline.Permanent(fmt.Errorf("kafkasink: %s: SASL login as %q with %s refused: %w",
			where, s.cfg.SASLUsername, s.cfg.SASLMechanism, err))
	case kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed:
		return pipeline.Permanent(fmt.Errorf("kafkasink: %s: not authorized to produce as %q: %w", where, s.cfg.SASLUsername, err))
	case kafka.InvalidTopic:
		return pipeline.Permanent(fmt.Errorf("kafkasink: %s: invalid topic name (HWCAUDIT_KAFKA_TOPIC): %w", where, err))
	}
	return fmt.Errorf("kafkasink: %s: %w", where, err)
}

// Close waits for in-flight produce requests (kafka-go's Writer.Close
// waits for them) and releases connections.
// Writes are synchronous, so every event Write acknowledged is already
// stored. Writes after Close fail permanently.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		err := s.w.Close()
		s.transport.CloseIdleConnections()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafkasink: close: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafkasink: close: %w", ctx.Err())
	}
}
