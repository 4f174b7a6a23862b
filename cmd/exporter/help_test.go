package main

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// envTag is one go-envconfig tag of Config.
type envTag struct {
	name, def string
	hasDef    bool
	field     string
}

// envTags walks t's fields, nested structs included, and returns every env
// tag. A default is the rest of the tag after "default=", commas and all
// (go-envconfig's rule: default must be the last option).
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
			e.def, e.hasDef = def, true
		}
		tags = append(tags, e)
	}
	return tags
}

// documentedPlaceholders are the variables without a tag default whose help
// entry describes what an unset variable means instead of showing "none".
var documentedPlaceholders = map[string]string{
	"HWCAUDIT_PROJECT_ID":        "$HUAWEICLOUD_SDK_PROJECT_ID",
	"HWCAUDIT_SWR_ENDPOINT":      "https://swr-api.{region}.myhuaweicloud.com",
	"HWCAUDIT_GAUSSDB_ENDPOINT":  "https://{gaussdb host for the region}",
	"HWCAUDIT_ARTIFACT_ENDPOINT": "https://{artifact host for the region}",
	"HWCAUDIT_DBSS_ENDPOINT":     "https://dbss.{region}.myhuaweicloud.com",
	"HWCAUDIT_CTS_ENDPOINT":      "https://cts.{region}.myhuaweicloud.com",
}

// TestHelpDocumentsEveryVariable keeps the help table and Config's env
// tags in step: same names, same defaults.
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
	}
	inStruct := make(map[string]bool)
	for _, tag := range tags {
		if inStruct[tag.name] {
			t.Errorf("%s is read by two fields", tag.name)
		}
		inStruct[tag.name] = true
		v, ok := documented[tag.name]
		if !ok {
			t.Errorf("%s (Config.%s) is missing from the help table", tag.name, tag.field)
			continue
		}
		want := tag.def
		if !tag.hasDef {
			if p, ok := documentedPlaceholders[tag.name]; ok {
				want = p
			}
		}
		if v.def != want {
			t.Errorf("%s: help says default %q, Config.%s has %q", tag.name, v.def, tag.field, want)
		}
		if strings.TrimSpace(v.doc) == "" {
			t.Errorf("%s: no description in help", tag.name)
		}
	}
	for _, v := range variables {
		if !inStruct[v.name] {
			t.Errorf("help documents %s, which no Config field reads", v.name)
		}
	}
	for name := range documentedPlaceholders {
		if !inStruct[name] {
			t.Errorf("placeholder for %s, which no Config field reads", name)
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
		re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(v.name) + ` +.*\(default: ` + regexp.QuoteMeta(orNone(v.def)) + `\)$`)
		if !re.MatchString(r.stdout) {
			t.Errorf("help has no line for %s with default %q", v.name, orNone(v.def))
		}
	}
	for _, v := range sdkVariables {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(v.name) + ` +\S`).MatchString(r.stdout) {
			t.Errorf("help has no line for %s", v.name)
		}
	}
	codes := fmt.Sprintf("Exit codes: %d success, %d a stream failed, %d invalid configuration or usage,\n%d interrupted",
		exitOK, exitFailed, exitUsage, exitInterrupted)
	if !strings.Contains(r.stdout, codes) {
		t.Errorf("help does not list the exit codes as %q", codes)
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
