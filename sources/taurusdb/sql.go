package taurusdb

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// SQLDataset is event.dataset for the SQL statements of TaurusDB audit
// log files.
const SQLDataset = "huaweicloud.taurusdb_sql"

// MaxLinkIDs is the API's upper bound on the ids of one download link
// request (ShowAuditLogDownloadLink).
const MaxLinkIDs = 50

// LinkValidity is how long a download link is documented to work.
const LinkValidity = 5 * time.Minute

// maxPageBytes cuts a page of statements at this many record bytes, so
// that long statements do not make a page of SQLPageRecords huge.
const maxPageBytes = 4 << 20

// SQLStream reads the SQL statements of one instance's audit log files.
// Its Key is "taurusdb_sql/{instance}".
//
// It is a stream of its own, beside the files stream "taurusdb/{instance}",
// rather than an extension of it: the files stream delivers a cheap event
// per file and keeps its cursor ({through, lookback_s}) unchanged for
// existing checkpoints, while this one downloads every file and may lag
// far behind, be switched on later (it then starts at the configured start
// like any new stream) or off, without moving the other. Each lists the
// files itself through the same window reader; listing is one request per
// window, downloading is the cost.
//
// Its cursor (see sqlCursor) is the files cursor before the page of files
// being read, the files of that page already read whole, and the position
// inside the file being read: how many records were delivered and how many
// bytes they took. A run killed in the middle of a 100 MB file opens the
// files reader at that cursor, asks for a new link (links are valid five
// minutes), asks the server for the rest of the file from the byte offset
// when it honours Range (not for gzip files), else skips the records
// delivered, and goes on: nothing is lost, the records of the last
// uncommitted page are delivered again.
type SQLStream struct {
	files    window.Stream
	api      huaweiapi.Doer
	http     *http.Client
	endpoint string
	project  string
	region   string
	instance string
	now      func() time.Time

	columns     []string
	maxRecord   int
	pageRecords int
	readTimeout time.Duration
	// allowHTTP lets download links use http: set when the API endpoint
	// itself is http (the simulator, a test).
	allowHTTP bool
}

// NewSQLStreams returns one SQL statement stream per configured instance
// when cfg.SQL is set, else none. client downloads the files; nil: a plain
// client (egress.HTTPClient) that sends no credentials and refuses
// redirects to another server.
func NewSQLStreams(cfg Config, api huaweiapi.Doer, client *http.Client, region, project string, o Options) []*SQLStream {
	if !cfg.SQL {
		return nil
	}
	if o.Lookback <= 0 {
		o.Lookback = cmp.Or(cfg.Lookback, DefaultLookback)
	}
	readTimeout := cmp.Or(cfg.SQLReadTimeout, time.Minute)
	if client == nil {
		client = downloadClient(readTimeout)
	}
	endpoint := cfg.endpoint(region)
	var out []*SQLStream
	for _, ins := range cfg.Instances {
		s := &SQLStream{
			api:         api,
			http:        client,
			endpoint:    endpoint,
			project:     project,
			region:      region,
			instance:    ins,
			now:         o.Now,
			columns:     cfg.columns(),
			maxRecord:   cmp.Or(cfg.SQLMaxRecordBytes, 1<<20),
			pageRecords: cmp.Or(cfg.SQLPageRecords, 1000),
			readTimeout: readTimeout,
			allowHTTP:   len(endpoint) > 7 && endpoint[:7] == "http://",
		}
		lister := &Stream{api: api, endpoint: endpoint, project: project, region: region, instance: ins, now: o.Now}
		s.files = window.NewStream(window.Options{
			Key:      "taurusdb_sql/" + ins,
			Start:    o.Start,
			End:      o.End,
			Config:   o.Window,
			MaxSpan:  MaxSpan,
			Lookback: o.Lookback,
			PageSize: cfg.PageSize,
			Now:      o.Now,
			Fetch:    lister.fetch,
		})
		out = append(out, s)
	}
	return out
}

// downloadClient is the client for download links: egress.HTTPClient's
// redirect checks (same server only, at most five), no overall timeout (a
// 100 MB body takes its time; sqlDownload's idle timer bounds a stall),
// and a bound on the wait for response headers.
func downloadClient(readTimeout time.Duration) *http.Client {
	c := egress.HTTPClient(0, nil)
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr.ResponseHeaderTimeout = readTimeout
	}
	return c
}

// Key is "taurusdb_sql/{instance}".
func (s *SQLStream) Key() string { return s.files.Key() }

// EndAt bounds the stream's range (a backfill's --to): files whose
// end_time is at or after end are not read.
func (s *SQLStream) EndAt(end time.Time) { s.files.EndAt(end) }

// Probe lists the first window's files with the page shrunk to one, as
// the files stream's probe does; it does not ask for a download link,
// which needs a file and may find none yet.
func (s *SQLStream) Probe(ctx context.Context) (total int64, asked bool, err error) {
	return s.files.Probe(ctx)
}

