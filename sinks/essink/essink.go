// Package essink writes ECS events to Elasticsearch with the _bulk API.
//
// Every event is sent as a bulk "create" with _id = Event.ID, so a re-sent
// event is answered 409 version_conflict_engine_exception, which counts as
// delivered: replays after a crash or a failed attempt do not duplicate.
// (For data streams _id uniqueness holds per backing index, so a replay that
// crosses a rollover can still store a second copy.)
//
// Item outcomes: 201 written and 409 already there count as delivered;
// 429 and 5xx items are re-sent alone with backoff inside Write a few times,
// then Write returns a retryable error (re-sending the whole batch is
// harmless); 400-class items such as mapping errors are reported in a
// *pipeline.RejectedError with Elasticsearch's error type and reason.
// Request-level 401/403 are permanent; 429/5xx are retryable and honour
// Retry-After.
//
// What leaves the process: requests go only to the configured nodes (the
// client does not follow redirects, and a 3xx is an error); every request,
// including the reading of its answer, ends after Config.Timeout, and an
// answer is read up to a bound that grows with the documents sent; a
// certificate that does not verify is a permanent error naming the nodes;
// and no error or dead-letter reason holds the API key, the password, the
// base64 user:password or a password written into ELASTICSEARCH_URL, in
// any form (egress.Secrets).
package essink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// maxIDBytes is Elasticsearch's limit on _id.
const maxIDBytes = 512

// Sink is a pipeline.Sink writing to Elasticsearch. It is safe for
// concurrent use; each Write sends its own bulk requests.
type Sink struct {
	cfg     Config
	client  *elasticsearch.Client
	secrets *egress.Secrets
	nodes   string // the nodes' origins, for messages
	closed  atomic.Bool
	bufs    sync.Pool // *bytes.Buffer bulk bodies
}

var _ pipeline.Sink = (*Sink)(nil)

