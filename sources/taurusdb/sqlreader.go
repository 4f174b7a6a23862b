package taurusdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
	"github.com/hwcaudit/hwcaudit/sources/window"
)

// maxLinkAttempts bounds the links asked for one download that the
// server keeps refusing (403: expired or not valid).
const maxLinkAttempts = 3

// linkReuse is how long after it was obtained a link is used again to
// reopen a download (after a dropped connection): well inside
// LinkValidity, so that it does not expire between the check and the
// request.
const linkReuse = LinkValidity - time.Minute

// sqlReader reads a SQL stream: files from the window reader, a page at a
// time, and the records of each file, SQLPageRecords at a time.
type sqlReader struct {
	s     *SQLStream
	files pipeline.Reader
	cur   sqlCursor // the position after everything Next returned

	page      []fileRef // files of the files page not yet read whole
	pageAfter []byte    // the files cursor after that page; nil: no page
	dl        *sqlDownload

	link     string // the last link obtained, for page[0]
	linkFor  string
	linkTime time.Time

	fetched int64 // records and dead letters returned since the reader opened
}

// fileRef is one file of a files page.
type fileRef struct {
	id   string
	name string
	t    int64 // key second
	raw  []byte
	// letter, when set, is why the file cannot be read: it is
	// dead-lettered with this reason.
	letter string
}

// Next returns the next page of statements, an empty page that moves the
// cursor past files, or a page whose Invalid holds a file that cannot be
// read. After an error the position is unchanged; a download in progress
// is dropped and the next call resumes it.
func (r *sqlReader) Next(ctx context.Context) (pipeline.Page, error) {
	for {
		if len(r.page) == 0 && r.pageAfter != nil {
			r.cur.advance(r.pageAfter)
			r.pageAfter = nil
			return r.finish(pipeline.Page{}), nil
		}
		if len(r.page) == 0 {
			p, err := r.files.Next(ctx)
			if err != nil {
				return pipeline.Page{}, err // io.EOF included
			}
			r.setPage(p)
			continue
		}
		f := r.page[0]
		if f.letter != "" {
			r.page = r.page[1:]
			return r.finish(pipeline.Page{Invalid: []pipeline.Invalid{{Raw: f.raw, Reason: f.letter}}}), nil
		}
		if r.cur.done(f.id, f.t) {
			r.page = r.page[1:]
			continue
		}
		if r.dl == nil {
			dl, letter, err := r.open(ctx, f)
			if err != nil {
				return pipeline.Page{}, err
			}
			if letter != "" {
				r.cur.markDone(f.id, f.t)
				r.page = r.page[1:]
				return r.finish(pipeline.Page{Invalid: []pipeline.Invalid{{Raw: f.raw, Reason: letter}}}), nil
			}
			r.dl = dl
		}
		return r.read(ctx, f)
	}
}

// Close drops a download in progress.
func (r *sqlReader) Close() error {
	r.drop()
	return nil
}

func (r *sqlReader) drop() {
	if r.dl != nil {
		r.dl.close()
		r.dl = nil
	}
}

// setPage takes the files of a files page, the file in progress first.
func (r *sqlReader) setPage(p pipeline.Page) {
	r.page = r.page[:0]
	r.pageAfter = p.Cursor
	if r.pageAfter == nil {
		r.pageAfter = []byte("null")
	}
	for _, raw := range p.Records {
		v, err := jsonscan.Parse(raw)
		var k window.Record
		if err == nil {
			k = keyOf(v)
		}
		if k.ID == "" || k.Time.IsZero() {
			// No download link can be asked for a file without id: its
			// statements cannot be read, which this stream must say.
			r.page = append(r.page, fileRef{raw: raw, letter: fmt.Sprintf(
				"taurusdb instance %s: an audit log file listed without an id or a usable time: its SQL statements cannot be downloaded", r.s.instance)})
			continue
		}
		var a auditLog
		_ = a.decode(raw)
		ref := fileRef{id: k.ID, name: a.Name, t: k.Time.Unix(), raw: raw}
		if r.cur.File != nil && r.cur.File.ID == ref.id {
			r.page = append([]fileRef{ref}, r.page...)
			continue
		}
		r.page = append(r.page, ref)
	}
	// File records the window reader could not place (p.Invalid) are
	// dead letters of the files stream, and of this one: their statements
	// are not read.
	for _, inv := range p.Invalid {
		r.page = append(r.page, fileRef{raw: inv.Raw, letter: fmt.Sprintf(
			"taurusdb instance %s: an audit log file that cannot be placed in time, so its SQL statements are not read: %s", r.s.instance, inv.Reason)})
	}
}

