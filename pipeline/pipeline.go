// Package pipeline moves audit records from sources to sinks and commits a
// stream's checkpoint only after every sink has durably accepted everything
// before it.
//
// Data flows one way:
//
//	Reader.Next ──▶ Stream.Map (ECS) ──▶ every Sink.Write ──▶ dead letters ──▶ Store.Save
//
// The interfaces below are the whole contract between this package and the
// sources, sinks and checkpoint stores. Channels stay private to this package.
package pipeline

import (
	"context"
	"time"
)

// Stream is one independently checkpointed feed of audit records, such as the
// "pull" operations of one SWR instance. Each stream has its own cursor and its
// own failure isolation: one failing stream never stops the others.
type Stream interface {
	// Key identifies the stream in checkpoints, logs and metrics. It must be
	// stable across runs and versions, e.g. "swr/ins-1/pull".
	Key() string

	// Open prepares to read the records that come after cursor, the value a
	// previous Page.Cursor carried (nil when the stream has no checkpoint).
	Open(ctx context.Context, cursor []byte) (Reader, error)

	// Map turns one raw API record into an ECS event. It must be
	// deterministic (the same record always yields the same Event.ID) and safe
	// to call from several goroutines. An error means the record is malformed:
	// it goes to the dead letter with the error as the reason.
	Map(raw []byte, ev *Event) error
}

// Reader yields a stream's records oldest first, one API page at a time.
// A Reader that holds something open between pages (a download) may also
// implement io.Closer: the pipeline closes it once it asks for no more
// pages, however the stream ended.
type Reader interface {
	// Next returns the next page. It returns io.EOF once the stream is caught
	// up. When it returns any other error the reader is left as it was, so
	// the pipeline may call Next again after a backoff; errors marked
	// Permanent end the stream.
	Next(ctx context.Context) (Page, error)
}

// Sink is a destination for ECS events.
type Sink interface {
	// Write returns nil only once every event of the batch is durably stored.
	// It must be idempotent by Event.ID: a batch may be re-sent after a crash
	// or a failed attempt, and the re-sent events must not become duplicates
	// wherever the destination can prevent it.
	//
	// A *RejectedError names events the sink will never accept (too large, a
	// mapping conflict): they go to the dead letter and every other event of
	// the batch counts as delivered. Any other error means nothing may be
	// counted as delivered; it is retried with backoff unless Permanent.
	// Write may be called from several goroutines at once.
	Write(ctx context.Context, b *Batch) error

	// Close flushes and releases the sink. After Close returns nil, every
	// event Write accepted is visible to readers of the destination.
	Close(ctx context.Context) error
}

// DeadLetterWriter stores records that cannot be delivered, with the reason.
type DeadLetterWriter interface {
	// Put returns nil only once every letter is durably stored; a stream's
	// checkpoint never passes a record whose dead letter was not stored.
	Put(ctx context.Context, letters []DeadLetter) error
}

// Store keeps each stream's cursor.
type Store interface {
	// Load returns the cursor last saved for stream, or nil when none was.
	Load(ctx context.Context, stream string) ([]byte, error)

	// Save durably records cursor for stream. The pipeline calls it only
	// after every record up to cursor was delivered to every sink.
	Save(ctx context.Context, stream string, cursor []byte) error
}

// Page is one response from an audit API, already ordered oldest first.
type Page struct {
	// Records are the raw JSON records, oldest first.
	Records [][]byte
	// Cursor is the position after the last record of this page, as JSON,
	// opaque to the pipeline. It may advance even when Records is empty.
	Cursor []byte
	// Remaining estimates the records still to read after this page, or -1
	// when the source cannot tell. It feeds progress reports only.
	Remaining int64
	// Total is the number of records the API's own counts put in the range
	// the Reader covered since it was opened, up to and including this
	// page: what the records fetched must add up to when nothing went
	// missing. 0 when the source cannot tell. It feeds completeness reports.
	Total int64
	// Skipped counts records the API listed again in this response that
	// were delivered before and are left out of Records (page overlaps,
	// records repeated at a window edge). It feeds completeness reports.
	Skipped int64
	// Invalid are records of the responses behind this page that the
	// source will not hand to Map because paging could not trust them: a
	// key of the wrong JSON type, a key out of order with its page, a time
	// that cannot be true. The pipeline dead-letters each with its reason
	// (stage "read"), in the same batch as Records, so the checkpoint
	// never passes one that was not stored.
	Invalid []Invalid
	// Excluded counts the records of the responses behind this page that
	// a rule the user set leaves out, by rule: the start time and the end
	// of a backfill range.
	Excluded Excluded
}

// Invalid is a record a source refused before mapping, with the reason.
type Invalid struct {
	Raw    []byte
	Reason string
}

// Excluded counts records left out by a rule the user set.
type Excluded struct {
	// BeforeStart: older than HWCAUDIT_START_FROM or backfill --from.
	BeforeStart int64
	// AfterEnd: newer than backfill --to.
	AfterEnd int64
}

// Total is the number of records excluded by any rule.
func (e Excluded) Total() int64 { return e.BeforeStart + e.AfterEnd }

// Event is one audit record mapped to ECS.
type Event struct {
	// ID is the deterministic event.id that sinks use for idempotency.
	ID string
	// Timestamp is the event time (@timestamp), in UTC.
	Timestamp time.Time
	// Dataset is event.dataset, e.g. "huaweicloud.swr_audit".
	Dataset string
	// Doc is the encoded ECS JSON document, without a trailing newline.
	Doc []byte
}

// Batch is the unit of delivery: consecutive events of one stream.
type Batch struct {
	// Stream is the Key of the stream the events came from.
	Stream string
	// Events are ordered oldest first.
	Events []Event
}

// DeadLetter is a record that could not be mapped or delivered.
type DeadLetter struct {
	Stream string
	Stage  string // "read", "map", or "sink:<name>"
	Reason string
	Time   time.Time
	// Original holds the raw API record (stages "read" and "map") or the
	// ECS document a sink refused.
	Original []byte
	// EventID is set when the record was mapped before it failed.
	EventID string
}
