// Package jsonscan reads JSON objects and arrays in place: it validates the
// input as encoding/json does and hands out each member's value as the
// bytes it occupies, without reflection and without copying.
//
// The audit APIs answer pages of flat records. Decoding them with
// encoding/json into structs cost more CPU than everything else the
// exporter does per record; scanning them once and slicing the values out
// costs a fraction, and the records can stay sub-slices of the response.
//
// Two differences from encoding/json's Unmarshal are deliberate: member
// names match exactly (Unmarshal also accepts other letter cases), and a
// string's value is only decoded when asked for (Value.String).
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Kind is the type of a JSON value, named by the byte it starts with.
type Kind byte

// The kinds of JSON values.
const (
	String Kind = '"'
	Number Kind = '0'
	True   Kind = 't'
	False  Kind = 'f'
	Null   Kind = 'n'
	Object Kind = '{'
	Array  Kind = '['
)

func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Number:
		return "number"
	case True, False:
		return "boolean"
	case Null:
		return "null"
	case Object:
		return "object"
	case Array:
		return "array"
	}
	return "invalid"
}

// Value is one JSON value as it appears in the input.
type Value struct {
	// Raw is the value's text: a string with its quotes and escapes.
	Raw  []byte
	Kind Kind
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// SyntaxError reports input that is not valid JSON.
type SyntaxError struct {
	Offset int // byte offset of the problem
	msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.msg)
}

// Members calls fn with the name and value of every member of the JSON
// object data, in order, and checks that all of data is valid JSON, in one
// pass: when data is invalid, fn may have been called for the members
// before the fault. A null calls fn never and returns nil, as Unmarshal
// into a struct does. fn's error stops the walk and is returned as it is.
func Members(data []byte, fn func(name []byte, v Value) error) error {
	s := scanner{data: data}
	s.space()
	if s.i < len(s.data) && s.data[s.i] == '{' {
		if err := s.walkObject(1, fn); err != nil {
			return err
		}
		s.space()
		if s.i != len(s.data) {
			return s.fail("data after the value")
		}
		return nil
	}
	v, err := Parse(data)
	switch {
	case err != nil:
		return err
	case v.Kind == Null:
		return nil
	}
	return fmt.Errorf("want a JSON object, got %s", v.Kind)
}

// Parse checks that data is one valid JSON value, with only whitespace
// around it, and returns it.
func Parse(data []byte) (Value, error) {
	s := scanner{data: data}
	s.space()
	v, err := s.value(0)
	if err != nil {
		return Value{}, err
	}
	s.space()
	if s.i != len(s.data) {
		return Value{}, s.fail("data after the value")
	}
	return v, nil
}

// EachMember calls fn for every member of an object value that this
// package returned (and so validated), without checking it again. On any
// other value it calls fn never.
func (v Value) EachMember(fn func(name []byte, v Value) error) error {
	if v.Kind != Object {
		return nil
	}
	s := scanner{data: v.Raw, i: 1}
	for {
		s.space()
		if s.data[s.i] == '}' {
			return nil
		}
		start := s.i
		s.skipString()
		name := s.data[start+1 : s.i-1]
		s.space()
		s.i++ // ':'
		s.space()
		val := s.skipValue()
		if err := fn(name, val); err != nil {
			return err
		}
		s.space()
		if s.data[s.i] == ',' {
			s.i++
		}
	}
}

// EachElement calls fn for every element of an array value that this
// package returned (and so validated), without checking it again. On any
// other value it calls fn never.
func (v Value) EachElement(fn func(v Value) error) error {
	if v.Kind != Array {
		return nil
	}
	s := scanner{data: v.Raw, i: 1}
	for {
		s.space()
		if s.data[s.i] == ']' {
			return nil
		}
		if err := fn(s.skipValue()); err != nil {
			return err
		}
		s.space()
		if s.data[s.i] == ',' {
			s.i++
		}
	}
}