// finish sets page's cursor to the reader's position and its Total to
// what the reader returned since it opened (no API counts statements).
func (r *sqlReader) finish(page pipeline.Page) pipeline.Page {
	r.fetched += int64(len(page.Records) + len(page.Invalid))
	page.Cursor = r.cur.encode()
	page.Total = r.fetched
	page.Remaining = -1
	return page
}

// read returns the next records of the open download of f.
func (r *sqlReader) read(ctx context.Context, f fileRef) (pipeline.Page, error) {
	stop := context.AfterFunc(ctx, r.dl.cancel)
	defer stop()
	// While this call reads, the idle timer ends a download that stalls
	// for SQLReadTimeout. Between calls the pipeline delivers the page,
	// which may take a while, so the timer then waits ten times as long
	// before it closes the download: the pipeline never closes a reader,
	// and one that is abandoned (end of run, stream stopped) must not hold
	// its connection forever. A download closed that way is reopened where
	// it stopped by the next call.
	if ib, ok := r.dl.body.(*idleBody); ok {
		ib.timer.Reset(ib.d)
		defer ib.timer.Reset(10 * ib.d)
	}
	page := pipeline.Page{Records: make([][]byte, 0, min(r.s.pageRecords, 256))}
	bytesN := 0
	fc := r.cur.File
	for len(page.Records)+len(page.Invalid) < r.s.pageRecords && bytesN < maxPageBytes {
		rec, err := r.dl.file.next()
		if errors.Is(err, io.EOF) {
			r.drop()
			r.cur.markDone(f.id, f.t)
			r.page = r.page[1:]
			return r.finish(page), nil
		}
		if err != nil && r.dl.file.corrupt(err) {
			// Downloading it again gives the same bytes: the rest of the
			// file is dead-lettered, the records before it were delivered.
			r.drop()
			page.Invalid = append(page.Invalid, pipeline.Invalid{Raw: f.raw, Reason: fmt.Sprintf(
				"taurusdb instance %s audit log file %s: gzip data corrupt after record %d, the rest of the file cannot be read: %v", r.s.instance, f.id, fc.Records, err)})
			r.cur.markDone(f.id, f.t)
			r.page = r.page[1:]
			return r.finish(page), nil
		}
		if err != nil {
			r.drop()
			err = r.dl0Error(ctx, f, err)
			if len(page.Records)+len(page.Invalid) > 0 {
				// What was read is delivered; the next call reopens the
				// download after it.
				return r.finish(page), nil
			}
			return pipeline.Page{}, err
		}
		n := fc.Records
		fc.Records++
		if !r.dl.file.gzipped {
			fc.Offset = r.dl.file.offset()
		}
		if rec.fields == nil {
			page.Invalid = append(page.Invalid, pipeline.Invalid{Raw: append([]byte(nil), rec.raw...), Reason: fmt.Sprintf("taurusdb audit log file %s record %d: %s", f.id, n, rec.reason)})
			bytesN += len(rec.raw)
			continue
		}
		env := r.s.envelope(f, n, rec.fields)
		bytesN += len(env)
		page.Records = append(page.Records, env)
	}
	return r.finish(page), nil
}

