package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Output is a configured sink with the name it is reported under.
type Output struct {
	Name string
	Sink Sink
}

// Config wires a pipeline. Zero values take the documented defaults.
type Config struct {
	// Outputs are written in parallel; a batch is delivered when all accepted it.
	Outputs []Output
	// DeadLetter receives records that cannot be mapped or that a sink rejected.
	DeadLetter DeadLetterWriter
	// Store keeps the stream cursors.
	Store Store
	// Backoff is the retry policy for fetches, writes, dead letters and saves.
	Backoff Backoff
	// MaxBatch caps the events handed to a sink in one Write. Pages that are
	// already fetched are merged up to this size. Default 2000.
	MaxBatch int
	// InFlight is how many batches of one stream are written at once.
	// Commits still happen in order. Default 2.
	InFlight int
	// Queue is how many fetched pages may wait for the transform stage, per
	// stream. It bounds memory together with MaxBatch and InFlight. Default 8.
	Queue int
	// Parallel is how many streams run at once. Default 4.
	Parallel int
	// MaxBytes bounds the memory that pages hold between the fetch stage
	// and the end of their delivery, across all streams: a page's raw
	// records plus room for their ECS documents. A fetched page waits for
	// room before it enters the queue, so a stream reading huge pages
	// slows down instead of growing the heap. A page larger than MaxBytes
	// alone still passes, by itself. Default 64 MiB.
	MaxBytes int64
	// ShutdownGrace is how long in-flight writes may go on once ctx is
	// cancelled; after it they are abandoned and not committed. Default 10s.
	ShutdownGrace time.Duration
	// Logger receives progress and retry messages. Default: discard.
	Logger *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
	// Observer is told about fetches, progress, writes, retries and
	// commits, for metrics and progress displays. The zero Observer (the
	// default) observes nothing.
	Observer Observer
	// SaveEvery is how long a delivered batch's checkpoint may wait while
	// a later batch of the stream is on its way: that batch's checkpoint
	// then covers both, so a stream reading small batches quickly does not
	// pay a durable checkpoint write for each. The checkpoint is saved at
	// the latest after SaveEvery, and always when the stream ends.
	// Default 1s.
	SaveEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 2000
	}
	if c.InFlight <= 0 {
		c.InFlight = 2
	}
	if c.Queue <= 0 {
		c.Queue = 8
	}
	if c.Parallel <= 0 {
		c.Parallel = 4
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SaveEvery <= 0 {
		c.SaveEvery = time.Second
	}
	return c
}

// Status is how a stream's run ended.
type Status string

const (
	// StatusDone: the stream caught up and everything read was committed.
	StatusDone Status = "done"
	// StatusFailed: an error ended the stream; its checkpoint holds the last
	// fully delivered position.
	StatusFailed Status = "failed"
	// StatusInterrupted: shutdown cut the stream short before it caught up.
	StatusInterrupted Status = "interrupted"
)

// StreamResult reports one stream's run.
//
// Every record the API's responses held is counted once: as a duplicate
// (listed again, delivered before) or as fetched, and every fetched record
// ends as delivered, dead-lettered or excluded. For a stream that is done,
// Fetched == Delivered + DeadLettered + Excluded.Total(); Accounted checks
// it.
type StreamResult struct {
	Stream  string
	Status  Status
	Err     error
	Fetched int64            // records read from the API that were new to the stream
	Written map[string]int64 // events accepted, by sink name
	// Delivered counts records every sink accepted.
	Delivered int64
	// DeadLettered counts records stored as dead letters, each once
	// however many sinks refused it.
	DeadLettered int64
	// Excluded counts records left out by the user's start and end.
	Excluded Excluded
	Pages    int64
	// APITotal is what the API's counts say this run's range holds (the
	// last page's Total), 0 when the source cannot tell.
	APITotal int64
	// Duplicates counts records the API listed again that were skipped
	// because they had been delivered (the pages' Skipped).
	Duplicates int64
	Committed  int64  // records covered by checkpoints saved in this run
	Cursor     []byte // last checkpoint saved (or loaded, when none was saved)
	Elapsed    time.Duration
}

// Accounted reports whether every fetched record ended delivered,
// dead-lettered or excluded; it can only hold for a stream that is done.
func (r StreamResult) Accounted() bool {
	return r.Fetched == r.Delivered+r.DeadLettered+r.Excluded.Total()
}

// Summary reports a whole run.
type Summary struct {
	Streams []StreamResult
	Elapsed time.Duration
}