// Name returns a member name as Members and EachMember hand it out, with
// its escapes decoded as encoding/json decodes them before comparing
// names: "\u0069d" is "id". A name without a backslash is returned as it
// is, without copying, so switch string(Name(name)) costs no allocation.
func Name(name []byte) []byte {
	if bytes.IndexByte(name, '\\') < 0 {
		return name
	}
	raw := make([]byte, 0, len(name)+2)
	raw = append(append(append(raw, '"'), name...), '"')
	s, _ := Value{Raw: raw, Kind: String}.String()
	return []byte(s)
}

// skipValue steps over a value known to be valid and returns it.
func (s *scanner) skipValue() Value {
	start := s.i
	var kind Kind
	switch c := s.data[s.i]; c {
	case '"':
		kind = String
		s.skipString()
	case '{', '[':
		kind = Kind(c)
		for depth := 0; ; {
			switch s.data[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				break
			}
		}
	case 't', 'f', 'n':
		kind = Kind(c)
		for s.i < len(s.data) && s.data[s.i] >= 'a' && s.data[s.i] <= 'z' {
			s.i++
		}
	default:
		kind = Number
		for s.i < len(s.data) && numberByte[s.data[s.i]] {
			s.i++
		}
	}
	return Value{Raw: s.data[start:s.i:s.i], Kind: kind}
}

// skipString steps over a string known to be valid: to the first quote
// not escaped by an odd run of backslashes.
func (s *scanner) skipString() {
	s.i++ // '"'
	for {
		q := s.i + bytes.IndexByte(s.data[s.i:], '"')
		n := 0
		for q-1-n >= s.i && s.data[q-1-n] == '\\' {
			n++
		}
		s.i = q + 1
		if n%2 == 0 {
			return
		}
	}
}

var numberByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eE") {
		t[c] = true
	}
	return t
}()

// plainWord reports whether none of the eight bytes of w is a quote, a
// backslash or a control character (below 0x20): the classic "has a byte
// less than n" and "has a zero byte" bit tricks, which are exact.
func plainWord(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	less := (w - ones*0x20) &^ w & highs
	quote := w ^ (ones * '"')
	slash := w ^ (ones * '\\')
	zero := ((quote - ones) &^ quote & highs) | ((slash - ones) &^ slash & highs)
	return less|zero == 0
}

// plainByte marks the bytes a string may hold that need no closer look.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// String returns the text of a string value, escapes decoded and invalid
// UTF-8 replaced as encoding/json does; false when v is not a string.
func (v Value) String() (string, bool) {
	if v.Kind != String || len(v.Raw) < 2 {
		return "", false
	}
	body := v.Raw[1 : len(v.Raw)-1]
	plain := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(body), true
	}
	var s string
	if err := json.Unmarshal(v.Raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// List returns the elements of an array value that this package returned,
// as the page decoders read a page's records; null gives none. Any other
// kind is an error that names the member, name.
func (v Value) List(name string) ([]Value, error) {
	switch v.Kind {
	case Null:
		return nil, nil
	case Array:
		var out []Value
		err := v.EachElement(func(e Value) error {
			out = append(out, e)
			return nil
		})
		return out, err
	}
	return nil, fmt.Errorf("%s is a %s, want an array", name, v.Kind)
}

// OptionalInt reads an integer member, as the page decoders read a page's
// total: false for null; an error that names the member, name, for
// anything but an integer.
func (v Value) OptionalInt(name string) (int64, bool, error) {
	switch v.Kind {
	case Null:
		return 0, false, nil
	case Number:
		n, ok := v.Int()
		if !ok {
			return 0, false, fmt.Errorf("%s %s is not an integer", name, v.Raw)
		}
		return n, true, nil
	}
	return 0, false, fmt.Errorf("%s is a %s, want an integer", name, v.Kind)
}

// ID returns an identifier the APIs give as a non-empty string or as an
// integer, as text; false for anything else.
func (v Value) ID() (string, bool) {
	switch v.Kind {
	case String:
		s, _ := v.String()
		return s, s != ""
	case Number:
		n, ok := v.Int()
		if !ok {
			return "", false
		}
		return strconv.FormatInt(n, 10), true
	}
	return "", false
}

// Int returns an integer number value; false when v is not an integer
// that fits in an int64.
func (v Value) Int() (int64, bool) {
	if v.Kind != Number {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v.Raw), 10, 64)
	return n, err == nil
}