// New validates cfg, builds the client and, when cfg.Setup is set, installs
// the index templates (Setup) before returning. It does not otherwise
// contact the cluster.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = cfg.timeout()
	tr.MaxIdleConnsPerHost = 16
	if cfg.CAFile != "" || cfg.TLSInsecureSkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLSInsecureSkipVerify}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("HWCAUDIT_ELASTICSEARCH_CA_FILE: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("HWCAUDIT_ELASTICSEARCH_CA_FILE: %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	urls := make([]string, len(cfg.URLs))
	origins := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimSpace(u)
		origins[i] = egress.RedactURL(urls[i])
	}
	ecfg := elasticsearch.Config{
		Addresses:           urls,
		APIKey:              cfg.APIKey,
		Username:            cfg.Username,
		Password:            cfg.Password,
		Transport:           tr,
		CompressRequestBody: cfg.Compress,
		PoolCompressor:      cfg.Compress,
		// Retrying is decided in Write; the client only fails over to
		// another node when there are several.
		DisableRetry: len(urls) == 1,
		MaxRetries:   max(len(urls)-1, 1),
	}
	client, err := elasticsearch.NewClient(ecfg)
	if err != nil {
		return nil, fmt.Errorf("essink: %w", err)
	}
	s := &Sink{cfg: cfg, client: client, secrets: cfg.secrets(), nodes: strings.Join(origins, ", ")}
	if cfg.Setup {
		if err := s.Setup(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// target is where the events of one dataset go.
type target struct {
	index string
	// dsField is the `"data_stream":{…}` member spliced into documents
	// written to a data stream, or nil for a plain index.
	dsField []byte
}

func (s *Sink) targetFor(dataset string) target {
	ds := sanitizeDataset(dataset)
	name := strings.NewReplacer("{dataset}", ds, "{namespace}", s.cfg.Namespace).Replace(s.cfg.Target)
	t := target{index: name}
	if isDataStream(name) {
		// logs-<dataset>-<namespace>: the namespace has no '-'.
		rest := strings.TrimPrefix(name, "logs-")
		i := strings.LastIndexByte(rest, '-')
		f := []byte(`"data_stream":{"type":"logs","dataset":`)
		f = appendJSONString(f, rest[:i])
		f = append(f, `,"namespace":`...)
		f = appendJSONString(f, rest[i+1:])
		t.dsField = append(f, '}')
	}
	return t
}

// sanitizeDataset makes dataset usable inside an index name: lowercase,
// without '-' (the data stream separator) or characters Elasticsearch
// forbids. An empty dataset becomes "generic", Elastic's default.
func sanitizeDataset(dataset string) string {
	if dataset == "" {
		return "generic"
	}
	b := []byte(strings.ToLower(dataset))
	for i, c := range b {
		if strings.IndexByte("\\/*?\"<>| ,#:-", c) >= 0 || c < 0x20 {
			b[i] = '_'
		}
	}
	if b[0] == '_' || b[0] == '+' || b[0] == '.' {
		b[0] = 'x'
	}
	return string(b)
}

// Write sends the batch in bulk requests of at most BulkMaxDocs documents
// and about BulkMaxBytes, and returns nil once Elasticsearch answered 201
// or 409 for every event. See the package comment for the item outcomes.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	return s.redact(s.write(ctx, b))
}

// redact removes every form of the configured credentials from err's text
// and from the reasons of a *pipeline.RejectedError, which become
// dead-letter reasons.
func (s *Sink) redact(err error) error {
	var rej *pipeline.RejectedError
	if errors.As(err, &rej) && err == error(rej) {
		for i, r := range rej.Reasons {
			rej.Reasons[i] = s.secrets.Redact(r)
		}
		return rej
	}
	return s.secrets.Error(err)
}

func (s *Sink) write(ctx context.Context, b *pipeline.Batch) error {
	if s.closed.Load() {
		return pipeline.Permanent(errors.New("essink: write after Close"))
	}
	if b == nil || len(b.Events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("essink: %w", err)
	}
	rejected := make(map[int]string)
	targets := make(map[string]target, 1)
	pending := make([]int, 0, len(b.Events))
	for i := range b.Events {
		ev := &b.Events[i]
		if reason := s.check(ev); reason != "" {
			rejected[i] = reason
			continue
		}
		if _, ok := targets[ev.Dataset]; !ok {
			targets[ev.Dataset] = s.targetFor(ev.Dataset)
		}
		pending = append(pending, i)
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		retry, lastErr, err := s.sendAll(ctx, b, targets, pending, rejected)
		if err != nil {
			return err
		}
		if len(retry) == 0 {
			break
		}
		if attempt >= s.cfg.ItemRetries {
			return fmt.Errorf("essink: stream %s: %d event(s) still refused after %d attempt(s), last: %s", b.Stream, len(retry), attempt+1, lastErr)
		}
		if err := sleep(ctx, backoff(s.cfg.RetryBackoff, attempt)); err != nil {
			return fmt.Errorf("essink: stream %s: %d event(s) not yet stored: %w", b.Stream, len(retry), err)
		}
		pending = retry
	}
	if len(rejected) > 0 {
		return &pipeline.RejectedError{Reasons: rejected}
	}
	return nil
}

// check returns why ev can never be sent, or "".
func (s *Sink) check(ev *pipeline.Event) string {
	switch {
	case ev.ID == "":
		return "event has no id"
	case len(ev.ID) > maxIDBytes:
		return fmt.Sprintf("event id of %d bytes exceeds Elasticsearch's %d-byte _id limit", len(ev.ID), maxIDBytes)
	case len(ev.Doc) > s.cfg.BulkMaxBytes:
		return fmt.Sprintf("document of %d bytes exceeds HWCAUDIT_ELASTICSEARCH_BULK_MAX_BYTES (%d)", len(ev.Doc), s.cfg.BulkMaxBytes)
	}
	doc := bytes.TrimSpace(ev.Doc)
	if len(doc) < 2 || doc[0] != '{' || doc[len(doc)-1] != '}' {
		return "document is not a JSON object"
	}
	return ""
}

// sendAll sends the pending events in as many bulk requests as the limits
// require. It returns the events to re-send and the last of their errors;
// items refused for good are added to rejected. A non-nil error ends Write.
func (s *Sink) sendAll(ctx context.Context, b *pipeline.Batch, targets map[string]target, pending []int, rejected map[int]string) (retry []int, lastErr string, err error) {
	buf := s.getBuf()
	defer s.bufs.Put(buf)
	chunk := make([]int, 0, min(len(pending), s.cfg.BulkMaxDocs))
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		r, le, err := s.bulk(ctx, b, buf.Bytes(), chunk, rejected)
		if err != nil {
			return err
		}
		retry = append(retry, r...)
		if le != "" {
			lastErr = le
		}
		buf.Reset()
		chunk = chunk[:0]
		return nil
	}
	for _, i := range pending {
		ev := &b.Events[i]
		mark := buf.Len()
		if reason := appendItem(buf, targets[ev.Dataset], ev); reason != "" {
			buf.Truncate(mark)
			rejected[i] = reason
			continue
		}
		if len(chunk) > 0 && (buf.Len() > s.cfg.BulkMaxBytes || len(chunk) >= s.cfg.BulkMaxDocs) {
			item := bytes.Clone(buf.Bytes()[mark:])
			buf.Truncate(mark)
			if err := flush(); err != nil {
				return nil, "", err
			}
			buf.Write(item)
		}
		chunk = append(chunk, i)
	}
	if err := flush(); err != nil {
		return nil, "", err
	}
	return retry, lastErr, nil
}

