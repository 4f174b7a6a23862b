// Package estest is an in-process stand-in for the parts of Elasticsearch 8
// that essink uses, following the documented behaviour of the REST API:
//
//   - every response carries "X-Elastic-Product: Elasticsearch", which the
//     v8 Go client checks on its first successful response; GET / answers
//     the cluster info document;
//   - POST /_bulk and /{target}/_bulk parse NDJSON action and source lines
//     (gzip bodies when Content-Encoding is gzip), require the final
//     newline, and answer {"took","errors","items":[{op:{_index,_id,status,
//     result|error}}]} with HTTP 200 even when items fail;
//   - op_type create on an existing _id fails the item with 409
//     version_conflict_engine_exception; index overwrites;
//   - targets named logs-*-* are data streams: only create is allowed
//     (index → 400 illegal_argument_exception) and @timestamp is required;
//   - fields declared with SetFieldType fail documents holding a value of
//     another type (400 document_parsing_exception);
//   - per-item 429 es_rejected_execution_exception and whole-request
//     failures are injected on demand;
//   - wrong or missing credentials give 401 with the security_exception body;
//   - PUT/GET /_component_template/{name} and /_index_template/{name}, with
//     the check that composed_of templates exist.
//
// Stored documents are read back with Docs.
package estest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake Elasticsearch node on loopback.
type Server struct {
	// URL is the base URL, e.g. "http://127.0.0.1:41234". It stays the same
	// across Stop and Start.
	URL string

	addr string

	mu        sync.Mutex
	srv       *http.Server
	apiKey    string // accepted "ApiKey <key>"; empty = no auth unless basic set
	user      string
	pass      string
	indices   map[string]*index
	fieldType map[string]string // dotted path → "long", "keyword", "date"
	itemFail  map[string][]int  // _id → statuses to answer next, in order
	reqFail   []reqFailure
	compTmpl  map[string]json.RawMessage
	idxTmpl   map[string]json.RawMessage
	stats     Stats
}

type reqFailure struct {
	status     int
	retryAfter string
}

// Stats counts what the server saw.
type Stats struct {
	BulkRequests   int // bulk requests that reached the bulk handler
	GzipRequests   int // of those, with a gzip body
	Items          int // bulk items processed
	MaxItems       int // the largest number of items in one request
	MaxBodyBytes   int // the largest uncompressed bulk body
	AuthFailures   int
	TemplatePuts   int
	LastAuthHeader string
}

type index struct {
	dataStream bool
	ids        map[string]int // _id → position in docs
	docs       [][]byte
}

// New starts a server on a free loopback port and stops it at test cleanup.
func New(tb testing.TB) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("estest: %v", err)
	}
	s := &Server{
		addr:      ln.Addr().String(),
		indices:   make(map[string]*index),
		fieldType: make(map[string]string),
		itemFail:  make(map[string][]int),
		compTmpl:  make(map[string]json.RawMessage),
		idxTmpl:   make(map[string]json.RawMessage),
	}
	// The component templates a stock 8.x cluster ships with.
	for _, name := range []string{"logs@mappings", "logs@settings", "ecs@mappings", "data-streams@mappings"} {
		s.compTmpl[name] = json.RawMessage(`{"template":{}}`)
	}
	s.URL = "http://" + s.addr
	s.serve(ln)
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Stop closes the listener and every connection, as a node going down.
// Stored documents survive.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Start listens again on the same address after Stop.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Close
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("estest: restart on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// RequireAPIKey makes the server accept only "Authorization: ApiKey key".
func (s *Server) RequireAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// RequireBasic makes the server accept only HTTP basic user:pass.
func (s *Server) RequireBasic(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, pass
}

// SetFieldType maps the dotted field path to typ ("long" or "keyword"); a
// document with a value that does not fit fails with 400.
func (s *Server) SetFieldType(path, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fieldType[path] = typ
}

// FailItem makes the next len(statuses) bulk items with this _id fail with
// the given statuses in turn (429 → es_rejected_execution_exception, 5xx →
// unavailable_shards_exception, others → illegal_argument_exception).
func (s *Server) FailItem(id string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.itemFail[id] = append(s.itemFail[id], statuses...)
}

// FailRequests makes the next n requests (of any kind) fail as a whole with
// status and, if not empty, a Retry-After header.
func (s *Server) FailRequests(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.reqFail = append(s.reqFail, reqFailure{status, retryAfter})
	}
}

// Docs returns the source documents stored in target (an index or a data
// stream), in the order they were first written.
func (s *Server) Docs(target string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[target]
	if ix == nil {
		return nil
	}
	out := make([][]byte, len(ix.docs))
	for i, d := range ix.docs {
		out[i] = slices.Clone(d)
	}
	return out
}