// Open starts after cursor (a sqlCursor), or at the start when nil.
func (s *SQLStream) Open(ctx context.Context, cursor []byte) (pipeline.Reader, error) {
	var c sqlCursor
	if cursor != nil {
		var err error
		if c, err = decodeSQLCursor(cursor); err != nil {
			return nil, fmt.Errorf("checkpoint of %s: %w", s.Key(), err)
		}
	}
	files, err := s.files.Open(ctx, c.Files)
	if err != nil {
		return nil, err
	}
	return &sqlReader{s: s, files: files, cur: c}, nil
}

// sqlCursor is the SQL stream's checkpoint.
type sqlCursor struct {
	// Files is the files cursor (window.Cursor) before the page of files
	// being read; null at the stream's start.
	Files json.RawMessage `json:"files,omitempty"`
	// Done are the files read whole that the files reader, opened at
	// Files, lists again: those at or after Files' through second.
	Done []doneFile `json:"done,omitempty"`
	// File is the file being read, or nil between files.
	File *fileCursor `json:"file,omitempty"`
}

// doneFile is a file read whole: its id and the second of its key time.
type doneFile struct {
	ID   string `json:"id"`
	Time int64  `json:"t"`
}

// fileCursor is the position inside a file.
type fileCursor struct {
	ID string `json:"id"`
	// Records is how many records of the file were delivered (mapped,
	// dead-lettered or refused).
	Records int64 `json:"records"`
	// Offset is how many bytes of the file those records took, for a
	// ranged resume; 0 when the file is gzip (its bytes are compressed).
	Offset int64 `json:"offset,omitempty"`
	// Format and Columns are the file's detected format and CSV columns,
	// which a ranged resume cannot detect again.
	Format  Format   `json:"format,omitempty"`
	Columns []string `json:"columns,omitempty"`
	// ETag is the file's ETag when it was read from its start, sent as
	// If-Match with a ranged resume so that a file written again since is
	// not read from an offset into other bytes.
	ETag string `json:"etag,omitempty"`
}

// maxDone bounds the cursor's Done list: more files than this listed at
// or after one second is not a shape the API produces; beyond it the
// oldest are forgotten and, if listed again, read again (repeats, never
// losses).
const maxDone = 1000

func decodeSQLCursor(raw []byte) (sqlCursor, error) {
	var c sqlCursor
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, pipeline.Permanent(fmt.Errorf("not a TaurusDB SQL cursor: %w", err))
	}
	if len(c.Files) > 0 && string(c.Files) == "null" {
		c.Files = nil
	}
	if c.Files != nil {
		if _, err := window.DecodeCursor(c.Files); err != nil {
			return c, err
		}
	}
	if f := c.File; f != nil {
		if f.ID == "" || f.Records < 0 || f.Offset < 0 {
			return c, pipeline.Permanent(fmt.Errorf("TaurusDB SQL cursor: bad file position %+v", *f))
		}
		if f.Format != "" {
			if _, err := formatOf(string(f.Format)); err != nil {
				return c, pipeline.Permanent(fmt.Errorf("TaurusDB SQL cursor: %w", err))
			}
		}
	}
	return c, nil
}

func (c *sqlCursor) encode() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // strings and integers always encode
	}
	return b
}

// done reports whether the file id, listed at key second t, was read
// whole. A file listed again at another second (it grew, its end_time
// moved) is another record for the window reader, and read again here:
// its statements repeat, the new ones are not lost.
func (c *sqlCursor) done(id string, t int64) bool {
	for _, d := range c.Done {
		if d.ID == id && d.Time == t {
			return true
		}
	}
	return false
}

// advance moves Files to the cursor after a page whose files were all
// read, forgetting the done files the reader opened there will not list.
// File is kept: a reader resumed in the middle of a file lists, first,
// the files of that second read before it (a files page holds whole
// seconds only by chance), and the file in progress comes in a later
// page; its position must survive the pages before it (open replaces it
// when another file is read first).
func (c *sqlCursor) advance(files []byte) {
	c.Files = files
	wc, err := window.DecodeCursor(files)
	if err != nil {
		return // the window reader's own cursor; keeps Done as it is
	}
	through := wc.Through.Unix()
	kept := c.Done[:0]
	for _, d := range c.Done {
		// The reader opened at through lists files from one second and
		// the look-back before it; keeping the second before is enough
		// for a file whose key is through's second.
		if d.Time >= through-1 {
			kept = append(kept, d)
		}
	}
	c.Done = kept
}

// markDone records file id (key second t) as read whole.
func (c *sqlCursor) markDone(id string, t int64) {
	c.File = nil
	if len(c.Done) >= maxDone {
		c.Done = c.Done[1:]
	}
	c.Done = append(c.Done, doneFile{ID: id, Time: t})
}