type scanner struct {
	data []byte
	i    int
}

var errDepth = errors.New("exceeded max depth")

func (s *scanner) fail(msg string) error {
	return &SyntaxError{Offset: s.i, msg: msg}
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value reads the value at s.i and returns it.
func (s *scanner) value(depth int) (Value, error) {
	if s.i >= len(s.data) {
		return Value{}, s.fail("unexpected end of input")
	}
	start := s.i
	var kind Kind
	var err error
	switch c := s.data[s.i]; {
	case c == '"':
		kind, err = String, s.str()
	case c == '{':
		kind, err = Object, s.object(depth+1)
	case c == '[':
		kind, err = Array, s.array(depth+1)
	case c == 't':
		kind, err = True, s.literal("true")
	case c == 'f':
		kind, err = False, s.literal("false")
	case c == 'n':
		kind, err = Null, s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		kind, err = Number, s.number()
	default:
		return Value{}, s.fail(fmt.Sprintf("invalid character %q looking for a value", c))
	}
	if err != nil {
		return Value{}, err
	}
	return Value{Raw: s.data[start:s.i:s.i], Kind: kind}, nil
}

func (s *scanner) object(depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	return s.walkObject(depth, nil)
}

// walkObject reads the object at s.i, calling fn (when not nil) for each
// member as soon as it is read.
func (s *scanner) walkObject(depth int, fn func(name []byte, v Value) error) error {
	s.i++ // '{'
	s.space()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return s.fail("want a member name")
		}
		start := s.i
		if err := s.str(); err != nil {
			return err
		}
		name := s.data[start+1 : s.i-1]
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return s.fail("want ':' after a member name")
		}
		s.i++
		s.space()
		v, err := s.value(depth)
		if err != nil {
			return err
		}
		if fn != nil {
			if err := fn(name, v); err != nil {
				return err
			}
		}
		s.space()
		if s.i >= len(s.data) {
			return s.fail("unexpected end of input in an object")
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("want ',' or '}' in an object")
		}
	}
}

func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	s.i++ // '['
	s.space()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.space()
		if _, err := s.value(depth); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.data) {
			return s.fail("unexpected end of input in an array")
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("want ',' or ']' in an array")
		}
	}
}

// str reads a string, checking its escapes; control characters must be
// escaped. Invalid UTF-8 is accepted, as encoding/json accepts it.
func (s *scanner) str() error {
	s.i++ // '"'
	for s.i < len(s.data) {
		// Eight bytes at a time while none of them needs a closer look.
		for s.i+8 <= len(s.data) && plainWord(binary.LittleEndian.Uint64(s.data[s.i:])) {
			s.i += 8
		}
		for s.i < len(s.data) && plainByte[s.data[s.i]] {
			s.i++
		}
		if s.i >= len(s.data) {
			break
		}
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			if s.i+1 >= len(s.data) {
				return s.fail("unexpected end of input in a string")
			}
			switch s.data[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.data) {
					return s.fail("unexpected end of input in a \\u escape")
				}
				for _, h := range s.data[s.i+2 : s.i+6] {
					if !isHex(h) {
						return s.fail("invalid \\u escape")
					}
				}
				s.i += 6
			default:
				return s.fail("invalid escape in a string")
			}
		case c < 0x20:
			return s.fail("control character in a string")
		default:
			s.i++
		}
	}
	return s.fail("unexpected end of input in a string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.i < len(word) || string(s.data[s.i:s.i+len(word)]) != word {
		return s.fail("invalid literal")
	}
	s.i += len(word)
	return nil
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.data[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.data) && s.data[s.i] == '0':
		s.i++
	case s.i < len(s.data) && s.data[s.i] >= '1' && s.data[s.i] <= '9':
		s.digits()
	default:
		return s.fail("invalid number")
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.fail("invalid number: no digits after '.'")
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.fail("invalid number: no digits in the exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}