// Targets lists every index and data stream that holds documents.
func (s *Server) Targets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.indices {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// IsDataStream reports whether target was created as a data stream.
func (s *Server) IsDataStream(target string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[target]
	return ix != nil && ix.dataStream
}

// ComponentTemplate returns the body of a stored component template.
func (s *Server) ComponentTemplate(name string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compTmpl[name]
}

// IndexTemplate returns the body of a stored index template.
func (s *Server) IndexTemplate(name string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idxTmpl[name]
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ---- HTTP ----

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")

	s.mu.Lock()
	var fail *reqFailure
	if len(s.reqFail) > 0 {
		f := s.reqFail[0]
		s.reqFail = s.reqFail[1:]
		fail = &f
	}
	authErr := s.checkAuth(r)
	s.mu.Unlock()

	if authErr != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", `ApiKey`)
		writeError(w, http.StatusUnauthorized, "security_exception", authErr)
		return
	}
	if fail != nil {
		if fail.retryAfter != "" {
			w.Header().Set("Retry-After", fail.retryAfter)
		}
		typ := "es_rejected_execution_exception"
		if fail.status >= 500 {
			typ = "cluster_block_exception"
		}
		writeError(w, fail.status, typ, "injected failure")
		return
	}

	path := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(path, "/")
	switch {
	case path == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		io.WriteString(w, `{"name":"estest","cluster_name":"estest","cluster_uuid":"estest","version":{"number":"8.15.0","build_flavor":"default","lucene_version":"9.11.1","minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}`)
	case parts[len(parts)-1] == "_bulk" && len(parts) <= 2:
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			writeError(w, http.StatusMethodNotAllowed, "illegal_argument_exception", "method not allowed")
			return
		}
		def := ""
		if len(parts) == 2 {
			def = parts[0]
		}
		s.bulk(w, r, def)
	case len(parts) == 2 && (parts[0] == "_component_template" || parts[0] == "_index_template"):
		s.template(w, r, parts[0], parts[1])
	default:
		writeError(w, http.StatusNotFound, "illegal_argument_exception", "estest: no handler for "+r.Method+" /"+path)
	}
}

// checkAuth returns why the request's credentials are refused, or "".
func (s *Server) checkAuth(r *http.Request) string {
	h := r.Header.Get("Authorization")
	s.stats.LastAuthHeader = h
	if s.apiKey == "" && s.user == "" {
		return ""
	}
	if h == "" {
		s.stats.AuthFailures++
		return "missing authentication credentials for REST request [" + r.URL.Path + "]"
	}
	// The scheme is case-insensitive (RFC 9110); the Go client sends "APIKey".
	scheme, cred, _ := strings.Cut(h, " ")
	if s.apiKey != "" && strings.EqualFold(scheme, "ApiKey") && cred == s.apiKey {
		return ""
	}
	if s.user != "" && strings.EqualFold(scheme, "Basic") && cred == base64.StdEncoding.EncodeToString([]byte(s.user+":"+s.pass)) {
		return ""
	}
	s.stats.AuthFailures++
	if strings.EqualFold(scheme, "ApiKey") {
		return "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
	}
	u, _, _ := r.BasicAuth()
	return "unable to authenticate user [" + u + "] for REST request [" + r.URL.Path + "]"
}

func writeError(w http.ResponseWriter, status int, typ, reason string) {
	w.WriteHeader(status)
	e := map[string]any{"type": typ, "reason": reason}
	json.NewEncoder(w).Encode(map[string]any{
		"error":  map[string]any{"root_cause": []any{e}, "type": typ, "reason": reason},
		"status": status,
	})
}

