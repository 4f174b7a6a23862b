package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// agree checks jsonscan against encoding/json on one input: the same
// verdict on validity, and for objects the same members (the last of a
// repeated name wins in both) with the same values and string texts.
func agree(t *testing.T, data []byte) {
	t.Helper()
	v, err := Parse(data)
	if valid := json.Valid(data); valid != (err == nil) {
		t.Fatalf("%q: json.Valid = %v, Parse error = %v", data, valid, err)
	}
	if err != nil {
		return
	}
	if !bytes.Equal(bytes.TrimSpace(data), v.Raw) {
		t.Fatalf("%q: Parse returned %q", data, v.Raw)
	}
	if v.Kind == String {
		var want string
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if got, ok := v.String(); !ok || got != want {
			t.Fatalf("%q: String() = %q, %v; encoding/json says %q", data, got, ok, want)
		}
	}
	if v.Kind == Array {
		var want []json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		if err := Elements(data, func(e Value) error { got = append(got, e.Raw); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, encoding/json found %d", data, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: element %d = %q, encoding/json says %q", data, i, got[i], want[i])
			}
		}
	}
	if v.Kind != Object {
		return
	}
	want := map[string]json.RawMessage{}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	got := map[string]json.RawMessage{}
	err = Members(data, func(name []byte, v Value) error {
		var n string
		if err := json.Unmarshal(append(append([]byte{'"'}, name...), '"'), &n); err != nil {
			t.Fatalf("member name %q: %v", name, err)
		}
		got[n] = v.Raw
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d members, encoding/json found %d", data, len(got), len(want))
	}
	// The walk over a validated value sees the same members.
	var viaMembers, viaEach []string
	_ = Members(data, func(name []byte, v Value) error {
		viaMembers = append(viaMembers, string(name)+"="+string(v.Raw)+"/"+v.Kind.String())
		return nil
	})
	_ = v.EachMember(func(name []byte, v Value) error {
		viaEach = append(viaEach, string(name)+"="+string(v.Raw)+"/"+v.Kind.String())
		return nil
	})
	if strings.Join(viaMembers, "\x00") != strings.Join(viaEach, "\x00") {
		t.Fatalf("%q: EachMember saw %q, Members %q", data, viaEach, viaMembers)
	}
	for k, w := range want {
		if !bytes.Equal(got[k], w) {
			t.Fatalf("%q: member %q = %q, encoding/json says %q", data, k, got[k], w)
		}
	}
}

var samples = []string{
	`{"id":1,"op_time":"2025-06-01T07:00:00.123Z","operation":"pull","username":"alice"}`,
	` { "a" : [ 1 , 2.5e-3 , -0 , true , false , null , { } , [ ] ] , "b" : { "c" : "d" } } `,
	`{"s":"\u00e9\n\t\"\\\/ é 日本 \ud83d\ude00"}`,
	`{"dup":1,"dup":2}`,
	`{"bad utf8":"` + "\xff\xfe" + `"}`,
	`"plain"`, `"esc\u0041"`, `123`, `-1.5E+10`, `null`, `true`, `[]`, `{}`,
	// Invalid ones.
	``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a":1 "b":2}`,
	`01`, `1.`, `.5`, `1e`, `-`, `+1`, `0x10`, `tru`, `nul`, `"\x"`, `"\u12"`, `"a` + "\n" + `b"`,
	`"unterminated`, `{"a":1}x`, `{"a":1}{"b":2}`, `NaN`, `{'a':1}`,
}

func TestAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range samples {
		agree(t, []byte(s))
	}
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	if _, err := Parse([]byte(deep)); err == nil {
		t.Error("nesting beyond encoding/json's limit accepted")
	}
	ok := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	agree(t, []byte(ok))
}

func TestMembersAndElements(t *testing.T) {
	page := []byte(`{"audit_logs":[{"id":2},{"id":1}],"total":2}`)
	var names []string
	var elems []string
	err := Members(page, func(name []byte, v Value) error {
		names = append(names, string(name))
		if string(name) == "audit_logs" {
			return Elements(v.Raw, func(e Value) error {
				elems = append(elems, string(e.Raw))
				return nil
			})
		}
		if n, ok := v.Int(); !ok || n != 2 {
			t.Errorf("total = %d, %v", n, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "audit_logs,total" || strings.Join(elems, ",") != `{"id":2},{"id":1}` {
		t.Fatalf("names %v elements %v", names, elems)
	}
	stop := errors.New("stop")
	if err := Members([]byte(`{"a":1,"b":2}`), func([]byte, Value) error { return stop }); err != stop {
		t.Errorf("fn's error came back as %v", err)
	}
	if err := Members([]byte(`null`), func([]byte, Value) error { t.Error("called for null"); return nil }); err != nil {
		t.Error(err)
	}
	for _, notObject := range []string{`[1]`, `"x"`, `1`} {
		if err := Members([]byte(notObject), func([]byte, Value) error { return nil }); err == nil {
			t.Errorf("Members accepted %s", notObject)
		}
	}
	if err := Elements([]byte(`{"a":1}`), func(Value) error { return nil }); err == nil {
		t.Error("Elements accepted an object")
	}
	for raw, want := range map[string]bool{`1`: true, `-7`: true, `1.5`: false, `1e3`: false, `"1"`: false, `9223372036854775808`: false} {
		if _, ok := (Value{Raw: []byte(raw), Kind: kindOf(raw)}).Int(); ok != want {
			t.Errorf("Int(%s) ok = %v", raw, ok)
		}
	}
}

func kindOf(raw string) Kind {
	v, err := Parse([]byte(raw))
	if err != nil {
		return 0
	}
	return v.Kind
}

func FuzzAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range samples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agree(t, data)
	})
}

func BenchmarkMembers(b *testing.B) {
	rec := []byte(`{"id":123456,"op_time":"2025-06-01T07:00:00.123Z","operation":"pull","resource_type":"repository","resource":"library/nginx:1.25","username":"alice"}`)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Members(rec, func([]byte, Value) error { return nil })
	}
}

