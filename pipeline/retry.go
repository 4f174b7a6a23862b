package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is the retry policy for every retryable failure in a run: fetching
// a page, writing a batch to a sink, storing dead letters and checkpoints.
// It is the only place where the exporter waits and tries again.
type Backoff struct {
	// Initial is the wait before the first retry. Default 500ms.
	Initial time.Duration
	// Max caps a single wait, including a server's Retry-After. Default 30s.
	Max time.Duration
	// MaxElapsed gives up after this much time spent retrying one operation;
	// the stream then fails and keeps its checkpoint. Default 5m.
	MaxElapsed time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.MaxElapsed <= 0 {
		b.MaxElapsed = 5 * time.Minute
	}
	return b
}

// wait returns the delay before retry number attempt (0-based): exponential
// with full jitter, never shorter than what the error asked for.
func (b Backoff) wait(attempt int, err error) time.Duration {
	ceiling := b.Initial << min(attempt, 20)
	if ceiling <= 0 || ceiling > b.Max {
		ceiling = b.Max
	}
	// Half fixed, half random: spreads synchronized clients apart without
	// ever retrying immediately.
	d := ceiling/2 + rand.N(ceiling/2+1)
	if ra, ok := RetryAfter(err); ok && ra > d {
		d = min(ra, b.Max)
	}
	return d
}

// Retry calls fn until it succeeds, returns a Permanent error, ctx ends or
// MaxElapsed has passed. onRetry, when not nil, is told about each failure
// that will be retried (for logs and metrics).
func (b Backoff) Retry(ctx context.Context, fn func() error, onRetry func(attempt int, err error, wait time.Duration)) error {
	b = b.withDefaults()
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		d := b.wait(attempt, err)
		if time.Since(start)+d > b.MaxElapsed {
			return fmt.Errorf("gave up after %d attempts in %s: %w", attempt+1, time.Since(start).Round(time.Millisecond), err)
		}
		if onRetry != nil {
			onRetry(attempt+1, err, d)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