func (s *Server) template(w http.ResponseWriter, r *http.Request, kind, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	store := s.compTmpl
	if kind == "_index_template" {
		store = s.idxTmpl
	}
	switch r.Method {
	case http.MethodGet:
		body, ok := store[name]
		if !ok {
			writeError(w, http.StatusNotFound, "resource_not_found_exception", kind[1:]+" matching ["+name+"] not found")
			return
		}
		key := "component_templates"
		tkey := "component_template"
		if kind == "_index_template" {
			key, tkey = "index_templates", "index_template"
		}
		json.NewEncoder(w).Encode(map[string]any{key: []any{map[string]any{"name": name, tkey: body}}})
	case http.MethodPut, http.MethodPost:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "parse_exception", err.Error())
			return
		}
		var t struct {
			IndexPatterns    []string                   `json:"index_patterns"`
			ComposedOf       []string                   `json:"composed_of"`
			IgnoreMissing    []string                   `json:"ignore_missing_component_templates"`
			TemplateAsObject map[string]json.RawMessage `json:"template"`
		}
		if err := json.Unmarshal(body, &t); err != nil {
			writeError(w, http.StatusBadRequest, "x_content_parse_exception", "[1:1] failed to parse template: "+err.Error())
			return
		}
		if kind == "_index_template" {
			if len(t.IndexPatterns) == 0 {
				writeError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
				return
			}
			var missing []string
			for _, c := range t.ComposedOf {
				if _, ok := s.compTmpl[c]; !ok && !slices.Contains(t.IgnoreMissing, c) {
					missing = append(missing, c)
				}
			}
			if len(missing) > 0 {
				writeError(w, http.StatusBadRequest, "invalid_index_template_exception",
					fmt.Sprintf("index_template [%s] invalid, cause [index template [%s] specifies component templates %v that do not exist]", name, name, missing))
				return
			}
		} else if t.TemplateAsObject == nil {
			writeError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: template is missing;")
			return
		}
		store[name] = json.RawMessage(body)
		s.stats.TemplatePuts++
		io.WriteString(w, `{"acknowledged":true}`)
	default:
		writeError(w, http.StatusMethodNotAllowed, "illegal_argument_exception", "method not allowed")
	}
}

type action struct {
	Index  string `json:"_index"`
	ID     string `json:"_id"`
	OpType string `json:"op_type"`
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request, defIndex string) {
	start := time.Now()
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.Contains(ct, "json") {
		writeError(w, http.StatusNotAcceptable, "illegal_argument_exception", "Content-Type header ["+ct+"] is not supported")
		return
	}
	var body io.Reader = r.Body
	gz := false
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "parse_exception", "gzip: "+err.Error())
			return
		}
		body, gz = zr, true
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "parse_exception", "reading body: "+err.Error())
		return
	}
	if len(raw) == 0 {
		writeError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
		return
	}
	if raw[len(raw)-1] != '\n' {
		writeError(w, http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}

	type line struct {
		op     string
		act    action
		source []byte
	}
	var lines []line
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), len(raw)+1)
	for sc.Scan() {
		l := sc.Bytes()
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var m map[string]action
		if err := json.Unmarshal(l, &m); err != nil || len(m) != 1 {
			writeError(w, http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("Malformed action/metadata line [%d], expected a simple value for field [_index] but found something else", len(lines)+1))
			return
		}
		var ln line
		for op, a := range m {
			ln.op, ln.act = op, a
		}
		if ln.act.Index == "" {
			ln.act.Index = defIndex
		}
		switch ln.op {
		case "create", "index", "update":
			if !sc.Scan() {
				writeError(w, http.StatusBadRequest, "illegal_argument_exception", "Validation Failed: 1: source is missing;")
				return
			}
			ln.source = slices.Clone(sc.Bytes())
		case "delete":
		default:
			writeError(w, http.StatusBadRequest, "illegal_argument_exception", "Malformed action/metadata line, expected one of [create, delete, index, update] but found ["+ln.op+"]")
			return
		}
		lines = append(lines, ln)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.BulkRequests++
	if gz {
		s.stats.GzipRequests++
	}
	s.stats.Items += len(lines)
	s.stats.MaxItems = max(s.stats.MaxItems, len(lines))
	s.stats.MaxBodyBytes = max(s.stats.MaxBodyBytes, len(raw))

	anyErr := false
	items := make([]map[string]any, 0, len(lines))
	for _, ln := range lines {
		res := s.applyLocked(ln.op, ln.act, ln.source)
		if _, failed := res["error"]; failed {
			anyErr = true
		}
		items = append(items, map[string]any{ln.op: res})
	}
	json.NewEncoder(w).Encode(map[string]any{
		"took":   time.Since(start).Milliseconds(),
		"errors": anyErr,
		"items":  items,
	})
}

var autoID int

func itemError(a action, status int, typ, reason string) map[string]any {
	return map[string]any{
		"_index": a.Index, "_id": a.ID, "status": status,
		"error": map[string]any{"type": typ, "reason": reason, "index": a.Index},
	}
}

