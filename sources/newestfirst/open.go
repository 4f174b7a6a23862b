package newestfirst

import (
	"context"
	"fmt"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

// Open returns a pipeline.Reader over cfg's list that starts after the
// checkpoint cursor, or at cfg.Start when cursor is nil. Each source keeps
// its own checkpoint JSON (its key's type, field names and time format, so
// that existing checkpoints stay valid): decode reads it into a Mark and
// encode writes a page's Mark into the page's cursor. A cursor that does
// not decode, or whose Skip lies outside 0..MaxSkip, is a permanent error
// naming cfg.Name: retrying cannot repair a checkpoint.
func Open[K any](cfg Config[K], cursor []byte, decode func([]byte) (Mark[K], error), encode func(Mark[K]) []byte) (pipeline.Reader, error) {
	if cursor == nil {
		return &adapter[K]{nf: New(cfg, nil), encode: encode}, nil
	}
	m, err := decode(cursor)
	if err != nil {
		return nil, pipeline.Permanent(fmt.Errorf("checkpoint of %s: %w", cfg.Name, err))
	}
	if m.Skip < 0 || m.Skip > MaxSkip {
		// A negative skip would place the boundary above the record that
		// proves it, a huge one below the list; only a hand-edited
		// checkpoint can carry one.
		return nil, pipeline.Permanent(fmt.Errorf("checkpoint of %s has skip %d; it counts records above the mark, 0..%d", cfg.Name, m.Skip, MaxSkip))
	}
	return &adapter[K]{nf: New(cfg, &m), encode: encode}, nil
}

// adapter is a Reader as the pipeline reads it.
type adapter[K any] struct {
	nf     *Reader[K]
	encode func(Mark[K]) []byte
}

// Next returns the next records after the mark, oldest first; the page's
// cursor is its mark, encoded.
func (a *adapter[K]) Next(ctx context.Context) (pipeline.Page, error) {
	p, err := a.nf.Next(ctx)
	if err != nil {
		return pipeline.Page{}, err
	}
	page := pipeline.Page{Records: p.Records, Remaining: p.Remaining, Total: p.Total, Skipped: p.Skipped, Invalid: p.Invalid, Excluded: p.Excluded}
	if p.Mark != nil {
		page.Cursor = a.encode(*p.Mark)
	}
	return page, nil
}
