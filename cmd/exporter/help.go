package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

//go:generate go run ./internal/envdoc/gen

// variable documents one environment variable for `exporter help`. The
// variables Config reads are generated into help_gen.go from Config's env
// tags and its fields' doc comments (the first paragraph of each), so that
// help cannot drift from the code; TestHelpGenerated fails while
// help_gen.go is stale.
type variable struct {
	name, def, doc string
	// group is the struct that reads it, e.g. "Kafka" or
	// "SourcesConfig.SWR"; "" for Config's own fields.
	group string
}

// groupTitles head the groups of variables in help; a group without a
// title here is titled after its struct ("SourcesConfig.CTS": "CTS
// source").
var groupTitles = map[string]string{
	"":                       "General",
	"Checkpoint":             "Checkpoints",
	"DeadLetter":             "Dead letters",
	"File":                   "File sink (HWCAUDIT_SINKS=file)",
	"Kafka":                  "Kafka sink (HWCAUDIT_SINKS=kafka)",
	"S3":                     "S3 sink (HWCAUDIT_SINKS=s3; endpoint, region, path style and SSE serve s3:// dead letters too)",
	"ES":                     "Elasticsearch sink (HWCAUDIT_SINKS=elasticsearch)",
	"API":                    "Huawei Cloud API",
	"Window":                 "TaurusDB and DBSS time windows",
	"SourcesConfig.SWR":      "SWR source",
	"SourcesConfig.Artifact": "CodeArts Artifact source",
	"SourcesConfig.TaurusDB": "TaurusDB (GaussDB for MySQL) source",
	"SourcesConfig.DBSS":     "DBSS source",
}

func groupTitle(group string) string {
	if t, ok := groupTitles[group]; ok {
		return t
	}
	if src, ok := strings.CutPrefix(group, "SourcesConfig."); ok {
		return src + " source"
	}
	return group
}

// defaultPlaceholders describe what an unset variable without a tag
// default means, shown instead of "none".
var defaultPlaceholders = map[string]string{
	"HWCAUDIT_PROJECT_ID":        "$HUAWEICLOUD_SDK_PROJECT_ID",
	"HWCAUDIT_SWR_ENDPOINT":      "https://{swr host for the region}",
	"HWCAUDIT_GAUSSDB_ENDPOINT":  "https://{gaussdb host for the region}",
	"HWCAUDIT_ARTIFACT_ENDPOINT": "https://{artifact host for the region}",
	"HWCAUDIT_DBSS_ENDPOINT":     "https://{dbss host for the region}",
	"HWCAUDIT_CTS_ENDPOINT":      "https://{cts host for the region}",
}

// shownDefault is v's default as help and the README show it: the tag's
// default, a placeholder saying what unset means, or "" for none.
func (v variable) shownDefault() string {
	if v.def == "" {
		return defaultPlaceholders[v.name]
	}
	return v.def
}

// sdkVariables are read by the Huawei Cloud SDK's credential provider.
var sdkVariables = []variable{
	{"HUAWEICLOUD_SDK_AK", "", "access key id for AK/SK request signing", ""},
	{"HUAWEICLOUD_SDK_SK", "", "secret access key", ""},
	{"HUAWEICLOUD_SDK_SECURITY_TOKEN", "", "security token of temporary credentials (sent as X-Security-Token)", ""},
	{"HUAWEICLOUD_SDK_PROJECT_ID", "", "project id, used when HWCAUDIT_PROJECT_ID is not set", ""},
}

// awsVariables are the AWS SDK's own credential variables, which the S3
// sink and S3 dead letters use and every report is redacted of.
var awsVariables = []variable{
	{"AWS_ACCESS_KEY_ID", "", "access key id of the S3-compatible store (Huawei OBS: an AK)", ""},
	{"AWS_SECRET_ACCESS_KEY", "", "secret access key (Huawei OBS: the SK)", ""},
	{"AWS_SESSION_TOKEN", "", "session token of temporary credentials", ""},
}

// printFlags writes fl's flags as flag.PrintDefaults does, with the
// descriptions wrapped to helpWidth.
func printFlags(w io.Writer, fl *flag.FlagSet) {
	fl.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		writeWrapped(w, usage, "      ", helpWidth)
	})
}

