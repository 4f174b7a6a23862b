package taurusdb

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
)

// The SQL audit log file's format is not published: the user guide
// ("Downloading SQL Audit Logs") lists its fields and shows a picture of
// it. The reader therefore detects the format of each file from its first
// bytes (see detectFormat): gzip is unwrapped by its magic bytes, a file
// whose first record starts with '{' is JSON lines, anything else is CSV,
// with a header row when its first row names the documented fields, else
// with the columns in SQLColumns order (the documented field order by
// default).

// SQLFields are the documented fields of a TaurusDB SQL audit record, in
// the user guide's order: the default column order of a CSV file without
// a header row.
var SQLFields = []string{
	"record_id", "connection_id", "connection_status", "name", "timestamp",
	"command_class", "sqltext", "user", "host", "external_user", "ip", "default_db",
}

// Format names a detected file format. It is kept in the cursor so that a
// resumed ranged download parses the rest of a file as its start was.
type Format string

const (
	// FormatCSVHeader is CSV whose first row names the columns.
	FormatCSVHeader Format = "csv-header"
	// FormatCSV is CSV without a header row: SQLColumns order.
	FormatCSV Format = "csv"
	// FormatJSONLines is one JSON object per line.
	FormatJSONLines Format = "jsonl"
)

// detectBytes bounds what detection looks at before the first record.
const detectBytes = 4096

// errUnreadable marks a file whose format the reader does not recognise:
// the file is dead-lettered whole, with the reason.
var errUnreadable = errors.New("audit log file format not recognised")

// sqlFile reads the records of one downloaded file as a stream: nothing
// but the current record and a fixed read buffer is held.
type sqlFile struct {
	src     *eofReader // the body, or nil for a resumed (plain) file
	split   splitter
	base    int64 // bytes before the splitter's first: a BOM, or a range's start
	format  Format
	gzipped bool
	columns []string // CSV: the column names, header or configured
	// ahead are records detection read ahead, returned first; cur is the
	// offset after the last of them returned (base before the first).
	ahead []aheadRecord
	cur   int64
}

// aheadRecord is a record read ahead, with the offset after it.
type aheadRecord struct {
	raw     []byte
	tooLong bool
	end     int64
}

// Detection reads at most this many records, and bytes of records, ahead
// for one of the configured columns when the first record of a file
// without header row has another shape.
const (
	maxAheadRecords = 16
	maxAheadBytes   = 64 << 10
)