// Err returns the first stream error, or an interruption error, or nil.
func (s *Summary) Err() error {
	var errs []error
	for _, r := range s.Streams {
		switch r.Status {
		case StatusFailed:
			errs = append(errs, fmt.Errorf("stream %s: %w", r.Stream, r.Err))
		case StatusInterrupted:
			errs = append(errs, fmt.Errorf("stream %s: interrupted before it caught up", r.Stream))
		}
	}
	return errors.Join(errs...)
}

// Pipeline runs streams through the configured sinks.
type Pipeline struct {
	cfg Config
}

// New returns a pipeline; cfg.Store and at least one output are required.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Store == nil {
		return nil, errors.New("pipeline: no checkpoint store")
	}
	if len(cfg.Outputs) == 0 {
		return nil, errors.New("pipeline: no sinks")
	}
	if cfg.DeadLetter == nil {
		return nil, errors.New("pipeline: no dead-letter destination")
	}
	return &Pipeline{cfg: cfg.withDefaults()}, nil
}

// Run reads every stream until it is caught up, fails, or ctx is cancelled.
// Cancelling ctx stops fetching at once; writes already under way get
// ShutdownGrace to finish, and only what they delivered is committed.
func (p *Pipeline) Run(ctx context.Context, streams []Stream) *Summary {
	start := p.cfg.Now()

	// Writes outlive ctx by the grace period so that a SIGTERM does not throw
	// away a batch that is one fsync from being committed.
	writeCtx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	var graceTimer atomic.Pointer[time.Timer]
	stopGrace := context.AfterFunc(ctx, func() {
		graceTimer.Store(time.AfterFunc(p.cfg.ShutdownGrace, cancelWrites))
	})
	defer func() {
		stopGrace()
		if t := graceTimer.Load(); t != nil {
			t.Stop()
		}
	}()

	results := make([]StreamResult, len(streams))
	budget := semaphore.NewWeighted(p.cfg.MaxBytes)
	sem := make(chan struct{}, p.cfg.Parallel)
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				results[i] = StreamResult{Stream: s.Key(), Status: StatusInterrupted, Written: map[string]int64{}}
				return
			}
			results[i] = p.runStream(ctx, writeCtx, s, budget)
		}()
	}
	wg.Wait()
	return &Summary{Streams: results, Elapsed: p.cfg.Now().Sub(start)}
}

// unit is a batch on its way from the transform stage to the sinks.
type unit struct {
	seq     uint64
	batch   Batch
	letters []DeadLetter
	cursor  []byte
	records int64     // API records covered, including dead-lettered ones
	newest  time.Time // newest event time of the batch
	bytes   int64     // held from the byte budget until delivery ends
}

type streamRun struct {
	p       *Pipeline
	budget  *semaphore.Weighted
	stream  Stream
	key     string
	log     *slog.Logger
	tracker *tracker

	fetched, deadLettered, pages, committed atomic.Int64
	apiTotal, duplicates, delivered         atomic.Int64
	beforeStart, afterEnd                   atomic.Int64
	written                                 []atomic.Int64 // by output index

	commitMu    sync.Mutex
	lastCommit  int64 // highest seq delivered with all before it, -1 before the first
	covered     map[uint64]unitInfo
	savedCursor []byte
	pending     unitInfo  // delivered since the last save, not saved yet
	lastSave    time.Time // when the checkpoint was last saved
	saveFailed  bool      // a save failed: the store is not to be asked again

	failOnce sync.Once
	failErr  error              // read only after failCh is closed
	failCh   chan struct{}      // closed by fail
	cancel   context.CancelFunc // stops fetching when delivery fails
}

type unitInfo struct {
	cursor  []byte
	records int64
	newest  time.Time
}

func (p *Pipeline) runStream(ctx, writeCtx context.Context, s Stream, budget *semaphore.Weighted) StreamResult {
	start := p.cfg.Now()
	r := &streamRun{
		p:          p,
		budget:     budget,
		stream:     s,
		key:        s.Key(),
		log:        p.cfg.Logger.With("stream", s.Key()),
		tracker:    newTracker(),
		written:    make([]atomic.Int64, len(p.cfg.Outputs)),
		lastCommit: -1,
		covered:    make(map[uint64]unitInfo),
		failCh:     make(chan struct{}),
	}
	fetchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel

	fetchErr := r.run(fetchCtx, writeCtx)

	res := StreamResult{
		Stream:       r.key,
		Fetched:      r.fetched.Load(),
		Delivered:    r.delivered.Load(),
		DeadLettered: r.deadLettered.Load(),
		Excluded:     Excluded{BeforeStart: r.beforeStart.Load(), AfterEnd: r.afterEnd.Load()},
		Pages:        r.pages.Load(),
		APITotal:     r.apiTotal.Load(),
		Duplicates:   r.duplicates.Load(),
		Committed:    r.committed.Load(),
		Cursor:       r.savedCursor,
		Written:      make(map[string]int64, len(p.cfg.Outputs)),
		Elapsed:      p.cfg.Now().Sub(start),
	}
	for i, o := range p.cfg.Outputs {
		res.Written[o.Name] += r.written[i].Load()
	}
	switch {
	case r.failed():
		res.Status, res.Err = StatusFailed, r.failErr
	case fetchErr != nil && ctx.Err() != nil:
		res.Status = StatusInterrupted
	case fetchErr != nil:
		res.Status, res.Err = StatusFailed, fetchErr
	default:
		res.Status = StatusDone
	}
	return res
}

