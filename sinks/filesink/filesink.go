// Package filesink writes ECS events as NDJSON files on local disk, one
// directory per dataset, crash-safely.
//
// Layout, for Dir "./out" and dataset "huaweicloud.swr_audit":
//
//	out/huaweicloud.swr_audit/huaweicloud.swr_audit-20240501T120000Z-3f9a1c2b-000001.ndjson
//	out/huaweicloud.swr_audit/.huaweicloud.swr_audit-20240501T130000Z-3f9a1c2b-000002.ndjson.inprogress
//
// Each line is one Event.Doc. Readers should read "*.ndjson" only: published
// files hold complete lines and never change again, while the hidden
// in-progress file is still being appended to. See Log for the naming and the
// crash guarantees.
//
// Duplicates: a file cannot cheaply tell whether an event is already stored
// in an earlier file, so a batch re-sent after a crash or a failed Write may
// be stored twice. Every copy is byte-identical and carries the same
// deterministic event.id, by which readers can deduplicate.
package filesink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/ndjson"
)

// Config configures the file sink.
type Config struct {
	// Dir is the root directory; each dataset gets a subdirectory.
	// Default "./out".
	Dir string `env:"HWCAUDIT_FILE_DIR,default=./out"`

	// MaxBytes publishes a file and starts the next one once the file reaches
	// this size. A single event larger than MaxBytes gets a file of its own.
	// Default 67108864 (64 MiB).
	MaxBytes int64 `env:"HWCAUDIT_FILE_MAX_BYTES,default=67108864"`

	// MaxAge publishes a file once it is this old, checked when the next
	// batch for its dataset arrives (an idle file is published by Close).
	// It bounds how long acknowledged events stay invisible to readers in a
	// long-running exporter. 0 disables. Default 1h.
	MaxAge time.Duration `env:"HWCAUDIT_FILE_MAX_AGE,default=1h"`
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Dir) == "":
		return errors.New("HWCAUDIT_FILE_DIR: must not be empty")
	case c.MaxBytes <= 0:
		return fmt.Errorf("HWCAUDIT_FILE_MAX_BYTES: must be a positive number of bytes, got %d", c.MaxBytes)
	case c.MaxAge < 0:
		return fmt.Errorf("HWCAUDIT_FILE_MAX_AGE: must not be negative, got %s", c.MaxAge)
	}
	return nil
}

// Sink is a pipeline.Sink writing NDJSON files. It is safe for concurrent
// use; writes to different datasets proceed in parallel.
type Sink struct {
	cfg Config

	mu     sync.Mutex
	closed bool
	logs   map[string]*Log // by dataset directory name
}

var _ pipeline.Sink = (*Sink)(nil)

// New validates cfg, creates Dir and publishes what a crashed earlier run
// left in progress in any dataset directory.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, dirPerm); err != nil {
		return nil, fmt.Errorf("filesink: %w", err)
	}
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("filesink: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if _, err := Recover(filepath.Join(cfg.Dir, e.Name())); err != nil {
				return nil, fmt.Errorf("filesink: %w", err)
			}
		}
	}
	return &Sink{cfg: cfg, logs: make(map[string]*Log)}, nil
}

// Write appends the batch's documents, grouped by dataset in batch order, and
// returns nil once all of them are fsynced. Order within a dataset is kept.
// An empty document, or one with a newline that is not valid JSON (so cannot
// be compacted onto one line), is rejected with a *pipeline.RejectedError
// while the others are stored.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	if b == nil || len(b.Events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filesink: %w", err)
	}
	var order []string
	groups := make(map[string][][]byte)
	var rejected map[int]string
	for i := range b.Events {
		ev := &b.Events[i]
		doc, reason := ndjson.Line(ev.Doc)
		if reason != "" {
			if rejected == nil {
				rejected = make(map[int]string)
			}
			rejected[i] = reason
			continue
		}
		dir := datasetDir(ev.Dataset)
		if _, ok := groups[dir]; !ok {
			order = append(order, dir)
		}
		groups[dir] = append(groups[dir], doc)
	}
	for _, dir := range order {
		l, err := s.log(dir)
		if err != nil {
			return err
		}
		if err := l.Append(ctx, groups[dir]); err != nil {
			if errors.Is(err, ErrClosed) {
				return pipeline.Permanent(fmt.Errorf("filesink: %w", err))
			}
			return fmt.Errorf("filesink: stream %s: %w", b.Stream, err)
		}
	}
	if rejected != nil {
		return &pipeline.RejectedError{Reasons: rejected}
	}
	return nil
}

// datasetDir maps a dataset to a directory name that cannot escape Dir or be
// hidden: bytes other than [A-Za-z0-9._-] become '_', a leading '.' becomes
// '_', and an empty dataset becomes "unknown".
func datasetDir(dataset string) string {
	if dataset == "" {
		return "unknown"
	}
	b := []byte(dataset)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok || (i == 0 && c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (s *Sink) log(dir string) (*Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, pipeline.Permanent(fmt.Errorf("filesink: %w", ErrClosed))
	}
	if l, ok := s.logs[dir]; ok {
		return l, nil
	}
	l, err := OpenLog(filepath.Join(s.cfg.Dir, dir), dir, s.cfg.MaxBytes, s.cfg.MaxAge)
	if err != nil {
		return nil, fmt.Errorf("filesink: %w", err)
	}
	s.logs[dir] = l
	return l, nil
}

// Close publishes every open file. After it returns nil every event Write
// accepted is in a visible file. Writes after Close fail permanently.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	logs := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		logs = append(logs, l)
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("filesink: %w", errors.Join(errs...))
	}
	return nil
}
