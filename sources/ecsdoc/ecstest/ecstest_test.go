package ecstest

import (
	"strings"
	"testing"
)

// TestProblems proves the schema check can fail: each document breaks one
// rule, and the check must name the field and the rule.
func TestProblems(t *testing.T) {
	ecs := LoadECS(t)
	const head = `"@timestamp":"2025-06-01T07:00:00.000Z","ecs":{"version":"9.4.0"},`
	event := func(cat, typ string) string {
		return `"event":{"kind":"event","category":["` + cat + `"],"type":["` + typ + `"],"outcome":"unknown"}`
	}
	good := `{` + head + event("file", "access") + `,"user":{"id":"u1"},"related":{"user":["u1"],"hash":["sha256:ab"]},` +
		`"source":{"ip":"10.0.0.1"},"file":{"size":20974,"name":"a.jar"},"huaweicloud":{"x":{"anything":[1,{"y":true}]}}}`
	if p := ecs.Problems(t, []byte(good)); len(p) != 0 {
		t.Fatalf("a valid document has problems: %v", p)
	}
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", `{` + head + event("file", "access") + `,"user":{"login":"x"}}`, "user.login is not in ECS"},
		{"keyword as a number", `{` + head + event("file", "access") + `,"user":{"id":7}}`, "user.id = 7: ECS type keyword wants a string"},
		{"date not RFC 3339", `{"@timestamp":"2025/06/01 07:00:00","ecs":{"version":"9.4.0"},` + event("file", "access") + `}`, "@timestamp = 2025/06/01 07:00:00: ECS type date"},
		{"ip not an address", `{` + head + event("file", "access") + `,"source":{"ip":"10.0.0.300"}}`, "source.ip = 10.0.0.300: ECS type ip"},
		{"long with a fraction", `{` + head + event("file", "access") + `,"file":{"size":1.5}}`, "file.size = 1.5: ECS type long wants an integer"},
		{"array in a one-value field", `{` + head + event("file", "access") + `,"user":{"name":["a","b"]}}`, "user.name is an array"},
		{"one value in an array field", `{` + head + event("file", "access") + `,"related":{"user":"a"}}`, "related.user is a; ECS normalizes it to an array"},
		{"category not allowed", `{` + head + event("registry-image", "access") + `}`, `event.category "registry-image" is not one of`},
		{"type not expected with the category", `{` + head + event("package", "creation") + `}`, `event.type "creation" is not expected with event.category "package"`},
		{"outcome missing", `{` + head + `"event":{"kind":"event","category":["file"],"type":["access"]}}`, "event.outcome is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ecs.Problems(t, []byte(tt.doc))
			if !strings.Contains(strings.Join(p, "\n"), tt.want) {
				t.Errorf("problems %q do not include %q", p, tt.want)
			}
		})
	}
}