const usage = `hwcaudit exports Huawei Cloud audit logs as Elastic Common Schema (ECS) NDJSON.

Usage:
  exporter demo [--fresh] [--pace RPS] [--latency D] [--progress MODE]
                            export from an embedded API simulator (no cloud account
                            needed); on a terminal, paced to show live progress;
                            --latency adds D (e.g. 20ms) to every simulated request
  exporter demo --serve ADDR
                            run only the simulator until interrupted and print the
                            variables that point run, check or backfill at it
  exporter run [--metrics-addr HOST:PORT]
                            export from Huawei Cloud, configured by the environment;
                            --metrics-addr serves Prometheus /metrics while running
  exporter backfill --from T [--to T|now] [--sources swr,cts,…]
                   [--progress auto|bar|log|none] [--metrics-addr HOST:PORT]
                            export a historic range once (records with @timestamp
                            in [from, to]) under its own checkpoints; rerun the same
                            command to resume; shows progress (a bar on a terminal,
                            log lines otherwise) and ends with a completeness report;
                            --metrics-addr serves /metrics as for run
  exporter check            check configuration, credentials, sources, sinks and
                            checkpoint store without exporting (exit 0: all ok)
  exporter checkpoints list [--backfill RANGE]
                            one line per stream: stream, updated_at, cursor; then
                            one line per backfill with its state
  exporter checkpoints show STREAM      print a stream's checkpoint document
  exporter checkpoints reset STREAM     delete a stream's checkpoint (under the run
                                        lock); its next run starts over
  exporter checkpoints reset --backfill RANGE [--force]
                            delete a complete backfill's checkpoints
  exporter checkpoints prune            delete every complete backfill's checkpoints
  exporter help             show this help
  exporter version          print the version

Each run reads every stream until it is caught up, then exits. A stream's
checkpoint moves only after every sink stored everything before it, so a run
that is killed or fails resumes where delivery stopped.

Exit codes: 0 success, 1 a stream failed, 2 invalid configuration or usage,
3 interrupted (SIGINT/SIGTERM) before every stream caught up. A run whose
destinations fail to close (files left unpublished) exits 1. A run that finds
another run holding the run lock exports nothing and exits 0 (a backfill: 1).

Metrics: HWCAUDIT_PUSHGATEWAY_URL receives them at the end of every run,
grouped by job hwcaudit, shard (i-of-N, or all) and mode (run, or backfill with
backfill_range). A run skipped because the lock was held pushes only
hwcaudit_last_skipped_timestamp_seconds, never a success time. Checkpoint lag
in a Pushgateway is time() - hwcaudit_checkpoint_event_timestamp_seconds;
hwcaudit_checkpoint_lag_seconds stops at its value at push time. README.md
lists every metric.
`

// helpWidth is the most columns a line of help takes, so that it reads on
// a terminal of 100 columns without wrapping.
const helpWidth = 100

func printHelp(w io.Writer) {
	fmt.Fprint(w, usage)
	fmt.Fprint(w, "\nEnvironment:\n")
	for i, v := range variables {
		if i == 0 || v.group != variables[i-1].group {
			fmt.Fprintf(w, "\n%s:\n", groupTitle(v.group))
		}
		head := fmt.Sprintf("  %s  (default: %s)", v.name, orNone(v.shownDefault()))
		if utf8.RuneCountInString(head) > helpWidth {
			// A long list default goes under the name, broken after commas.
			fmt.Fprintf(w, "  %s  (default:\n", v.name)
			for _, l := range wrapList(v.shownDefault(), helpWidth-6) {
				fmt.Fprintf(w, "      %s\n", l)
			}
			fmt.Fprintln(w, "      )")
		} else {
			fmt.Fprintln(w, head)
		}
		writeWrapped(w, v.doc, "      ", helpWidth)
	}
	fmt.Fprintln(w, "\nCredentials (Huawei Cloud SDK conventions):")
	for _, v := range sdkVariables {
		fmt.Fprintf(w, "  %s\n", v.name)
		writeWrapped(w, v.doc, "      ", helpWidth)
	}
	fmt.Fprintln(w, "\nS3 sink and S3 dead letters (AWS SDK default chain, also ~/.aws and AWS_PROFILE):")
	for _, v := range awsVariables {
		fmt.Fprintf(w, "  %s\n", v.name)
		writeWrapped(w, v.doc, "      ", helpWidth)
	}
	fmt.Fprintln(w, "\nSecrets as files:")
	files := make([]string, len(fileVariables))
	for i, name := range fileVariables {
		files[i] = name + "_FILE"
	}
	writeWrapped(w, "Each secret variable may be given instead as NAME_FILE, the path of a file holding "+
		"the value (one trailing newline is removed; setting both is an error): "+strings.Join(files, ", ")+".", "  ", helpWidth)
}

// writeWrapped writes text in lines of at most width columns, each
// starting with indent; only a single word longer than the line exceeds it.
// width 0 or less: no limit.
func writeWrapped(w io.Writer, text, indent string, width int) {
	if width <= 0 {
		// No limit (a file, a pipe): one line.
		fmt.Fprintf(w, "%s%s\n", indent, text)
		return
	}
	for _, l := range wrap(text, width-utf8.RuneCountInString(indent)) {
		fmt.Fprintf(w, "%s%s\n", indent, l)
	}
}

// wrap breaks text at spaces into lines of at most width runes.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// wrapList breaks a comma list into lines of at most width runes, each
// ending after a comma, so that the list reads back by joining the lines.
func wrapList(list string, width int) []string {
	var lines []string
	line := ""
	for i, item := range strings.Split(list, ",") {
		if i > 0 {
			item = "," + item
		}
		if line != "" && utf8.RuneCountInString(line)+utf8.RuneCountInString(item) > width {
			lines = append(lines, line+",")
			item = item[1:]
			line = ""
		}
		line += item
	}
	return append(lines, line)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