// dl0Error is the error of a download that broke after it opened.
func (r *sqlReader) dl0Error(ctx context.Context, f fileRef, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("taurusdb instance %s audit log file %s: reading the download: %w", r.s.instance, f.id, redactLinkErr(err))
}

// envelope is the record a SQL page holds: the file it came from, its
// ordinal in the file and its fields, as JSON.
func (s *SQLStream) envelope(f fileRef, n int64, fields []byte) []byte {
	out := make([]byte, 0, len(fields)+len(f.id)+len(f.name)+64)
	out = append(out, `{"audit_log_id":`...)
	out = ecsdoc.AppendString(out, f.id)
	if f.name != "" {
		out = append(out, `,"file":`...)
		out = ecsdoc.AppendString(out, f.name)
	}
	out = append(out, `,"n":`...)
	out = strconv.AppendInt(out, n, 10)
	out = append(out, `,"record":`...)
	out = append(out, fields...)
	return append(out, '}')
}

// open starts the download of f at the cursor's position inside it. A
// file that cannot be read comes back as a dead-letter reason; an error
// is retryable unless marked permanent.
func (r *sqlReader) open(ctx context.Context, f fileRef) (*sqlDownload, string, error) {
	if r.cur.File == nil || r.cur.File.ID != f.id {
		r.cur.File = &fileCursor{ID: f.id}
	}
	fc := r.cur.File
	for attempt := 1; ; attempt++ {
		link, letter, err := r.linkOf(ctx, f)
		if err != nil || letter != "" {
			return nil, letter, err
		}
		dl, status, err := r.s.get(ctx, link, fc)
		if err != nil {
			return nil, "", fmt.Errorf("taurusdb instance %s audit log file %s: download: %w", r.s.instance, f.id, err)
		}
		switch {
		case status == http.StatusForbidden:
			// Expired (links live five minutes) or refused: a new link.
			r.link = ""
			if attempt >= maxLinkAttempts {
				return nil, "", fmt.Errorf("taurusdb instance %s audit log file %s: the download link was refused (HTTP 403) %d times in a row, each time with a new link", r.s.instance, f.id, attempt)
			}
			continue
		case status == http.StatusNotFound:
			return nil, fmt.Sprintf("taurusdb instance %s audit log file %s: the download answered HTTP 404: the file is gone (past its retention?)", r.s.instance, f.id), nil
		case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
			return nil, "", fmt.Errorf("taurusdb instance %s audit log file %s: download: HTTP %d", r.s.instance, f.id, status)
		case status != 0:
			return nil, fmt.Sprintf("taurusdb instance %s audit log file %s: the download answered HTTP %d", r.s.instance, f.id, status), nil
		}
		// Detection and skipping read the body: the run's end ends them.
		stop := context.AfterFunc(ctx, dl.cancel)
		err = r.position(dl, fc)
		stop()
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // the body may have been cut as it ended
		}
		if err != nil {
			dl.close()
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			if errors.Is(err, errUnreadable) {
				return nil, fmt.Sprintf("taurusdb instance %s audit log file %s: %v", r.s.instance, f.id, err), nil
			}
			return nil, "", fmt.Errorf("taurusdb instance %s audit log file %s: %w", r.s.instance, f.id, redactLinkErr(err))
		}
		return dl, "", nil
	}
}

