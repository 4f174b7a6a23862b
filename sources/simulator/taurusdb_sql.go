package simulator

import (
	"bufio"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TaurusDB SQL audit log downloads ("generating an audit log download
// link", 生成审计日志下载链接, ShowAuditLogDownloadLink):
//
//	POST /v3/{project_id}/instances/{instance_id}/audit-log-link  {"ids":[…]}  →  {"links":[…]}
//
// at most 50 ids, links valid five minutes (TaurusDBSQLConfig.LinkTTL),
// in the order of the ids. A link points at /obs/taurusdb/{instance}/{id}
// on this server, outside the API gateway, signed in its query
// (Expires, Signature) as an OBS pre-signed URL is. The file download
// answers 403 once the link expired or its signature does not match, and
// 400 when the request carries API credentials (Authorization,
// X-Auth-Token, X-Sdk-Date): OBS refuses a second authentication
// mechanism, and a client must not send them to another host anyway. As
// OBS, it answers each file's ETag and 412 to an If-Match of another.
//
// The file's format is not published: TaurusDBSQLConfig.Format chooses
// among the plausible ones. Files are generated while they are written,
// never held: a 100 MB file costs a buffer.

// SQLFileFormat is the format the simulator serves SQL audit log files in.
type SQLFileFormat int

const (
	// SQLCSVHeader is CSV with a header row of the documented field names.
	SQLCSVHeader SQLFileFormat = iota
	// SQLCSV is CSV without a header row, columns in the documented order.
	SQLCSV
	// SQLJSONLines is one JSON object per line.
	SQLJSONLines
	// SQLUnreadable is binary data no reader can take for records.
	SQLUnreadable
)

// TaurusDBSQLConfig describes the SQL audit records inside the files.
type TaurusDBSQLConfig struct {
	// Records is the number of statements of each file; 0 serves no link
	// endpoint. RecordsOf, when set, decides per file (its index).
	Records   int
	RecordsOf func(file int) int
	// Format is the file format; Gzip compresses the file (the stored
	// object, not a Content-Encoding).
	Format SQLFileFormat
	Gzip   bool
	// LinkTTL is how long a link works. Default 5m, as documented.
	LinkTTL time.Duration
	// Range makes downloads honour "Range: bytes=N-" with a 206, over the
	// stored bytes (compressed ones for a gzip file), as OBS does.
	Range bool
	// MalformedEvery, when above 0, serves every MalformedEvery-th record
	// (1-based) as a malformed line: a CSV line with one field too few, a
	// JSON line cut short.
	MalformedEvery int
	// LongEvery, when above 0, makes every LongEvery-th record's SQL text
	// LongBytes long.
	LongEvery int
	LongBytes int
	// CutFirstDownload, when above 0, drops the connection of each file's
	// first download after this many bytes of body.
	CutFirstDownload int64
}

// TaurusDBSQLRecord is one generated statement.
type TaurusDBSQLRecord struct {
	RecordID, ConnectionID, ConnectionStatus, Name, Timestamp      string
	CommandClass, SQLText, User, Host, ExternalUser, IP, DefaultDB string
	// Malformed: the record is served as a malformed line.
	Malformed bool
}

// TaurusDBSQLStats counts the download side.
type TaurusDBSQLStats struct {
	LinkRequests, Downloads, RangedDownloads, Expired int64
	// CredentialLeaks counts downloads that carried API credentials.
	CredentialLeaks int64
}

// sqlFields is the documented field order.
var sqlFields = []string{"record_id", "connection_id", "connection_status", "name", "timestamp",
	"command_class", "sqltext", "user", "host", "external_user", "ip", "default_db"}

type taurusSQL struct {
	a     *taurusAPI
	cfg   TaurusDBSQLConfig
	stats struct{ links, downloads, ranged, expired, leaks atomic.Int64 }
	cut   sync.Map // file id → true once its first download was cut
}

func newTaurusSQL(a *taurusAPI, cfg TaurusDBSQLConfig) *taurusSQL {
	t := &taurusSQL{a: a, cfg: cfg}
	if t.cfg.LinkTTL <= 0 {
		t.cfg.LinkTTL = 5 * time.Minute
	}
	if len(a.cfg.Instances) == 0 || (cfg.Records <= 0 && cfg.RecordsOf == nil) {
		return t
	}
	a.s.handle("POST /v3/{project_id}/instances/{instance_id}/audit-log-link",
		serviceErrorBody{codeTaurusInternal, msgTaurusInternal}, t.handleLink)
	a.s.mux.HandleFunc("GET /obs/taurusdb/{instance_id}/{file_id}", t.handleFile)
	return t
}

func (t *taurusSQL) handleLink(w http.ResponseWriter, r *http.Request) {
	s := t.a.s
	if r.PathValue("project_id") != s.cfg.ProjectID {
		s.serviceError(w, http.StatusForbidden, codeTaurusForbidden, "Insufficient permissions.")
		return
	}
	ins := r.PathValue("instance_id")
	recs, ok := t.a.instances[ins]
	if !ok {
		s.serviceError(w, http.StatusNotFound, codeTaurusInstanceNotFound, "The DB instance does not exist.")
		return
	}
	var body struct {
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		s.serviceError(w, http.StatusBadRequest, codeTaurusInvalidParam, "Invalid parameter: the body is not {\"ids\":[…]}.")
		return
	}
	if len(body.IDs) == 0 || len(body.IDs) > 50 {
		s.serviceError(w, http.StatusBadRequest, codeTaurusInvalidParam, "Invalid parameter: ids must hold 1 to 50 audit log ids.")
		return
	}
	t.stats.links.Add(1)
	host := "http://" + r.Host
	expires := s.now().Add(t.cfg.LinkTTL).Unix()
	links := make([]string, 0, len(body.IDs))
	for _, id := range body.IDs {
		if fileIndex(recs, id) < 0 {
			s.serviceError(w, http.StatusBadRequest, codeTaurusInvalidParam, "Invalid parameter: audit log "+id+" does not exist.")
			return
		}
		e := strconv.FormatInt(expires, 10)
		links = append(links, host+"/obs/taurusdb/"+ins+"/"+id+"?AccessKeyId=SIMOBSAK&Expires="+e+"&Signature="+t.sign(ins, id, e))
	}
	out, _ := json.Marshal(map[string][]string{"links": links})
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(out)
}

// records is the number of statements of file i.
func (t *taurusSQL) records(i int) int {
	if t.cfg.RecordsOf != nil {
		return max(t.cfg.RecordsOf(i), 0)
	}
	return max(t.cfg.Records, 0)
}

func fileIndex(recs []TaurusDBRecord, id string) int {
	for i, r := range recs {
		if r.ID == id {
			return i
		}
	}
	return -1
}

// sign is the link's signature: an HMAC over the object and expiry.
func (t *taurusSQL) sign(ins, id, expires string) string {
	m := hmac.New(sha256.New, []byte(strconv.FormatInt(t.a.s.cfg.Seed, 10)+"/obs"))
	m.Write([]byte(ins + "/" + id + "/" + expires))
	return hex.EncodeToString(m.Sum(nil))
}

func obsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

func (t *taurusSQL) handleFile(w http.ResponseWriter, r *http.Request) {
	for _, h := range []string{"Authorization", "X-Auth-Token", "X-Sdk-Date", "X-Security-Token"} {
		if r.Header.Get(h) != "" {
			t.stats.leaks.Add(1)
			obsError(w, http.StatusBadRequest, "InvalidArgument", "Only one auth mechanism allowed; the request carries "+h)
			return
		}
	}
	ins, id := r.PathValue("instance_id"), r.PathValue("file_id")
	q := r.URL.Query()
	e := q.Get("Expires")
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil || !hmac.Equal([]byte(q.Get("Signature")), []byte(t.sign(ins, id, e))) {
		obsError(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	if !t.a.s.now().Before(time.Unix(exp, 0)) {
		t.stats.expired.Add(1)
		obsError(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	recs := t.a.instances[ins]
	i := fileIndex(recs, id)
	if i < 0 {
		obsError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	t.stats.downloads.Add(1)
	var from int64
	ranged := false
	if rg := r.Header.Get("Range"); t.cfg.Range && rg != "" {
		v, ok := strings.CutPrefix(rg, "bytes=")
		first, rest, ok2 := strings.Cut(v, "-")
		n, err := strconv.ParseInt(first, 10, 64)
		if ok && ok2 && rest == "" && err == nil && n >= 0 {
			from, ranged = n, true
		}
	}
	var size int64
	if ranged || !t.cfg.Gzip {
		cw := &countWriter{}
		_ = t.write(cw, ins, i, recs[i])
		size = cw.n
	}
	// OBS answers an object's ETag (its MD5) and honours If-Match: the
	// files here never change, so any other ETag is a 412.
	etag := `"` + t.sign(ins, id, "etag")[:32] + `"`
	if m := r.Header.Get("If-Match"); m != "" && m != etag {
		obsError(w, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Accept-Ranges", "bytes")
	if ranged {
		if from >= size {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		t.stats.ranged.Add(1)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, size-1, size))
		w.Header().Set("Content-Length", strconv.FormatInt(size-from, 10))
		w.WriteHeader(http.StatusPartialContent)
	} else if size > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	var out io.Writer = w
	if c := t.cfg.CutFirstDownload; c > 0 {
		if _, done := t.cut.LoadOrStore(id, true); !done {
			out = &cutWriter{w: w, left: c}
		}
	}
	_ = t.write(&skipWriter{w: out, skip: from}, ins, i, recs[i])
}

// write writes file i of instance ins.
func (t *taurusSQL) write(dst io.Writer, ins string, i int, f TaurusDBRecord) error {
	bw := bufio.NewWriterSize(dst, 32<<10)
	var w io.Writer = bw
	var gz *gzip.Writer
	if t.cfg.Gzip {
		gz, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
		w = gz
	}
	n := t.records(i)
	var line []byte
	if t.cfg.Format == SQLUnreadable {
		for j := range 64 {
			line = append(line[:0], 0x00, 0x9c, byte(j), 0xff)
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
	} else {
		if t.cfg.Format == SQLCSVHeader {
			line = append(line[:0], strings.Join(sqlFields, ",")...)
			line = append(line, '\n')
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
		ih := hashString(ins)
		for j := range n {
			rec := t.record(ih, i, j, f)
			line = t.appendLine(line[:0], rec)
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

var sqlClasses = []string{"select", "select", "select", "insert", "update", "delete", "create_table", "grant", "show_databases", "set_option"}

// record generates statement j of file i.
func (t *taurusSQL) record(ih uint64, i, j int, f TaurusDBRecord) TaurusDBSQLRecord {
	h := hashOf(t.a.s.cfg.Seed, saltTaurus, ih, uint64(i), uint64(j), 0x5a1)
	span := f.EndTime.Sub(f.BeginTime)
	n := max(t.records(i), 1)
	ts := f.BeginTime.Add(span * time.Duration(j) / time.Duration(n+1))
	rec := TaurusDBSQLRecord{
		RecordID:         strconv.FormatUint(uint64(i+1)*10_000_000+uint64(j)+1, 10),
		ConnectionID:     strconv.FormatUint(h%5000+1, 10),
		ConnectionStatus: "0",
		Name:             "QUERY",
		Timestamp:        ts.UTC().Format("2006-01-02T15:04:05Z"),
		CommandClass:     sqlClasses[h>>8%uint64(len(sqlClasses))],
		User:             []string{"root", "app", "report"}[h>>16%3],
		IP:               fmt.Sprintf("192.168.%d.%d", h>>20%256, h>>28%254+1),
		DefaultDB:        "shop",
	}
	switch rec.CommandClass {
	case "select":
		rec.SQLText = fmt.Sprintf("SELECT id, name FROM orders WHERE id = %d", h%100000)
	case "insert":
		rec.SQLText = fmt.Sprintf("INSERT INTO orders (name, note) VALUES ('o%d', \"x, \"\"quoted\"\"\")", h%1000)
	case "update":
		rec.SQLText = fmt.Sprintf("UPDATE orders\nSET note = 'two\nlines'\nWHERE id = %d", h%1000)
	case "delete":
		rec.SQLText = fmt.Sprintf("DELETE FROM orders WHERE id = %d", h%1000)
	case "create_table":
		rec.SQLText = "CREATE TABLE t_" + strconv.FormatUint(h%97, 10) + " (id INT PRIMARY KEY)"
	case "grant":
		rec.SQLText = "GRANT SELECT ON shop.* TO 'report'@'%'"
	case "show_databases":
		rec.SQLText = "SHOW DATABASES"
	default:
		rec.SQLText = "SET NAMES utf8mb4"
	}
	switch h >> 40 % 16 {
	case 0:
		rec.ConnectionStatus = "1064" // a syntax error
	case 1:
		rec.Name, rec.CommandClass, rec.SQLText = "CONNECT", "", ""
	case 2:
		rec.Name, rec.CommandClass, rec.SQLText = "QUIT", "", ""
	case 3:
		rec.Host, rec.IP = "localhost", ""
	case 4:
		rec.ExternalUser = "proxy_user"
	}
	if t.cfg.LongEvery > 0 && (j+1)%t.cfg.LongEvery == 0 {
		rec.SQLText = "SELECT '" + strings.Repeat("x", max(t.cfg.LongBytes, 1)) + "'"
	}
	if t.cfg.MalformedEvery > 0 && (j+1)%t.cfg.MalformedEvery == 0 {
		rec.Malformed = true
	}
	return rec
}

func (r TaurusDBSQLRecord) values() []string {
	return []string{r.RecordID, r.ConnectionID, r.ConnectionStatus, r.Name, r.Timestamp,
		r.CommandClass, r.SQLText, r.User, r.Host, r.ExternalUser, r.IP, r.DefaultDB}
}

// appendLine appends rec in the configured format, with its line end.
func (t *taurusSQL) appendLine(dst []byte, rec TaurusDBSQLRecord) []byte {
	vals := rec.values()
	if t.cfg.Format == SQLJSONLines {
		dst = append(dst, '{')
		for k, v := range vals {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(append(dst, `"`+sqlFields[k]+`":`...), v)
		}
		if rec.Malformed {
			dst = dst[:len(dst)-3] // cut short: not JSON
		} else {
			dst = append(dst, '}')
		}
		return append(dst, '\n')
	}
	if rec.Malformed {
		vals = vals[:len(vals)-1]
	}
	for k, v := range vals {
		if k > 0 {
			dst = append(dst, ',')
		}
		if strings.ContainsAny(v, ",\"\n\r") {
			dst = append(dst, '"')
			dst = append(dst, strings.ReplaceAll(v, `"`, `""`)...)
			dst = append(dst, '"')
		} else {
			dst = append(dst, v...)
		}
	}
	return append(dst, '\n')
}

// TaurusDBSQLRecords returns the statements of file id of instance, as
// the file serves them; nil for an unknown file.
func (s *Server) TaurusDBSQLRecords(instance, id string) []TaurusDBSQLRecord {
	t := s.taurus.sql
	recs := s.taurus.instances[instance]
	i := fileIndex(recs, id)
	if i < 0 {
		return nil
	}
	n := t.records(i)
	out := make([]TaurusDBSQLRecord, n)
	ih := hashString(instance)
	for j := range out {
		out[j] = t.record(ih, i, j, recs[i])
	}
	return out
}

// WriteTaurusDBSQLFile writes file id of instance as a download serves
// it, generated as it is written.
func (s *Server) WriteTaurusDBSQLFile(w io.Writer, instance, id string) error {
	recs := s.taurus.instances[instance]
	i := fileIndex(recs, id)
	if i < 0 {
		return fmt.Errorf("simulator: no TaurusDB audit log file %s of instance %s", id, instance)
	}
	return s.taurus.sql.write(w, instance, i, recs[i])
}

// TaurusDBSQLStats returns the download counters.
func (s *Server) TaurusDBSQLStats() TaurusDBSQLStats {
	t := s.taurus.sql
	return TaurusDBSQLStats{
		LinkRequests: t.stats.links.Load(), Downloads: t.stats.downloads.Load(),
		RangedDownloads: t.stats.ranged.Load(), Expired: t.stats.expired.Load(), CredentialLeaks: t.stats.leaks.Load(),
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// skipWriter drops the first skip bytes written.
type skipWriter struct {
	w    io.Writer
	skip int64
}

func (s *skipWriter) Write(p []byte) (int, error) {
	n := len(p)
	if s.skip >= int64(n) {
		s.skip -= int64(n)
		return n, nil
	}
	p = p[s.skip:]
	s.skip = 0
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// cutWriter aborts the response after left bytes.
type cutWriter struct {
	w    io.Writer
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		_, _ = c.w.Write(p[:c.left])
		if f, ok := c.w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // drops the connection mid-body
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}