func (s *Sink) getBuf() *bytes.Buffer {
	if b, ok := s.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// appendItem appends the action and source lines of ev. It returns why the
// document cannot be sent, or "".
func appendItem(buf *bytes.Buffer, t target, ev *pipeline.Event) string {
	buf.WriteString(`{"create":{"_index":"`)
	buf.WriteString(t.index) // validated: needs no escaping
	buf.WriteString(`","_id":`)
	buf.Write(appendJSONString(buf.AvailableBuffer(), ev.ID))
	buf.WriteString("}}\n")

	doc := bytes.TrimSpace(ev.Doc)
	if bytes.IndexByte(doc, '\n') >= 0 {
		// NDJSON: valid JSON has newlines only between tokens.
		var c bytes.Buffer
		if err := json.Compact(&c, doc); err != nil {
			return "document spans several lines and is not valid JSON: " + err.Error()
		}
		doc = c.Bytes()
	}
	if t.dsField == nil || hasTopLevelKey(doc, "data_stream") {
		buf.Write(doc)
	} else {
		// Splice the data_stream fields in before the closing brace
		// rather than re-encoding the document.
		body := doc[:len(doc)-1]
		buf.Write(body)
		if len(bytes.TrimSpace(body[1:])) > 0 {
			buf.WriteByte(',')
		}
		buf.Write(t.dsField)
		buf.WriteByte('}')
	}
	buf.WriteByte('\n')
	return ""
}

// hasTopLevelKey reports whether the JSON object doc has the member key. The
// common answer, "the key's text does not occur at all", costs one scan.
func hasTopLevelKey(doc []byte, key string) bool {
	if !bytes.Contains(doc, []byte(`"`+key+`"`)) {
		return false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return false // Elasticsearch will refuse the document itself
	}
	_, ok := m[key]
	return ok
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	plain := utf8.ValidString(s)
	for i := 0; plain && i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
		}
	}
	if plain && !strings.Contains(s, "\u2028") && !strings.Contains(s, "\u2029") {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	q, _ := json.Marshal(s)
	return append(dst, q...)
}

type bulkResponse struct {
	Took   int64 `json:"took"`
	Errors bool  `json:"errors"`
	Items  []struct {
		Create bulkItem `json:"create"`
	} `json:"items"`
}

type bulkItem struct {
	Status int      `json:"status"`
	Error  *esError `json:"error"`
}

type esError struct {
	Type     string   `json:"type"`
	Reason   string   `json:"reason"`
	CausedBy *esError `json:"caused_by"`
}

func (e *esError) String() string {
	if e == nil {
		return "no error details"
	}
	s := e.Type + ": " + e.Reason
	if e.CausedBy != nil && e.CausedBy.Reason != "" {
		s += " (caused by " + e.CausedBy.Type + ": " + e.CausedBy.Reason + ")"
	}
	return s
}

// Bounds of a bulk answer: a fixed part and, per document sent, room for an
// item with a long error reason. An answer larger than that is not read.
const (
	maxResponseBase    = 1 << 20
	maxResponsePerItem = 16 << 10
)