// position detects the format of a download from the file's start, or
// takes it from the cursor for a ranged one, and skips the records the
// cursor says were delivered.
func (r *sqlReader) position(dl *sqlDownload, fc *fileCursor) error {
	if dl.from > 0 {
		// A header's columns are in the cursor; a file without header row
		// has the configured ones, as when its start was read.
		columns := fc.Columns
		if fc.Format == FormatCSV {
			columns = r.s.columns
		}
		dl.file = resumeSQLFile(dl.body, dl.from, fc.Format, columns, r.s.maxRecord)
		return nil
	}
	file, err := openSQLFile(dl.body, r.s.columns, r.s.maxRecord)
	if err != nil {
		return err
	}
	dl.file = file
	if fc.Format != "" && fc.Format != file.format {
		return fmt.Errorf("%w: the file was %s when read before and is %s now", errUnreadable, fc.Format, file.format)
	}
	fc.Format = file.format
	fc.ETag = ""
	// A weak ETag never matches If-Match (RFC 9110 13.1.1): not kept.
	if !file.gzipped && len(dl.etag) <= 256 && !strings.HasPrefix(dl.etag, "W/") {
		fc.ETag = dl.etag
	}
	fc.Columns = nil
	if file.format == FormatCSVHeader && len(strings.Join(file.columns, ",")) <= 4096 {
		fc.Columns = file.columns
	}
	for range fc.Records {
		if err := file.skip(); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: the file holds fewer records than the %d delivered before; it changed", errUnreadable, fc.Records)
			}
			return err
		}
	}
	return nil
}

// linkOf returns a download link for f: the last one while it is fresh,
// else a new one. A file the API gives no link for is dead-lettered.
func (r *sqlReader) linkOf(ctx context.Context, f fileRef) (string, string, error) {
	if r.link != "" && r.linkFor == f.id && r.s.now().Sub(r.linkTime) < linkReuse {
		return r.link, "", nil
	}
	links, err := r.s.requestLinks(ctx, []string{f.id})
	if reason, ok := refusedForFile(err, f.id); ok {
		return "", fmt.Sprintf("taurusdb instance %s audit log file %s: the download link request was refused for this file: %s", r.s.instance, f.id, reason), nil
	}
	if err != nil {
		return "", "", err
	}
	// No link concerns this file: dead-lettered. Several links for one
	// id, or a link that is not https, is the shape of the service's
	// answers, the same for every file: a permanent error keeps the
	// checkpoint (the files stay to be read once it is understood)
	// instead of dead-lettering every file as it comes.
	if len(links) == 0 {
		return "", fmt.Sprintf("taurusdb instance %s audit log file %s: the download link request answered no link for it", r.s.instance, f.id), nil
	}
	if len(links) != 1 {
		return "", "", pipeline.Permanent(fmt.Errorf("taurusdb instance %s audit log file %s: the download link request answered %d links for 1 id; which is the file's is not known", r.s.instance, f.id, len(links)))
	}
	u, perr := url.Parse(links[0])
	if perr != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && (r.s.allowHTTP || egress.IsLoopback(u.Host))) {
		return "", "", pipeline.Permanent(fmt.Errorf("taurusdb instance %s audit log file %s: the download link is not an https URL (%s): the statements would cross the network in clear", r.s.instance, f.id, egress.RedactURL(links[0])))
	}
	r.link, r.linkFor, r.linkTime = links[0], f.id, r.s.now()
	return r.link, "", nil
}

// refusedForFile reports a link request refused because of the file
// itself (it expired between the listing and the download: the SQL
// stream may lag days behind), which no retry repairs and which must not
// stop the files after it: a 404 of the service (not of the API gateway,
// whose 404 says the API itself is missing), or a 400 or 404 whose
// message names the file's id. Any other refusal (permissions, a request
// the service does not take) concerns every file and fails the stream.
func refusedForFile(err error, id string) (string, bool) {
	var ae *huaweiapi.APIError
	if err == nil || !errors.As(err, &ae) {
		return "", false
	}
	named := (ae.Status == http.StatusBadRequest || ae.Status == http.StatusNotFound) && strings.Contains(ae.Message, id)
	if !named && (ae.Status != http.StatusNotFound || strings.HasPrefix(ae.Code, "APIGW.")) {
		return "", false
	}
	return ae.Error(), true
}