// openSQLFile detects the format of the file body starts and returns its
// reader. columns is the order of a CSV file without a header row;
// maxRecord caps a record's bytes. An unrecognised format is an error
// wrapping errUnreadable; a read error is returned as it is.
func openSQLFile(body io.Reader, columns []string, maxRecord int) (*sqlFile, error) {
	f := &sqlFile{src: &eofReader{r: body}}
	br := bufio.NewReaderSize(f.src, 64<<10)
	// Twice at most: a .gz object that a server compresses again on the
	// way (Content-Encoding: gzip, although the reader asks for identity)
	// is gzip inside gzip.
	for range 2 {
		magic, _ := br.Peek(2)
		if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
			break
		}
		gz, err := gzip.NewReader(br)
		if err != nil {
			// A bad header, or one the file ends inside, is the file's; a
			// connection that dropped is retried.
			var ce flate.CorruptInputError
			if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &ce) ||
				(errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) && f.src.eof {
				return nil, fmt.Errorf("%w: gzip header: %v", errUnreadable, err)
			}
			return nil, err
		}
		gz.Multistream(true)
		br = bufio.NewReaderSize(gz, 64<<10)
		f.gzipped = true
	}
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xef, 0xbb, 0xbf}) {
		_, _ = br.Discard(3)
		f.base = 3
	}
	head, err := br.Peek(detectBytes)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		if f.corrupt(err) {
			return nil, fmt.Errorf("%w: gzip: %v", errUnreadable, err)
		}
		return nil, err
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return nil, fmt.Errorf("%w: binary data (a NUL byte) in its first %d bytes", errUnreadable, len(head))
	}
	trimmed := bytes.TrimSpace(head)
	if len(trimmed) == 0 {
		// Empty (or blank): no records.
		f.format = FormatCSV
		f.split = splitter{r: br, max: maxRecord, csv: true}
		f.columns = columns
		return f, nil
	}
	if trimmed[0] == '{' {
		f.format = FormatJSONLines
		f.split = splitter{r: br, max: maxRecord}
		return f, nil
	}
	f.split = splitter{r: br, max: maxRecord, csv: true}
	f.cur = f.base
	rec, tooLong, err := f.split.next()
	if errors.Is(err, io.EOF) {
		// Blank: no records.
		f.format, f.columns = FormatCSV, columns
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	var fields []string
	var perr error
	if !tooLong {
		fields, perr = parseCSVRecord(rec)
	}
	if perr == nil && !tooLong && isHeader(fields) {
		f.format = FormatCSVHeader
		f.columns = make([]string, len(fields))
		for i, c := range fields {
			f.columns[i] = strings.ToLower(strings.TrimSpace(c))
		}
		return f, nil
	}
	f.format, f.columns = FormatCSV, columns
	f.ahead = append(f.ahead, aheadRecord{raw: slices.Clone(rec), tooLong: tooLong, end: f.base + f.split.off})
	if tooLong || (perr == nil && len(fields) == len(columns)) {
		// A record over the cap is no header row (those are short): it is
		// dead-lettered alone, as any other.
		return f, nil
	}
	// The first record does not have the configured columns: the file is
	// of another shape, or that one record is malformed. A record of the
	// columns among the next few decides for the second; the first record
	// is then dead-lettered alone, as any malformed one.
	held := len(rec)
	for len(f.ahead) < maxAheadRecords && held < maxAheadBytes {
		next, long, err := f.split.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		f.ahead = append(f.ahead, aheadRecord{raw: slices.Clone(next), tooLong: long, end: f.base + f.split.off})
		held += len(next)
		if long {
			continue
		}
		if fl, err := parseCSVRecord(next); err == nil && len(fl) == len(columns) && !isHeader(fl) {
			return f, nil
		}
	}
	if perr != nil {
		return nil, fmt.Errorf("%w: first record is not CSV: %v", errUnreadable, perr)
	}
	return nil, fmt.Errorf("%w: first record has %d fields and no header row names them; a file without header must have the %d columns of HWCAUDIT_GAUSSDB_SQL_COLUMNS", errUnreadable, len(fields), len(columns))
}

// corrupt reports a gzip stream that cannot be decompressed: reading it
// again gives the same error. A stream that ends early
// (io.ErrUnexpectedEOF) is corrupt only when the body itself ended
// cleanly; else the connection dropped and a new download may succeed.
func (f *sqlFile) corrupt(err error) bool {
	if !f.gzipped {
		return false
	}
	var ce flate.CorruptInputError
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &ce) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) && f.src != nil && f.src.eof
}

// eofReader records whether its reader ended with a clean io.EOF.
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		e.eof = true
	}
	return n, err
}

// resumeSQLFile reads the rest of a file of a known format from the
// middle (a ranged download), without detection.
func resumeSQLFile(body io.Reader, from int64, format Format, columns []string, maxRecord int) *sqlFile {
	return &sqlFile{
		base:    from,
		split:   splitter{r: bufio.NewReaderSize(body, 64<<10), max: maxRecord, csv: format != FormatJSONLines},
		format:  format,
		columns: columns,
	}
}

// isHeader reports a first CSV row that names columns: at least three of
// the documented fields, record_id among them.
func isHeader(fields []string) bool {
	known, id := 0, false
	for _, f := range fields {
		f = strings.ToLower(strings.TrimSpace(f))
		if slices.Contains(SQLFields, f) {
			known++
		}
		id = id || f == "record_id"
	}
	return id && known >= 3
}

// sqlRecord is one record of a file as the reader hands it on.
type sqlRecord struct {
	raw     []byte // the record as it was in the file, line end removed
	tooLong bool   // raw holds only the first maxRecord bytes
	fields  []byte // JSON object of the record's fields, or nil
	reason  string // why fields is nil: the record is dead-lettered
}

