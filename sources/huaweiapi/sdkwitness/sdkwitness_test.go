package sdkwitness

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type page struct {
	Items *[]item `json:"items,omitempty"`
	Total *int32  `json:"total,omitempty"`
	Code  int     `json:"-"`
}

type item struct {
	ID   *int64  `json:"id,omitempty"`
	Name *string `json:"name,omitempty"`
	Size *int64  `json:"size,omitempty"`
}

func TestCheckFindsWrongTypes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // Rule + " " + Got
	}{
		{"fits", `{"items":[{"id":1,"name":"a","size":null}],"total":1}`, nil},
		{"id string", `{"items":[{"id":"1"}],"total":1}`, []string{"items[].id string"}},
		{"name number", `{"items":[{"name":7}]}`, []string{"items[].name number"}},
		{"size fraction", `{"items":[{"size":1.5}]}`, []string{"items[].size fractional number"}},
		{"total too large", `{"total":2147483648}`, []string{"total number out of range"}},
		{"unknown member", `{"items":[{"id":1,"extra":true}]}`, []string{"items[].extra unknown member"}},
		{"items object", `{"items":{}}`, []string{"items object"}},
		{"record null", `{"items":[null]}`, []string{"items[] null"}},
		{"status code not a member", `{"Code":1}`, []string{"Code unknown member"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := Check([]byte(tc.body), new(page))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Rule+" "+p.Got)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	base := Request{
		Method: http.MethodPost,
		Path:   "/v1/p/audit/i/operation-log",
		Query:  url.Values{"a": {"1"}},
		Header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {"x"}, "X-Project-Id": {"p"}},
		Body:   []byte(`{"time":{"start_time":"2025-01-01 00:00:00"},"page":"1"}`),
	}
	if d := Compare(base, base); len(d) > 0 {
		t.Fatalf("a request differs from itself: %q", d)
	}
	other := base
	other.Header = http.Header{"Content-Type": {"application/json;charset=UTF-8"}, "User-Agent": {"y"}}
	other.Query = url.Values{"a": {"2"}, "b": {"1"}}
	other.Body = []byte(`{"time":{"start_time":"2025-01-01 00:00:00"},"page":1}`)
	got := strings.Join(Compare(base, other), "\n")
	for _, want := range []string{
		`query a: ours ["1"], SDK ["2"]`,
		`query b: ours absent`,
		`body page: ours string "1", SDK number 1`,
		`header Content-Type`,
		`header X-Project-Id: ours ["p"], SDK absent`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("differences lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "User-Agent") {
		t.Errorf("User-Agent is an allowed difference:\n%s", got)
	}
}