// requestLinks asks for the download links of ids (at most MaxLinkIDs):
// POST /v3/{project_id}/instances/{instance_id}/audit-log-link with
// {"ids":[…]}, answered {"links":[…]}. The answer's links carry no id;
// the reader asks for one file at a time so that a link cannot be taken
// for another file's.
func (s *SQLStream) requestLinks(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 || len(ids) > MaxLinkIDs {
		return nil, pipeline.Permanent(fmt.Errorf("taurusdb: %d ids for one link request (1..%d)", len(ids), MaxLinkIDs))
	}
	body, err := json.Marshal(struct {
		IDs []string `json:"ids"`
	}{ids})
	if err != nil {
		return nil, err
	}
	resp, err := s.api.Do(ctx, huaweiapi.Request{
		Method:   http.MethodPost,
		Endpoint: s.endpoint,
		Path:     "/v3/" + url.PathEscape(s.project) + "/instances/" + url.PathEscape(s.instance) + "/audit-log-link",
		Body:     body,
	})
	if err != nil {
		return nil, fmt.Errorf("taurusdb instance %s: audit log download link: %w", s.instance, err)
	}
	return decodeLinks(resp)
}

// decodeLinks reads {"links":[…]}; null or absent links are none. A body
// of another shape is a permanent error that shows no link.
func decodeLinks(body []byte) ([]string, error) {
	var links []string
	err := jsonscan.Members(body, func(name []byte, v jsonscan.Value) error {
		if string(jsonscan.Name(name)) != "links" {
			return nil
		}
		l, err := v.List("links")
		if err != nil {
			return err
		}
		for _, e := range l {
			s, ok := e.String()
			if !ok {
				return fmt.Errorf("links holds a %s, want strings", e.Kind)
			}
			links = append(links, s)
		}
		return nil
	})
	if err != nil {
		return nil, pipeline.Permanent(fmt.Errorf("taurusdb: the download link answer is not {\"links\":[…]}: %w", err))
	}
	return links, nil
}

// sqlDownload is one open file download.
type sqlDownload struct {
	body   io.ReadCloser // the response body behind the idle timer
	cancel context.CancelFunc
	from   int64  // the byte the body starts at (a 206), or 0
	etag   string // the ETag of a whole file's answer
	file   *sqlFile
	once   sync.Once
}

func (d *sqlDownload) close() {
	d.once.Do(func() {
		d.cancel()
		_ = d.body.Close()
	})
}

// get requests link, from fc.Offset when the file is known to be plain
// (not gzip) and past its start. A non-2xx answer comes back as its
// status with a nil download; an error is a transport failure, with the
// link's query (its signature) removed.
//
// A ranged request carries If-Match with the ETag the file had when it
// was first read, so that a server that keeps ETags answers 412 for a
// file written again since (its bytes at the offset are no longer a
// record's start). That 412, a 206 of another range or of another ETag
// (a server or proxy that ignores If-Match, or answers ranges its own
// way) are answered by reading the file from its start, skipping the
// records delivered, instead of retrying the same range forever.
func (s *SQLStream) get(ctx context.Context, link string, fc *fileCursor) (*sqlDownload, int, error) {
	ranged := fc.Offset > 0 && fc.Format != "" && (fc.Format != FormatCSVHeader || fc.Columns != nil)
	for {
		d, status, retryWhole, err := s.get1(ctx, link, fc, ranged)
		if !retryWhole {
			return d, status, err
		}
		ranged = false
	}
}