// next returns the next record, or io.EOF after the last. A record that
// cannot be parsed comes back with a reason instead of fields; the file
// goes on.
func (f *sqlFile) next() (sqlRecord, error) {
	var rec []byte
	var tooLong bool
	if len(f.ahead) > 0 {
		a := f.ahead[0]
		f.ahead = f.ahead[1:]
		rec, tooLong, f.cur = a.raw, a.tooLong, a.end
	} else {
		var err error
		rec, tooLong, err = f.split.next()
		if err != nil {
			return sqlRecord{}, err
		}
	}
	out := sqlRecord{raw: rec, tooLong: tooLong}
	if tooLong {
		out.reason = fmt.Sprintf("record longer than %d bytes (HWCAUDIT_GAUSSDB_SQL_MAX_RECORD_BYTES); its first %d bytes are kept, the rest was skipped", f.split.max, len(rec))
		return out, nil
	}
	switch f.format {
	case FormatJSONLines:
		out.fields, out.reason = jsonFields(rec)
	default:
		out.fields, out.reason = csvFields(rec, f.columns)
	}
	return out, nil
}

// skip passes over the next record without parsing it, or returns io.EOF.
func (f *sqlFile) skip() error {
	if len(f.ahead) > 0 {
		f.cur = f.ahead[0].end
		f.ahead = f.ahead[1:]
		return nil
	}
	_, _, err := f.split.next()
	return err
}

// offset is how many bytes of the (decompressed) file the records
// returned so far and their line ends took.
func (f *sqlFile) offset() int64 {
	if len(f.ahead) > 0 {
		return f.cur
	}
	return f.base + f.split.off
}

// jsonFields checks that a JSON line is one object.
func jsonFields(rec []byte) ([]byte, string) {
	t := bytes.TrimSpace(rec)
	if len(t) == 0 || t[0] != '{' {
		return nil, "JSON lines file: the line is not a JSON object"
	}
	if err := checkJSON(t); err != nil {
		return nil, "JSON lines file: the line is not a JSON object: " + err.Error()
	}
	return t, ""
}

// csvFields turns one CSV record into a JSON object of its columns.
func csvFields(rec []byte, columns []string) ([]byte, string) {
	fields, err := parseCSVRecord(rec)
	if err != nil {
		return nil, "not a CSV record: " + err.Error()
	}
	if len(fields) != len(columns) {
		return nil, fmt.Sprintf("CSV record has %d fields, want %d (%s)", len(fields), len(columns), strings.Join(columns, ","))
	}
	n := 2
	for i, v := range fields {
		n += len(columns[i]) + len(v) + 8
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i, v := range fields {
		if i > 0 {
			out = append(out, ',')
		}
		out = ecsdoc.AppendString(out, columns[i])
		out = append(out, ':')
		out = ecsdoc.AppendString(out, v)
	}
	return append(out, '}'), ""
}

// parseCSVRecord parses one record the splitter delimited, as RFC 4180
// (and encoding/csv without LazyQuotes) reads it: fields separated by
// commas; a field that starts with a quote ends at a quote that is not
// doubled, and holds commas, line breaks and "" for a quote. It converts
// the record to a string once and slices it, where encoding/csv would
// allocate a 4 KiB reader per record.
func parseCSVRecord(rec []byte) ([]string, error) {
	line := string(rec)
	fields := make([]string, 0, 12)
	for i := 0; ; {
		if i < len(line) && line[i] == '"' {
			var b strings.Builder
			j := i + 1
			for {
				k := strings.IndexByte(line[j:], '"')
				if k < 0 {
					return nil, fmt.Errorf("quoted field at byte %d has no closing quote", i)
				}
				b.WriteString(line[j : j+k])
				j += k + 1
				if j < len(line) && line[j] == '"' {
					b.WriteByte('"')
					j++
					continue
				}
				break
			}
			fields = append(fields, b.String())
			switch {
			case j == len(line):
				return fields, nil
			case line[j] != ',':
				return nil, fmt.Errorf("extraneous text after the quoted field ending at byte %d", j)
			}
			i = j + 1
			continue
		}
		k := strings.IndexByte(line[i:], ',')
		end := len(line)
		if k >= 0 {
			end = i + k
		}
		field := line[i:end]
		if q := strings.IndexByte(field, '"'); q >= 0 {
			return nil, fmt.Errorf("bare quote in unquoted field at byte %d", i+q)
		}
		fields = append(fields, field)
		if k < 0 {
			return fields, nil
		}
		i = end + 1
	}
}

// splitter delimits records in a stream: lines, or for CSV lines whose
// line breaks inside quoted fields belong to the record (SQL text spans
// lines). A record longer than max is cut at max bytes and the rest of it
// skipped up to the first line break past the cap, so memory stays
// bounded whatever the file holds: an unbalanced quote costs one cut
// record (and the lines after it, each dead-lettered as malformed), not
// the rest of the file.
type splitter struct {
	r   *bufio.Reader
	max int
	csv bool
	buf []byte
	off int64 // bytes consumed, line ends included
}

// next returns the next non-blank record without its line end (the
// returned slice is valid until the next call), whether it was cut at
// max, or io.EOF.
func (s *splitter) next() ([]byte, bool, error) {
	for {
		rec, tooLong, err := s.record()
		if err != nil {
			return nil, false, err
		}
		if len(bytes.TrimSpace(rec)) == 0 && !tooLong {
			continue
		}
		return rec, tooLong, nil
	}
}

func (s *splitter) record() ([]byte, bool, error) {
	s.buf = s.buf[:0]
	st, any, n := csvFieldStart, false, 0
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(chunk) > 0 {
			any = true
			n += len(chunk)
			s.off += int64(len(chunk))
			if s.csv {
				st = csvScan(chunk, st)
			}
			// Room for the cap and a "\r\n" line end.
			if room := s.max + 2 - len(s.buf); room > 0 {
				s.buf = append(s.buf, chunk[:min(room, len(chunk))]...)
			}
		}
		over := n > s.max+2
		switch {
		case err == nil:
			if st == csvQuoted && !over {
				continue // a line break inside a quoted field
			}
			return s.finish(over)
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if !any {
				return nil, false, io.EOF
			}
			return s.finish(over)
		default:
			return nil, false, err
		}
	}
}