// fail records the first delivery failure and stops the stream's fetching.
// A failure caused by the end of the shutdown grace is an interruption, not
// a failure: run reports it as such.
func (r *streamRun) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	r.failOnce.Do(func() {
		r.failErr = err
		close(r.failCh)
		r.cancel()
	})
}

func (r *streamRun) failed() bool {
	select {
	case <-r.failCh:
		return true
	default:
		return false
	}
}

// run wires the three stages and waits for them. It returns the fetch
// stage's error (nil when the stream caught up).
func (r *streamRun) run(fetchCtx, writeCtx context.Context) error {
	cursor, err := r.loadCursor(fetchCtx)
	if err != nil {
		return err
	}
	r.savedCursor = cursor

	pages := make(chan heldPage, r.p.cfg.Queue)
	// Unbuffered: a batch is handed over only when a deliverer is free, so
	// that transform can keep growing it until then.
	units := make(chan *unit)

	var fetchErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(pages)
		fetchErr = r.fetch(fetchCtx, cursor, pages)
	}()
	go func() {
		defer wg.Done()
		defer close(units)
		r.transform(writeCtx, pages, units)
	}()
	var dwg sync.WaitGroup
	for range r.p.cfg.InFlight {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			for u := range units {
				if r.failed() || writeCtx.Err() != nil {
					// Drain: nothing after a failure may be committed, and
					// its bytes go back to the budget the streams share.
					r.budget.Release(u.bytes)
					continue
				}
				r.deliver(writeCtx, u)
			}
		}()
	}
	wg.Wait()
	dwg.Wait()
	r.flush(writeCtx)
	if writeCtx.Err() != nil && !r.failed() && fetchErr == nil {
		// Shutdown grace ran out with batches still unwritten.
		return writeCtx.Err()
	}
	return fetchErr
}

func (r *streamRun) loadCursor(ctx context.Context) ([]byte, error) {
	var cursor []byte
	err := r.p.cfg.Backoff.Retry(ctx, func() error {
		var err error
		cursor, err = r.p.cfg.Store.Load(ctx, r.key)
		return err
	}, r.logRetry("load checkpoint"))
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	return cursor, nil
}