// get1 is one request of get; retryWhole asks get for the whole file.
func (s *SQLStream) get1(ctx context.Context, link string, fc *fileCursor, ranged bool) (_ *sqlDownload, _ int, retryWhole bool, _ error) {
	// The download outlives this call (it is read page by page), so it
	// does not take ctx's cancellation; Next ties each read to its ctx and
	// the idle timer ends a stalled one.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, link, nil)
	if err != nil {
		cancel()
		return nil, 0, false, fmt.Errorf("download link %s: %w", egress.RedactURL(link), redactLinkErr(err))
	}
	// Only what a plain GET needs: no Authorization, no X-Auth-Token, no
	// signature headers: the link is signed in its query. identity keeps
	// Go from unzipping a Content-Encoding: gzip body, so that byte
	// offsets are the stored file's.
	req.Header.Set("Accept-Encoding", "identity")
	if ranged {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(fc.Offset, 10)+"-")
		if fc.ETag != "" {
			req.Header.Set("If-Match", fc.ETag)
		}
	}
	stopCancel := context.AfterFunc(ctx, cancel)
	resp, err := s.http.Do(req)
	stopCancel()
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return nil, 0, false, ctx.Err()
		}
		if errors.Is(err, egress.ErrRedirect) {
			// The same for every link (where OBS sends downloads): no
			// retry follows it, and the stream says so at once.
			return nil, 0, false, pipeline.Permanent(redactLinkErr(err))
		}
		return nil, 0, false, redactLinkErr(err)
	}
	etag := resp.Header.Get("ETag")
	switch {
	case resp.StatusCode == http.StatusPartialContent && ranged && restOfFile(resp.Header.Get("Content-Range"), fc.Offset) &&
		(fc.ETag == "" || etag == "" || etag == fc.ETag) && identity(resp.Header.Get("Content-Encoding")):
		d := &sqlDownload{cancel: cancel, from: fc.Offset}
		d.body = newIdleBody(resp.Body, s.readTimeout, cancel)
		return d, 0, false, nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && ranged:
		// The records delivered ended the file: an empty rest.
		_ = resp.Body.Close()
		d := &sqlDownload{cancel: cancel, from: fc.Offset, body: io.NopCloser(strings.NewReader(""))}
		return d, 0, false, nil
	case resp.StatusCode == http.StatusOK:
		d := &sqlDownload{cancel: cancel, etag: etag}
		d.body = newIdleBody(resp.Body, s.readTimeout, cancel)
		return d, 0, false, nil
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	_ = resp.Body.Close()
	cancel()
	if ranged && (resp.StatusCode == http.StatusPartialContent || resp.StatusCode == http.StatusPreconditionFailed) {
		return nil, 0, true, nil
	}
	status := resp.StatusCode
	if status == http.StatusPartialContent {
		status = http.StatusBadGateway // a range not asked for: retry
	}
	return nil, status, false, nil
}

// identity reports a Content-Encoding that leaves the bytes as stored: a
// range of compressed bytes is not the rest of the records.
func identity(enc string) bool {
	enc = strings.TrimSpace(enc)
	return enc == "" || strings.EqualFold(enc, "identity")
}

// restOfFile reports a Content-Range ("bytes first-last/size") that is
// the rest of the file from offset: it starts there and, when the size is
// given, ends at the file's end. A server (a CDN) that answers an
// open-ended range with a part of it would otherwise make its body's end
// look like the file's.
func restOfFile(h string, offset int64) bool {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	if !ok {
		return false
	}
	span, size, ok := strings.Cut(rest, "/")
	if !ok {
		return false
	}
	first, last, ok := strings.Cut(span, "-")
	if !ok {
		return false
	}
	f, err1 := strconv.ParseInt(first, 10, 64)
	l, err2 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || f != offset || l < f {
		return false
	}
	if size == "*" {
		return true
	}
	n, err := strconv.ParseInt(size, 10, 64)
	return err == nil && l+1 == n
}

// redactLinkErr removes a download link from err's text: net/http's
// *url.Error quotes the URL, whose query holds the link's signature.
func redactLinkErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: egress.RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}

// idleBody cancels a download that delivered nothing for timeout.
type idleBody struct {
	rc    io.ReadCloser
	timer *time.Timer
	d     time.Duration
}

func newIdleBody(rc io.ReadCloser, d time.Duration, cancel context.CancelFunc) *idleBody {
	return &idleBody{rc: rc, d: d, timer: time.AfterFunc(d, cancel)}
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.d)
	n, err := b.rc.Read(p)
	b.timer.Reset(b.d)
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}
