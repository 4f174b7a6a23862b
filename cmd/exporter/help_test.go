package main

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hwcaudit/hwcaudit/cmd/exporter/internal/envdoc"
)

// envTag is one go-envconfig tag of Config.
type envTag struct {
	name, def string
	field     string
}

// envTags walks t's fields, nested structs included (pointers not: they
// re-read variables read elsewhere), and returns every env tag. A default
// is the rest of the tag after "default=", commas and all (go-envconfig's
// rule: default must be the last option).
func envTags(t reflect.Type, path string) []envTag {
	var tags []envTag
	for f := range t.Fields() {
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			if f.Type.Kind() == reflect.Struct && f.IsExported() {
				tags = append(tags, envTags(f.Type, path+f.Name+".")...)
			}
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		e := envTag{name: name, field: path + f.Name}
		if _, def, ok := strings.Cut(opts, "default="); ok {
			e.def = def
		}
		tags = append(tags, e)
	}
	return tags
}

// help_gen.go is what the generator writes today: run `go generate
// ./cmd/exporter` after changing a Config field, its tag or its doc.
func TestHelpGenerated(t *testing.T) {
	vars, err := envdoc.Extract(".", "Config")
	if err != nil {
		t.Fatal(err)
	}
	want, err := envdoc.Generate(vars, "cmd/exporter/internal/envdoc/gen", "main", "variables", "variable")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("help_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("help_gen.go is stale: run go generate ./cmd/exporter")
	}
}

// The generator, which reads source, and the env tags, which envconfig
// reads at run time, agree: same names, same defaults, each read by one
// field.
func TestHelpDocumentsEveryVariable(t *testing.T) {
	tags := envTags(reflect.TypeFor[Config](), "")
	if len(tags) < 20 {
		t.Fatalf("found only %d env tags; is the walk broken?", len(tags))
	}
	documented := make(map[string]variable)
	for _, v := range variables {
		if _, dup := documented[v.name]; dup {
			t.Errorf("help documents %s twice", v.name)
		}
		documented[v.name] = v
		if strings.TrimSpace(v.doc) == "" {
			t.Errorf("%s: no description in help", v.name)
		}
	}
	inStruct := make(map[string]bool)
	for _, tag := range tags {
		if inStruct[tag.name] {
			t.Errorf("%s is read by two fields", tag.name)
		}
		inStruct[tag.name] = true
		v, ok := documented[tag.name]
		if !ok {
			t.Errorf("%s (Config.%s) is missing from help", tag.name, tag.field)
			continue
		}
		if v.def != tag.def {
			t.Errorf("%s: help says default %q, Config.%s has %q", tag.name, v.def, tag.field, tag.def)
		}
	}
	for _, v := range variables {
		if !inStruct[v.name] {
			t.Errorf("help documents %s, which no Config field reads", v.name)
		}
	}
	for name := range defaultPlaceholders {
		v, ok := documented[name]
		if !ok {
			t.Errorf("placeholder for %s, which no Config field reads", name)
		} else if v.def != "" {
			t.Errorf("placeholder for %s, which has the default %q", name, v.def)
		}
	}
}

// recordingLookuper records every variable looked up.
type recordingLookuper struct {
	env  map[string]string
	mu   sync.Mutex
	seen map[string]bool
}

func (l *recordingLookuper) Lookup(key string) (string, bool) {
	l.mu.Lock()
	l.seen[key] = true
	l.mu.Unlock()
	v, ok := l.env[key]
	return v, ok
}