// applyLocked performs one bulk item and returns its result object.
func (s *Server) applyLocked(op string, a action, source []byte) map[string]any {
	if a.Index == "" {
		return itemError(a, 400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
	}
	if bad := strings.IndexAny(a.Index, `\/*?"<>| ,#:`); bad >= 0 || a.Index != strings.ToLower(a.Index) || strings.HasPrefix(a.Index, "_") || strings.HasPrefix(a.Index, "-") {
		return itemError(a, 400, "invalid_index_name_exception", "Invalid index name ["+a.Index+"], must be lowercase and must not contain the characters [\\, /, *, ?, \", <, >, |, ' ', ',', #, :]")
	}
	if fs := s.itemFail[a.ID]; a.ID != "" && len(fs) > 0 {
		st := fs[0]
		if len(fs) == 1 {
			delete(s.itemFail, a.ID)
		} else {
			s.itemFail[a.ID] = fs[1:]
		}
		switch {
		case st == 429:
			return itemError(a, 429, "es_rejected_execution_exception", "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]")
		case st >= 500:
			return itemError(a, st, "unavailable_shards_exception", "["+a.Index+"][0] primary shard is not active Timeout: [1m]")
		default:
			return itemError(a, st, "illegal_argument_exception", "injected item failure")
		}
	}
	isDS := strings.HasPrefix(a.Index, "logs-") && strings.Count(a.Index, "-") >= 2
	if isDS && op != "create" {
		return itemError(a, 400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams")
	}
	ix := s.indices[a.Index]
	if op == "delete" || op == "update" {
		if ix == nil {
			return itemError(a, 404, "index_not_found_exception", "no such index ["+a.Index+"]")
		}
		return itemError(a, 400, "illegal_argument_exception", "estest: "+op+" is not supported")
	}
	if len(a.ID) > 512 {
		return itemError(a, 400, "illegal_argument_exception", fmt.Sprintf("id [%s] is too long, must be no longer than 512 bytes but was: %d", a.ID, len(a.ID)))
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(source))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return itemError(a, 400, "document_parsing_exception", "[1:1] failed to parse: "+fmt.Sprint(err))
	}
	if dec.More() {
		return itemError(a, 400, "document_parsing_exception", "[1:1] failed to parse: trailing content after the document")
	}
	if isDS {
		if _, ok := lookup(doc, "@timestamp"); !ok {
			return itemError(a, 400, "document_parsing_exception", "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing")
		}
	}
	for path, typ := range s.fieldType {
		v, ok := lookup(doc, path)
		if !ok || v == nil {
			continue
		}
		if !fits(v, typ) {
			return itemError(a, 400, "document_parsing_exception",
				fmt.Sprintf("[1:%d] failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%v'", len(source), path, typ, a.ID, v))
		}
	}
	if ix == nil {
		ix = &index{dataStream: isDS, ids: make(map[string]int)}
		s.indices[a.Index] = ix
	}
	id := a.ID
	if id == "" {
		autoID++
		id = "auto-" + strconv.Itoa(autoID)
	}
	stored := slices.Clone(source)
	if pos, ok := ix.ids[id]; ok {
		if op == "create" {
			return itemError(a, 409, "version_conflict_engine_exception", fmt.Sprintf("[%s]: version conflict, document already exists (current version [1])", id))
		}
		ix.docs[pos] = stored
		return map[string]any{"_index": a.Index, "_id": id, "_version": 2, "result": "updated", "status": 200,
			"_shards": map[string]any{"total": 2, "successful": 1, "failed": 0}, "_seq_no": len(ix.docs), "_primary_term": 1}
	}
	ix.ids[id] = len(ix.docs)
	ix.docs = append(ix.docs, stored)
	return map[string]any{"_index": a.Index, "_id": id, "_version": 1, "result": "created", "status": 201,
		"_shards": map[string]any{"total": 2, "successful": 1, "failed": 0}, "_seq_no": len(ix.docs) - 1, "_primary_term": 1}
}

// lookup finds a dotted path in doc, accepting both nested objects and
// dotted keys, as Elasticsearch does.
func lookup(doc map[string]any, path string) (any, bool) {
	if v, ok := doc[path]; ok {
		return v, true
	}
	for i := strings.IndexByte(path, '.'); i >= 0; {
		if sub, ok := doc[path[:i]].(map[string]any); ok {
			if v, ok := lookup(sub, path[i+1:]); ok {
				return v, true
			}
		}
		j := strings.IndexByte(path[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return nil, false
}

func fits(v any, typ string) bool {
	switch typ {
	case "long":
		switch x := v.(type) {
		case json.Number:
			_, err := x.Float64()
			return err == nil
		case string: // Elasticsearch coerces numeric strings by default
			_, err := strconv.ParseFloat(x, 64)
			return err == nil
		}
		return false
	case "keyword":
		switch v.(type) {
		case map[string]any:
			return false
		}
		return true
	case "date":
		x, ok := v.(string)
		if !ok {
			_, isNum := v.(json.Number)
			return isNum
		}
		_, err := time.Parse(time.RFC3339Nano, x)
		return err == nil
	}
	return true
}