// finish returns the record in buf without its line end, cut at max when
// it is longer.
func (s *splitter) finish(over bool) ([]byte, bool, error) {
	rec := bytes.TrimSuffix(bytes.TrimSuffix(s.buf, []byte("\n")), []byte("\r"))
	if over || len(rec) > s.max {
		return s.buf[:min(s.max, len(s.buf))], true, nil
	}
	return rec, false, nil
}

// The states of csvScan: where a byte of a CSV record falls.
const (
	csvFieldStart    = iota // before a field's first byte
	csvUnquoted             // in a field that did not start with a quote
	csvQuoted               // in a quoted field
	csvQuoteInQuoted        // after a quote in a quoted field: its end, or "" for a quote
)

// csvScan returns the state after b, starting in st. A quote opens a
// quoted field only at the field's start, as for encoding/csv: a bare
// quote inside an unquoted field (SELECT a"b) is malformed, but does not
// make the line breaks after it part of the record, which would merge the
// following records into one up to the record cap.
func csvScan(b []byte, st int) int {
	for i := 0; i < len(b); i++ {
		switch st {
		case csvQuoted:
			j := bytes.IndexByte(b[i:], '"')
			if j < 0 {
				return csvQuoted
			}
			i += j
			st = csvQuoteInQuoted
		case csvUnquoted:
			// b is one line: its only line break ends it, and the record
			// with it, whatever the state.
			j := bytes.IndexByte(b[i:], ',')
			if j < 0 {
				return csvUnquoted
			}
			i += j
			st = csvFieldStart
		default: // csvFieldStart, csvQuoteInQuoted
			switch b[i] {
			case '"':
				st = csvQuoted // a quoted field opens, or "" goes on with one
			case ',', '\n':
				st = csvFieldStart
			default:
				st = csvUnquoted
			}
		}
	}
	return st
}

// checkJSON reports whether b is one JSON value.
func checkJSON(b []byte) error {
	if !json.Valid(b) {
		return errors.New("invalid JSON")
	}
	return nil
}

// formatOf reads a Format from a cursor.
func formatOf(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatCSV, FormatCSVHeader, FormatJSONLines:
		return f, nil
	}
	return "", fmt.Errorf("unknown file format %s", strconv.Quote(s))
}