// Every variable loadConfig reads, whatever struct or function reads it,
// is in `exporter help`.
func TestHelpListsEveryVariableRead(t *testing.T) {
	var help bytes.Buffer
	printHelp(&help)
	l := &recordingLookuper{env: validEnv(), seen: map[string]bool{}}
	if _, err := loadConfig(t.Context(), l, time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(l.seen) < len(variables) {
		t.Fatalf("loadConfig looked up %d variables; help lists %d", len(l.seen), len(variables))
	}
	for _, key := range slices.Sorted(func(yield func(string) bool) {
		for k := range l.seen {
			if !yield(k) {
				return
			}
		}
	}) {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(key) + `\b`).Match(help.Bytes()) {
			t.Errorf("loadConfig reads %s, which exporter help does not name", key)
		}
	}
}

// TestHelpCommand runs `exporter help`: every variable appears with its
// default, the SDK's credential variables too, and the exit codes the
// usage text lists are the ones the code returns.
func TestHelpCommand(t *testing.T) {
	t.Parallel()
	r := startExporter(t, t.TempDir(), nil, "help").wait(t, 30*time.Second)
	if r.code != exitOK {
		t.Fatalf("help: %v", r)
	}
	var buf bytes.Buffer
	printHelp(&buf)
	if r.stdout != buf.String() {
		t.Errorf("the binary's help differs from printHelp")
	}
	for _, v := range variables {
		// The default follows the name, or, when too long for the line,
		// comes on lines of its own that join back into it.
		re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(v.name) + `  \(default:([ \n][^()]*?)\n?(?: {6})?\)\n      \S`)
		m := re.FindStringSubmatch(r.stdout)
		if m == nil || strings.Join(strings.Fields(m[1]), "") != strings.ReplaceAll(orNone(v.shownDefault()), " ", "") {
			t.Errorf("help has no entry for %s with default %q and a description", v.name, orNone(v.shownDefault()))
		}
	}
	for _, v := range sdkVariables {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(v.name) + `\n      \S`).MatchString(r.stdout) {
			t.Errorf("help has no entry for %s", v.name)
		}
	}
	codes := fmt.Sprintf("Exit codes: %d success, %d a stream failed, %d invalid configuration or usage,\n%d interrupted",
		exitOK, exitFailed, exitUsage, exitInterrupted)
	if !strings.Contains(r.stdout, codes) {
		t.Errorf("help does not list the exit codes as %q", codes)
	}
}

// Every line of `exporter help`, of `exporter` alone and of each command's
// --help fits a terminal of 100 columns.
func TestHelpFitsWidth(t *testing.T) {
	runs := [][]string{{"help"}, nil}
	for _, cmd := range []string{"run", "check", "backfill", "demo", "checkpoints"} {
		runs = append(runs, []string{cmd, "--help"})
	}
	for _, args := range runs {
		var out, errOut bytes.Buffer
		realMain(args, &out, &errOut)
		text := out.String() + errOut.String()
		if len(text) < 40 {
			t.Errorf("exporter %v printed only %q", args, text)
		}
		for i, line := range strings.Split(text, "\n") {
			if n := utf8.RuneCountInString(line); n > helpWidth {
				t.Errorf("exporter %v: line %d has %d columns: %s", args, i+1, n, line)
			}
		}
	}
}

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		text  string
		width int
		want  []string
	}{
		{"", 10, nil},
		{"one two three", 7, []string{"one two", "three"}},
		{"one  two\nthree", 20, []string{"one two three"}},
		{"averyveryverylongword x", 5, []string{"averyveryverylongword", "x"}},
		{"ab cd", 5, []string{"ab cd"}},
	} {
		if got := wrap(c.text, c.width); !slices.Equal(got, c.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", c.text, c.width, got, c.want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"version", "--version"} {
		r := startExporter(t, t.TempDir(), nil, arg).wait(t, 30*time.Second)
		// Version, commit and Go version: "hwcaudit exporter dev (commit
		// 5e78416c0a1b+dirty, go1.26.8)".
		if r.code != exitOK || !regexp.MustCompile(`^hwcaudit exporter \S+ \(commit \S+, go\d+\.\d+\S*\)\n$`).MatchString(r.stdout) {
			t.Errorf("%s: %v", arg, r)
		}
	}
}