func (r *streamRun) fetch(ctx context.Context, cursor []byte, out chan<- heldPage) error {
	rd, err := r.stream.Open(ctx, cursor)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if c, ok := rd.(io.Closer); ok {
		defer c.Close()
	}
	for {
		var page Page
		eof := false
		err := r.p.cfg.Backoff.Retry(ctx, func() error {
			var err error
			page, err = rd.Next(ctx)
			if errors.Is(err, io.EOF) {
				eof = true
				return nil
			}
			if err != nil {
				r.p.cfg.Observer.fetchFailed(r.key, err)
			}
			return err
		}, r.logRetry("fetch"))
		if eof {
			r.p.cfg.Observer.progress(r.key, 0)
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		r.pages.Add(1)
		n := len(page.Records) + len(page.Invalid)
		r.fetched.Add(int64(n) + page.Excluded.Total())
		r.p.cfg.Observer.fetched(r.key, n)
		r.duplicates.Add(page.Skipped)
		r.beforeStart.Add(page.Excluded.BeforeStart)
		r.afterEnd.Add(page.Excluded.AfterEnd)
		if page.Total > 0 {
			r.apiTotal.Store(page.Total)
		}
		r.p.cfg.Observer.progress(r.key, page.Remaining)
		// Room in the byte budget first: a page waits here, not in memory
		// further down, while the stages after it are full.
		held := min(pageBytes(page), r.p.cfg.MaxBytes)
		if err := r.budget.Acquire(ctx, held); err != nil {
			return err
		}
		select {
		case out <- heldPage{page, held}:
		case <-ctx.Done():
			r.budget.Release(held)
			return ctx.Err()
		}
	}
}

// pageBytes is what a page holds from the budget: its raw records and the
// room MapRecords reserves for their documents.
func pageBytes(p Page) int64 {
	var n int64
	for _, raw := range p.Records {
		n += 3*int64(len(raw)) + docGuess
	}
	for _, inv := range p.Invalid {
		n += int64(len(inv.Raw) + len(inv.Reason))
	}
	return n
}

// heldPage is a page with the bytes it holds from the budget.
type heldPage struct {
	page  Page
	bytes int64
}

// transform maps pages to events. A batch goes to the sinks as soon as a
// deliverer is free to take it; until then, pages fetched meanwhile are
// merged into it, up to MaxBatch events. Sinks that keep up thus see a page
// at a time with no added latency, and sinks that are slower (an fsync, a
// remote round trip) see fewer, larger writes, so a fixed cost per write
// never caps the throughput.
func (r *streamRun) transform(ctx context.Context, in <-chan heldPage, out chan<- *unit) {
	var u *unit
	// Whatever is left when the stage stops is never delivered: give its
	// bytes back so that other streams go on.
	defer func() {
		if u != nil {
			r.budget.Release(u.bytes)
		}
		for hp := range in {
			r.budget.Release(hp.bytes)
		}
	}()
	for {
		if u == nil {
			page, ok := <-in
			if !ok {
				return
			}
			u = &unit{batch: Batch{Stream: r.key}, seq: r.tracker.add()}
			r.mapPage(u, page)
		}
		more := in
		if len(u.batch.Events) >= r.p.cfg.MaxBatch {
			more = nil
		}
		select {
		case out <- u:
			u = nil
		case page, ok := <-more:
			if !ok {
				// The fetch stage is done: hand over the last batch.
				select {
				case out <- u:
					u = nil
				case <-ctx.Done():
				case <-r.failCh:
				}
				return
			}
			r.mapPage(u, page)
		case <-ctx.Done():
			return
		case <-r.failCh:
			return
		}
	}
}

func (r *streamRun) mapPage(u *unit, hp heldPage) {
	page := hp.page
	u.bytes += hp.bytes
	now := r.p.cfg.Now().UTC()
	for _, inv := range page.Invalid {
		u.letters = append(u.letters, DeadLetter{Stream: r.key, Stage: "read", Reason: inv.Reason, Time: now, Original: inv.Raw})
	}
	first := len(u.batch.Events)
	u.batch.Events, u.letters = MapRecords(r.stream, r.key, page.Records, now, u.batch.Events, u.letters)
	for _, ev := range u.batch.Events[first:] {
		if ev.Timestamp.After(u.newest) {
			u.newest = ev.Timestamp
		}
	}
	u.cursor = page.Cursor
	u.records += int64(len(page.Records)+len(page.Invalid)) + page.Excluded.Total()
}

// deliver writes u to every sink in parallel, then stores its dead letters,
// then commits. Any failure fails the stream without committing u.
func (r *streamRun) deliver(ctx context.Context, u *unit) {
	defer r.budget.Release(u.bytes)
	began := r.p.cfg.Now()
	// Dead letters before the sinks' are the records that never became
	// events; a record several sinks refused is one record.
	records := len(u.letters)
	var refused map[string]bool // event ids some sink refused
	if len(u.batch.Events) > 0 {
		outs := r.p.cfg.Outputs
		errs := make([]error, len(outs))
		rejected := make([][]DeadLetter, len(outs))
		var wg sync.WaitGroup
		for i, o := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rejected[i], errs[i] = r.writeSink(ctx, i, o, &u.batch)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				r.fail(ctx, fmt.Errorf("sink %s: %w", outs[i].Name, err))
				return
			}
			for _, l := range rejected[i] {
				if refused == nil {
					refused = map[string]bool{}
				}
				refused[l.EventID] = true
			}
			u.letters = append(u.letters, rejected[i]...)
		}
		records += len(refused)
	}
	if len(u.letters) > 0 {
		err := r.p.cfg.Backoff.Retry(ctx, func() error {
			return r.p.cfg.DeadLetter.Put(ctx, u.letters)
		}, r.logRetry("dead letter"))
		if err != nil {
			r.fail(ctx, fmt.Errorf("dead letter: %w", err))
			return
		}
		r.deadLettered.Add(int64(records))
		stages := map[string]int{}
		for _, l := range u.letters {
			r.log.Warn("record dead-lettered", "stage", l.Stage, "reason", l.Reason, "event_id", l.EventID)
			stages[l.Stage]++
		}
		for stage, n := range stages {
			r.p.cfg.Observer.deadLettered(r.key, stage, n)
		}
	}
	r.delivered.Add(int64(len(u.batch.Events) - len(refused)))
	r.p.cfg.Observer.batchDelivered(r.key, len(u.batch.Events), r.p.cfg.Now().Sub(began))
	r.commit(ctx, u)
}