// bulk sends one request holding the events chunk (indices into b.Events)
// and sorts its items: delivered, rejected (added to rejected) or to retry.
func (s *Sink) bulk(ctx context.Context, b *pipeline.Batch, body []byte, chunk []int, rejected map[int]string) (retry []int, lastErr string, err error) {
	what := fmt.Sprintf("essink: stream %s: bulk of %d", b.Stream, len(chunk))
	rctx, cancel := context.WithTimeout(ctx, s.cfg.timeout())
	defer cancel()
	req := esapi.BulkRequest{Body: bytes.NewReader(body)}
	res, err := req.Do(rctx, s.client)
	if err != nil {
		return nil, "", s.transportError(ctx, rctx, what, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, "", s.requestError(res, what)
	}
	limit := int64(maxResponseBase + maxResponsePerItem*len(chunk))
	lr := &io.LimitedReader{R: res.Body, N: limit + 1}
	var br bulkResponse
	if err := json.NewDecoder(lr).Decode(&br); err != nil {
		if lr.N <= 0 {
			return nil, "", fmt.Errorf("essink: stream %s: bulk response larger than %d bytes for %d document(s); not read further", b.Stream, limit, len(chunk))
		}
		return nil, "", s.transportError(ctx, rctx, "essink: stream "+b.Stream+": bulk response", err)
	}
	if len(br.Items) != len(chunk) {
		return nil, "", fmt.Errorf("essink: stream %s: bulk response has %d items for %d sent", b.Stream, len(br.Items), len(chunk))
	}
	for k, it := range br.Items {
		i := chunk[k]
		st := it.Create.Status
		switch {
		case st == http.StatusCreated || st == http.StatusOK || st == http.StatusConflict:
			// 409: created by an earlier attempt; delivered.
		case st == http.StatusTooManyRequests || st >= 500 || st == 0:
			retry = append(retry, i)
			lastErr = fmt.Sprintf("event %d: %d %s", i, st, it.Create.Error)
		case st == http.StatusUnauthorized || st == http.StatusForbidden || st == http.StatusNotFound:
			// Not the document's fault: the credentials lack a privilege
			// or the target cannot be created. Dead-lettering every event
			// would be wrong.
			return nil, "", pipeline.Permanent(fmt.Errorf("essink: stream %s: event %s: Elasticsearch answered %d %s (check the privileges of the configured credentials on %s)",
				b.Stream, b.Events[i].ID, st, it.Create.Error, "HWCAUDIT_ELASTICSEARCH_TARGET"))
		case st >= 400:
			rejected[i] = fmt.Sprintf("elasticsearch %d %s", st, it.Create.Error)
		default:
			retry = append(retry, i)
			lastErr = fmt.Sprintf("event %d: unexpected status %d", i, st)
		}
	}
	return retry, lastErr, nil
}

// transportError classifies a request that got no usable answer: a
// certificate that does not verify is permanent; the end of ctx (the
// caller's) is reported as such; the end of rctx alone is the request's
// Timeout; anything else is a retryable network fault.
func (s *Sink) transportError(ctx, rctx context.Context, what string, err error) error {
	if e := egress.CertError(err, what, s.nodes,
		"set HWCAUDIT_ELASTICSEARCH_CA_FILE to the PEM CA that signed the cluster's certificate (e.g. its http_ca.crt)"); e != nil {
		return e
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	if rctx.Err() != nil {
		return fmt.Errorf("%s: no complete answer from %s within HWCAUDIT_ELASTICSEARCH_TIMEOUT (%s): %w", what, s.nodes, s.cfg.timeout(), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// requestError classifies a non-2xx answer to a whole request. The body
// is redacted before it is cut, so that no prefix of a secret survives.
func (s *Sink) requestError(res *esapi.Response, what string) error {
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	detail := strings.TrimSpace(s.secrets.Redact(string(raw)))
	if json.Unmarshal(raw, &body) == nil && len(body.Error) > 0 {
		var e esError
		if json.Unmarshal(body.Error, &e) == nil && e.Type != "" {
			detail = e.String()
		} else {
			var str string
			if json.Unmarshal(body.Error, &str) == nil {
				detail = str
			}
		}
	}
	detail = s.secrets.Redact(detail) // the JSON decoding undid escapes
	if len(detail) > 512 {
		for n := 512; n > 0; n-- {
			if utf8.RuneStart(detail[n]) {
				detail = detail[:n] + "…"
				break
			}
		}
	}
	st := res.StatusCode
	err := fmt.Errorf("%s: HTTP %d: %s", what, st, detail)
	switch {
	case st == http.StatusUnauthorized:
		return pipeline.Permanent(fmt.Errorf("%w (Elasticsearch refused the credentials: check HWCAUDIT_ELASTICSEARCH_API_KEY or HWCAUDIT_ELASTICSEARCH_USERNAME/_PASSWORD)", err))
	case st == http.StatusForbidden:
		return pipeline.Permanent(fmt.Errorf("%w (the credentials lack a privilege: writing needs create_doc and auto_configure on the target, HWCAUDIT_ELASTICSEARCH_SETUP needs manage_index_templates)", err))
	case st == http.StatusRequestEntityTooLarge:
		return pipeline.Permanent(fmt.Errorf("%w (lower HWCAUDIT_ELASTICSEARCH_BULK_MAX_BYTES below the cluster's http.max_content_length)", err))
	case st == http.StatusTooManyRequests || st >= 500:
		if d, ok := retryAfter(res.Header.Get("Retry-After")); ok {
			return &pipeline.RetryAfterError{After: d, Err: err}
		}
		return err
	case st == http.StatusBadRequest || st == http.StatusNotFound || st == http.StatusMethodNotAllowed || st == http.StatusNotAcceptable:
		return pipeline.Permanent(err)
	}
	return err
}

func retryAfter(h string) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

func backoff(base time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 16)
	if d > 30*time.Second || d < 0 {
		d = 30 * time.Second
	}
	if d <= 0 {
		return 0
	}
	// ±25% jitter so concurrent writers do not retry in step.
	return d*3/4 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close marks the sink closed. Writes are synchronous, so every event a
// Write acknowledged is already stored (visible to searches after the
// cluster's next refresh, within refresh_interval, 1s by default).
func (s *Sink) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.client.Close(ctx); err != nil && !errors.Is(err, elasticsearch.ErrAlreadyClosed) {
		return fmt.Errorf("essink: close: %w", err)
	}
	return nil
}
