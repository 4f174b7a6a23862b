package main

import (
	"os"
	"strings"
	"testing"
)

// The README's configuration table must list every variable `exporter help`
// knows, with the same default, so the docs cannot drift from the code.
func TestReadmeListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		rows[name] = strings.Trim(strings.TrimSpace(cells[2]), "`")
	}
	for _, v := range variables {
		def, ok := rows[v.name]
		if !ok {
			t.Errorf("README.md does not list %s", v.name)
			continue
		}
		if def != v.shownDefault() {
			t.Errorf("README.md gives %s the default %q; the code has %q", v.name, def, v.shownDefault())
		}
	}
}