// writeSink writes b to one sink with retries. Events the sink rejects come
// back as dead letters; the rest count as written.
func (r *streamRun) writeSink(ctx context.Context, i int, o Output, b *Batch) ([]DeadLetter, error) {
	var rej *RejectedError
	err := r.p.cfg.Backoff.Retry(ctx, func() error {
		err := o.Sink.Write(ctx, b)
		if errors.As(err, &rej) {
			return nil
		}
		rej = nil
		return err
	}, r.logRetry("write to "+o.Name))
	if err != nil {
		return nil, err
	}
	if rej == nil {
		r.written[i].Add(int64(len(b.Events)))
		r.p.cfg.Observer.written(r.key, o.Name, len(b.Events))
		return nil, nil
	}
	now := r.p.cfg.Now().UTC()
	letters := make([]DeadLetter, 0, len(rej.Reasons))
	for idx, reason := range rej.Reasons {
		if idx < 0 || idx >= len(b.Events) {
			return nil, Permanent(fmt.Errorf("sink %s rejected event %d of a batch of %d", o.Name, idx, len(b.Events)))
		}
		ev := b.Events[idx]
		letters = append(letters, DeadLetter{
			Stream: r.key, Stage: "sink:" + o.Name, Reason: reason, Time: now, Original: ev.Doc, EventID: ev.ID,
		})
	}
	r.written[i].Add(int64(len(b.Events) - len(letters)))
	r.p.cfg.Observer.written(r.key, o.Name, len(b.Events)-len(letters))
	return letters, nil
}

// commit resolves u and saves the newest cursor that has nothing
// undelivered before it, unless a later batch is on its way and the last
// save is recent (see Config.SaveEvery).
func (r *streamRun) commit(ctx context.Context, u *unit) {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.covered[u.seq] = unitInfo{cursor: u.cursor, records: u.records, newest: u.newest}
	upTo, ok := r.tracker.resolve(u.seq)
	if !ok {
		return
	}
	for seq := uint64(r.lastCommit + 1); seq <= upTo; seq++ {
		info := r.covered[seq]
		delete(r.covered, seq)
		if info.cursor != nil {
			r.pending.cursor = info.cursor
		}
		r.pending.records += info.records
		if info.newest.After(r.pending.newest) {
			r.pending.newest = info.newest
		}
	}
	r.lastCommit = int64(upTo)
	if r.tracker.unresolved() && r.p.cfg.Now().Sub(r.lastSave) < r.p.cfg.SaveEvery {
		return // the next batch's checkpoint covers this one
	}
	r.saveLocked(ctx)
}

// flush saves what was delivered and not saved yet; run calls it when
// the stream ends, however it ends.
func (r *streamRun) flush(ctx context.Context) {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	if ctx.Err() == nil && !r.saveFailed {
		r.saveLocked(ctx)
	}
}

// saveLocked saves the pending cursor; r.commitMu must be held.
func (r *streamRun) saveLocked(ctx context.Context) {
	p := r.pending
	if p.cursor == nil && p.records == 0 {
		return
	}
	if p.cursor != nil {
		err := r.p.cfg.Backoff.Retry(ctx, func() error {
			return r.p.cfg.Store.Save(ctx, r.key, p.cursor)
		}, r.logRetry("save checkpoint"))
		if err != nil {
			r.saveFailed = true
			r.fail(ctx, fmt.Errorf("save checkpoint: %w", err))
			return
		}
		r.savedCursor = p.cursor
		r.lastSave = r.p.cfg.Now()
		r.log.Debug("checkpoint saved", "cursor", string(p.cursor), "records", p.records)
	}
	r.pending = unitInfo{}
	r.committed.Add(p.records)
	r.p.cfg.Observer.committed(r.key, p.records, p.newest)
}

func (r *streamRun) logRetry(op string) func(int, error, time.Duration) {
	return func(attempt int, err error, wait time.Duration) {
		r.p.cfg.Observer.retried(r.key, op, err)
		r.log.Warn("retrying", "op", op, "attempt", attempt, "wait", wait.Round(time.Millisecond), "error", err)
	}
}