func TestName(t *testing.T) {
	obj := []byte(`{"id":1,"\u0069d":2,"op\u005ftime":3,"a\"b\\c":4,"\u00e9t\u00e9":5,"日本":6}`)
	var want map[string]json.RawMessage
	if err := json.Unmarshal(obj, &want); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err := Members(obj, func(name []byte, v Value) error {
		got[string(Name(name))] = string(v.Raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("names %q, encoding/json decodes %q", got, want)
	}
	for k, v := range want {
		if got[k] != string(v) {
			t.Errorf("%q = %s, encoding/json has %s", k, got[k], v)
		}
	}
	plain := []byte("operation")
	if n := testing.AllocsPerRun(100, func() { _ = Name(plain) }); n != 0 {
		t.Errorf("Name of a plain name allocates %v times", n)
	}
}

func TestPlainWordMatchesPlainByte(t *testing.T) {
	// Every byte value in every position, among plain neighbours.
	for pos := range 8 {
		for c := range 256 {
			var b [8]byte
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			want := plainByte[c]
			if got := plainWord(binary.LittleEndian.Uint64(b[:])); got != want {
				t.Fatalf("byte %#x at %d: plainWord = %v, plainByte = %v", c, pos, got, want)
			}
		}
	}
	// Pairs of special bytes (borrows between lanes must not hide one).
	for c1 := range 256 {
		for c2 := range 256 {
			b := [8]byte{'a', byte(c1), byte(c2), 'a', 0xff, 0x80, 'z', '~'}
			want := plainByte[c1] && plainByte[c2]
			if got := plainWord(binary.LittleEndian.Uint64(b[:])); got != want {
				t.Fatalf("bytes %#x %#x: plainWord = %v, want %v", c1, c2, got, want)
			}
		}
	}
}

func TestListAndOptionalInt(t *testing.T) {
	val := func(raw string) Value {
		v, err := Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if l, err := val(`[1,"a",{}]`).List("logs"); err != nil || len(l) != 3 || string(l[1].Raw) != `"a"` {
		t.Errorf("List of an array = %v, %v", l, err)
	}
	if l, err := val(`null`).List("logs"); err != nil || l != nil {
		t.Errorf("List of null = %v, %v", l, err)
	}
	if _, err := val(`{}`).List("logs"); err == nil || !strings.Contains(err.Error(), "logs is a object, want an array") {
		t.Errorf("List of an object: %v", err)
	}
	for raw, want := range map[string]string{`7`: "7 true <nil>", `null`: "0 false <nil>", `1.5`: "total 1.5 is not an integer", `"7"`: "total is a string, want an integer"} {
		n, ok, err := val(raw).OptionalInt("total")
		got := fmt.Sprint(n, " ", ok, " ", err)
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("OptionalInt(%s) = %s, want %s", raw, got, want)
		}
	}
}

func TestID(t *testing.T) {
	for raw, want := range map[string]string{`"a-1"`: "a-1 true", `42`: "42 true", `""`: " false", `1.5`: " false", `null`: " false", `{}`: " false", `"\u0041"`: "A true"} {
		v, err := Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		id, ok := v.ID()
		if got := fmt.Sprint(id, " ", ok); got != want {
			t.Errorf("ID(%s) = %q, want %q", raw, got, want)
		}
	}
}

// Elements calls fn with every element of the JSON array data, in order,
// after checking that all of data is valid JSON; a null calls fn never.
// Only the tests read whole arrays this way.
func Elements(data []byte, fn func(v Value) error) error {
	v, err := Parse(data)
	if err != nil {
		return err
	}
	switch v.Kind {
	case Null:
		return nil
	case Array:
	default:
		return fmt.Errorf("want a JSON array, got %s", v.Kind)
	}
	return v.EachElement(fn)
}
