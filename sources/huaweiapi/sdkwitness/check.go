package sdkwitness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/utils"
)

// Problem is one member of a response that does not fit the SDK's model.
type Problem struct {
	// Rule is the member's path with array indexes left out, e.g.
	// "audit_logs[].size", so that one allowance covers every record.
	Rule string
	// At is the member's path with indexes, e.g. "audit_logs[3].size".
	At string
	// Want is the model's Go type, e.g. "int64"; empty for an unknown member.
	Want string
	// Got is what the response holds: a JSON type ("string", "object"),
	// "fractional number", "number out of range", "null" or "unknown member".
	Got string
	// Value is the member's JSON text, cut to 60 bytes.
	Value string
}

func (p Problem) String() string {
	if p.Want == "" {
		return fmt.Sprintf("%s: %s %s (not in the SDK's model)", p.At, p.Got, p.Value)
	}
	return fmt.Sprintf("%s: %s %s where the SDK's model has %s", p.At, p.Got, p.Value, p.Want)
}

// Check decodes body and compares every member with model, an SDK
// response model (e.g. new(model.ListAuditLogsResponse)): a member the
// model does not know, or whose JSON type its field cannot hold (a string
// for an int64, a fraction for an int32, a number for a string), is a
// Problem. null fits a pointer field. The SDK's own decoder is more
// lenient in places (an enum's UnmarshalJSON takes any JSON value), so
// this check is the stricter witness; Unmarshal is the SDK's own.
func Check(body []byte, model any) ([]Problem, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	var c checker
	c.walk(v, reflect.TypeOf(model), "", "")
	return c.problems, nil
}

// Unmarshal decodes body into model as the SDK's service clients decode a
// response (json-iterator, numbers kept as json.Number).
func Unmarshal(body []byte, model any) error {
	return utils.Unmarshal(body, model)
}

type checker struct{ problems []Problem }

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

func (c *checker) add(v any, t reflect.Type, rule, at, got string) {
	raw, _ := json.Marshal(v)
	val := string(raw)
	if len(val) > 60 {
		val = val[:60] + "…"
	}
	want := ""
	if t != nil {
		want = t.String()
	}
	c.problems = append(c.problems, Problem{Rule: orRoot(rule), At: orRoot(at), Want: want, Got: got, Value: val})
}

func orRoot(p string) string { return or(p, "$") }

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

func (c *checker) walk(v any, t reflect.Type, rule, at string) {
	if t.Kind() == reflect.Pointer {
		if v == nil {
			return
		}
		t = t.Elem()
	}
	if v == nil && t.Kind() != reflect.Interface {
		c.add(v, t, rule, at, "null")
		return
	}
	switch {
	case isEnum(t):
		if _, ok := v.(string); !ok {
			c.add(v, t, rule, at, jsonType(v))
		}
		return
	}
	switch t.Kind() {
	case reflect.Interface:
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			c.add(v, t, rule, at, jsonType(v))
			return
		}
		fields := jsonFields(t)
		for _, name := range sortedKeys(obj) {
			sub := name
			if rule != "" {
				sub = rule + "." + name
			}
			subAt := name
			if at != "" {
				subAt = at + "." + name
			}
			f, ok := fields[name]
			if !ok {
				c.add(obj[name], nil, sub, subAt, "unknown member")
				continue
			}
			c.walk(obj[name], f.Type, sub, subAt)
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			c.add(v, t, rule, at, jsonType(v))
			return
		}
		for i, e := range arr {
			c.walk(e, t.Elem(), rule+"[]", fmt.Sprintf("%s[%d]", at, i))
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			c.add(v, t, rule, at, jsonType(v))
			return
		}
		for _, k := range sortedKeys(obj) {
			c.walk(obj[k], t.Elem(), rule+"."+k, at+"."+k)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.add(v, t, rule, at, jsonType(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			c.add(v, t, rule, at, jsonType(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			c.add(v, t, rule, at, jsonType(v))
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			c.add(v, t, rule, at, numberProblem(err))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			c.add(v, t, rule, at, jsonType(v))
			return
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			c.add(v, t, rule, at, numberProblem(err))
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			c.add(v, t, rule, at, jsonType(v))
		}
	default:
		c.add(v, t, rule, at, "unsupported model type")
	}
}

func numberProblem(err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "number out of range"
	}
	return "fractional number"
}

// isEnum reports whether t is one of the SDK's string enums: a struct
// holding an unexported value string, decoded by its UnmarshalJSON.
func isEnum(t reflect.Type) bool {
	if t.Kind() != reflect.Struct || !reflect.PointerTo(t).Implements(unmarshaler) {
		return false
	}
	f, ok := t.FieldByName("value")
	return ok && t.NumField() == 1 && f.Type.Kind() == reflect.String
}

// jsonFields maps the JSON member names of struct t to its fields, as
// their json tags name them.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// SimulatorExtra reports whether p is one of the unknown members the
// simulator adds to a record served odd (Faults.OddRate, kind OddExtra):
// members named x_…, which no API documents and every reader must ignore.
func SimulatorExtra(p Problem) bool {
	last := p.Rule[strings.LastIndexAny(p.Rule, ".]")+1:]
	return p.Got == "unknown member" && strings.HasPrefix(last, "x_")
}
