package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/artifact"
	"github.com/hwcaudit/hwcaudit/sources/cts"
	"github.com/hwcaudit/hwcaudit/sources/dbss"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/taurusdb"
)

func TestBackfillFlags(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--from"},
		{[]string{"--from", "yesterday"}, "--from"},
		{[]string{"--from", "2026-11-19T00:00:00Z", "--to", "later"}, "--to"},
		{[]string{"--from", "2026-11-19T00:00:00Z", "--to", "2026-11-18T00:00:00Z"}, "--from"},
		{[]string{"--from", "24h", "--sources", "swr,obs"}, "--sources"}, // cts is a source since CTS traces
		{[]string{"--from", "24h", "extra"}, "extra"},
		{[]string{"--from", "24h", "--progress", "fancy"}, "--progress"},
	} {
		_, err := parseBackfillArgs(tc.args, now, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	br, err := parseBackfillArgs([]string{"--from", "2026-11-19T00:00:00+01:00", "--to", "now", "--sources", "swr,dbss"}, now, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !br.from.Equal(time.Date(2026, 11, 18, 23, 0, 0, 0, time.UTC)) || !br.to.Equal(now) {
		t.Errorf("range %s..%s", br.from, br.to)
	}
	if br.namespace != "backfill/2026-11-18T23:00:00Z_now/" {
		t.Errorf("namespace %q", br.namespace)
	}
	if !slices.Equal(br.sources, []string{"swr", "dbss"}) {
		t.Errorf("sources %q", br.sources)
	}
}

func TestParseShard(t *testing.T) {
	for _, v := range []string{"3/3", "1", "a/2", "0/0", "-1/2", "1/x"} {
		if _, err := parseShard(v); err == nil || !strings.Contains(err.Error(), "HWCAUDIT_SHARD") {
			t.Errorf("%q: got %v, want an error naming HWCAUDIT_SHARD", v, err)
		}
	}
	if s, err := parseShard("2/3"); err != nil || s != (shardSpec{2, 3}) {
		t.Errorf("2/3: %v %v", s, err)
	}
	if s, err := parseShard(""); err != nil || s.count != 0 {
		t.Errorf("empty: %v %v", s, err)
	}
}

func TestPrefixStoreKeepsNamespaces(t *testing.T) {
	ctx := context.Background()
	base, err := checkpoint.NewFileStore(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := base.Save(ctx, "swr/a/pull", []byte(`{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	p := prefixStore{Store: base, prefix: "backfill/x_y/"}
	if cur, err := p.Load(ctx, "swr/a/pull"); err != nil || cur != nil {
		t.Fatalf("backfill sees the run's checkpoint: %s %v", cur, err)
	}
	if err := p.Save(ctx, "swr/a/pull", []byte(`{"id":7}`)); err != nil {
		t.Fatal(err)
	}
	if cur, _ := base.Load(ctx, "swr/a/pull"); string(cur) != `{"id":1}` {
		t.Errorf("run checkpoint changed: %s", cur)
	}
	if cur, _ := base.Load(ctx, "backfill/x_y/swr/a/pull"); string(cur) != `{"id":7}` {
		t.Errorf("backfill checkpoint: %s", cur)
	}
	l, err := p.List(ctx)
	if err != nil || len(l) != 1 || l[0].Stream != "swr/a/pull" {
		t.Errorf("List: %+v %v", l, err)
	}
	if err := p.Delete(ctx, "swr/a/pull"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := base.Load(ctx, "swr/a/pull"); string(cur) != `{"id":1}` {
		t.Errorf("Delete removed the run checkpoint: %s", cur)
	}
}

// backfillRangeOf picks a range in the middle of the simulated records.
func backfillRangeOf(sim *simulator.Server) (from, to time.Time) {
	recs := sim.SWRRecords(testInstances[0], "pull")
	return recs[len(recs)/4].OpTime, recs[len(recs)/2].OpTime
}

// checkRange asserts that out holds exactly the records with op_time in
// [from, to], each exactly once.
func checkRange(t *testing.T, sim *simulator.Server, out output, from, to time.Time) {
	t.Helper()
	want := 0
	for _, ins := range testInstances {
		for _, op := range testOps {
			for _, rec := range sim.SWRRecords(ins, op) {
				k := recKey{ins, rec.ID}
				in := !rec.OpTime.Before(from) && !rec.OpTime.After(to)
				switch n := len(out.docs[k]); {
				case in && n != 1:
					t.Errorf("%s/%s record %d (%s) in range exported %d times", ins, op, rec.ID, rec.OpTime, n)
				case !in && n != 0:
					t.Errorf("%s/%s record %d (%s) outside [%s, %s] exported", ins, op, rec.ID, rec.OpTime, from, to)
				}
				if in {
					want++
				}
			}
		}
	}
	if out.lines != want {
		t.Errorf("%d lines exported, want %d", out.lines, want)
	}
	if want == 0 {
		t.Fatal("the range holds no record; the test proves nothing")
	}
}

func stateFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestBackfillExportsExactlyTheRange(t *testing.T) {
	h := newHarness(t, simConfig(11, 120))
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_FILE_MAX_AGE"] = "0"
	from, to := backfillRangeOf(h.sim)
	args := []string{"backfill", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano)}
	r := h.mustRun(0, args...)
	if !strings.Contains(r.stdout, "complete: every stream exported the whole range") || !strings.Contains(r.stdout, "WRITTEN") {
		t.Errorf("no completeness report:\n%s", r)
	}
	checkRange(t, h.sim, readOutput(t, h.datasetDir(), false), from, to)
	for _, name := range stateFiles(t, h.stateDir()) {
		if !strings.HasPrefix(name, "backfill~") {
			t.Errorf("backfill wrote the checkpoint %s outside its namespace", name)
		}
	}

	// The same command again finds the range done.
	before := readOutput(t, h.datasetDir(), false).lines
	h.mustRun(0, args...)
	if after := readOutput(t, h.datasetDir(), false).lines; after != before {
		t.Errorf("rerunning a finished backfill wrote %d more lines", after-before)
	}

	// The run's cursors were not touched: a run exports everything from
	// HWCAUDIT_START_FROM.
	os.RemoveAll(h.datasetDir())
	h.mustRun(0, "run")
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)

	// The finished backfill is listed as complete, apart from the run's
	// checkpoints, and its checkpoints can then be deleted.
	rng := from.UTC().Format(time.RFC3339Nano) + "_" + to.UTC().Format(time.RFC3339Nano)
	r = h.mustRun(0, "checkpoints", "list")
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(rng) + ` +complete +6 `).MatchString(r.stdout) {
		t.Errorf("list does not show the backfill complete:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "backfill/"+rng+"/swr/") {
		t.Errorf("list shows the backfill's streams among the run's:\n%s", r.stdout)
	}
	r = h.mustRun(0, "checkpoints", "reset", "--backfill", rng)
	if !strings.Contains(r.stdout, "7 checkpoint(s) deleted") { // 6 streams and the status
		t.Errorf("reset --backfill:\n%s", r.stdout)
	}
	for _, name := range stateFiles(t, h.stateDir()) {
		if strings.HasPrefix(name, "backfill~") {
			t.Errorf("reset --backfill left %s", name)
		}
	}
	if marks := readCheckpoints(t, h.stateDir()); len(marks) != len(testInstances)*len(testOps) {
		t.Errorf("reset --backfill touched the run's checkpoints: %v", marks)
	}
}

func TestBackfillResumesAfterFailure(t *testing.T) {
	h := newHarness(t, simConfig(12, 200))
	h.env["HWCAUDIT_SWR_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_FILE_MAX_AGE"] = "0"
	h.env["HWCAUDIT_PARALLEL_STREAMS"] = "1"
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "200ms"
	h.sim.SetFaults(simulator.Faults{Latency: 20 * time.Millisecond})
	from, to := backfillRangeOf(h.sim)
	args := []string{"backfill", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano)}
	p := h.start(args...)
	waitFor(t, 30*time.Second, "some pages served", func() bool { return h.sim.Stats().Pages >= 3 })
	h.sim.SetFaults(simulator.Faults{ServerErrorRate: 1, ServerErrorStatus: 503})
	r := p.wait(t, time.Minute)
	if r.code == 0 || !strings.Contains(r.stdout, "INCOMPLETE") {
		t.Fatalf("a backfill against a failing API must report it did not complete:\n%s", r)
	}
	h.sim.SetFaults(simulator.Faults{})
	r = h.mustRun(0, args...)
	if !strings.Contains(r.stdout, "complete: every stream") {
		t.Errorf("resumed backfill did not complete:\n%s", r)
	}
	checkRange(t, h.sim, readOutput(t, h.datasetDir(), false), from, to)
}

func TestShardingCoversEveryStreamOnce(t *testing.T) {
	h := newHarness(t, simConfig(13, 30))
	h.env["HWCAUDIT_FILE_MAX_AGE"] = "0"
	owner := map[string]int{}
	var keys []string
	for _, ins := range testInstances {
		for _, op := range testOps {
			keys = append(keys, "swr/"+ins+"/"+op)
		}
	}
	for i := range 3 {
		h.env["HWCAUDIT_SHARD"] = []string{"0/3", "1/3", "2/3"}[i]
		h.env["HWCAUDIT_CHECKPOINT_URL"] = "file://" + filepath.Join(h.dir, "state", h.env["HWCAUDIT_SHARD"][:1])
		before := readOutput(t, h.datasetDir(), false)
		h.mustRun(0, "run")
		after := readOutput(t, h.datasetDir(), false)
		marks := readCheckpoints(t, filepath.Join(h.dir, "state", h.env["HWCAUDIT_SHARD"][:1]))
		for k := range marks {
			if prev, dup := owner[k]; dup {
				t.Errorf("stream %s exported by shards %d and %d", k, prev, i)
			}
			owner[k] = i
			if got := int(shardOf(k, 3)); got != i {
				t.Errorf("shard %d exported %s, which hashes to shard %d", i, k, got)
			}
		}
		// Only this shard's streams' records were added.
		for rk, docs := range after.docs {
			if len(before.docs[rk]) == len(docs) {
				continue
			}
			k := "swr/" + rk.instance + "/" + docs[0].Huaweicloud.SWR.Operation
			if owner[k] != i || marks[k] == 0 {
				t.Errorf("shard %d exported a record of %s", i, k)
			}
		}
	}
	for _, k := range keys {
		if _, ok := owner[k]; !ok {
			t.Errorf("no shard exported %s", k)
		}
	}
	checkExported(t, h.sim, readOutput(t, h.datasetDir(), false), exactlyOnce)

	h.env["HWCAUDIT_SHARD"] = "3/3"
	r := h.run("run")
	if r.code != exitUsage || !strings.Contains(r.stderr, "HWCAUDIT_SHARD") {
		t.Errorf("error does not name HWCAUDIT_SHARD:\n%s", r)
	}
}

type fakeReader struct{ pages []pipeline.Page }

func (f *fakeReader) Next(context.Context) (pipeline.Page, error) {
	if len(f.pages) == 0 {
		return pipeline.Page{}, io.EOF
	}
	p := f.pages[0]
	f.pages = f.pages[1:]
	return p, nil
}

// The simulated CodeArts Artifact, TaurusDB and DBSS datasets the
// per-source backfill tests read, all within the last 12 hours.
const (
	testArtifactRepo     = "cn-north-4_5a775fdcb14f4431b6c0015618140bc3_maven_1_108"
	testTaurusDBInstance = "5e2b7c9a1d3f4e6b8a0c2d4f6e8a0b1cin07"
	testDBSSInstance     = "9d1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
)

func otherSourcesConfig(seed int64) simulator.Config {
	start := time.Now().Add(-12 * time.Hour).UTC().Truncate(time.Second)
	return simulator.Config{
		ProjectID:   simulator.DemoProjectID,
		Credentials: []simulator.Credential{{AK: simulator.DemoAK, SK: simulator.DemoSK}},
		Seed:        seed,
		Artifact: simulator.ArtifactConfig{
			TenantID:       simulator.DemoArtifactTenant,
			Repos:          []simulator.ArtifactRepo{{Module: "file", Repo: testArtifactRepo}},
			RecordsPerRepo: 200,
			Start:          start,
			Interval:       20 * time.Second,
		},
		TaurusDB: simulator.TaurusDBConfig{
			Instances: []string{testTaurusDBInstance},
			Files:     200,
			Start:     start,
			Interval:  2 * time.Minute,
		},
		DBSS: simulator.DBSSConfig{
			Instances: []string{testDBSSInstance},
			Records:   400,
			Start:     start,
			Interval:  time.Minute,
		},
		// Recorded when they happen: a backfill's range selects traces by
		// record_time, which the checks here compare with @timestamp.
		CTS: simulator.CTSConfig{Traces: 400, Start: start, Interval: time.Minute, SameSecond: 3},
	}
}

// newOtherSourcesHarness serves otherSourcesConfig and configures the
// exporter to read all four sources (and no SWR instance).
func newOtherSourcesHarness(t *testing.T, seed int64) *harness {
	h := newHarness(t, otherSourcesConfig(seed))
	url := h.env["HWCAUDIT_SWR_ENDPOINT"]
	delete(h.env, "HWCAUDIT_SWR_INSTANCES")
	h.env["HWCAUDIT_ARTIFACT_TENANT_ID"] = simulator.DemoArtifactTenant
	h.env["HWCAUDIT_ARTIFACT_REPOS"] = "file/" + testArtifactRepo
	h.env["HWCAUDIT_ARTIFACT_ENDPOINT"] = url
	h.env["HWCAUDIT_ARTIFACT_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_GAUSSDB_INSTANCES"] = testTaurusDBInstance
	h.env["HWCAUDIT_GAUSSDB_ENDPOINT"] = url
	h.env["HWCAUDIT_GAUSSDB_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_DBSS_INSTANCES"] = testDBSSInstance
	h.env["HWCAUDIT_DBSS_ENDPOINT"] = url
	h.env["HWCAUDIT_DBSS_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_CTS_ENABLED"] = "true"
	h.env["HWCAUDIT_CTS_ENDPOINT"] = url
	h.env["HWCAUDIT_CTS_PAGE_SIZE"] = "20"
	h.env["HWCAUDIT_FILE_MAX_AGE"] = "0"
	return h
}

// sourceRecord is one simulator record as a backfill must deliver it.
type sourceRecord struct {
	eventID string
	time    time.Time // @timestamp
}

// backfillSource is what the per-source backfill tests need to know of one
// source.
type backfillSource struct {
	source  string // --sources
	stream  string // stream key
	dataset string
	records func(sim *simulator.Server) []sourceRecord // oldest first
}

var backfillSources = []backfillSource{
	{
		source: "artifact", stream: "artifact/file/" + testArtifactRepo, dataset: artifact.Dataset,
		records: func(sim *simulator.Server) []sourceRecord {
			var out []sourceRecord
			for _, r := range sim.ArtifactRecords("file", testArtifactRepo) {
				out = append(out, sourceRecord{ecsdoc.ID("artifact", simulator.DemoArtifactTenant, "file", testArtifactRepo, r.ID), r.Time})
			}
			return out
		},
	},
	{
		source: "taurusdb", stream: "taurusdb/" + testTaurusDBInstance, dataset: taurusdb.Dataset,
		records: func(sim *simulator.Server) []sourceRecord {
			var out []sourceRecord
			for _, r := range sim.TaurusDBRecords(testTaurusDBInstance) {
				if r.Malformed == "" {
					out = append(out, sourceRecord{ecsdoc.ID("taurusdb", testTaurusDBInstance, r.ID), r.EndTime})
				}
			}
			return out
		},
	},
	{
		source: "dbss", stream: "dbss/" + testDBSSInstance, dataset: dbss.Dataset,
		records: func(sim *simulator.Server) []sourceRecord {
			var out []sourceRecord
			for _, r := range sim.DBSSRecords(testDBSSInstance) {
				if r.Malformed == "" {
					out = append(out, sourceRecord{ecsdoc.ID("dbss", testDBSSInstance, r.ID), r.Time})
				}
			}
			return out
		},
	},
	{
		source: "cts", stream: "cts/" + simulator.DemoProjectID + "/system", dataset: cts.Dataset,
		records: func(sim *simulator.Server) []sourceRecord {
			var out []sourceRecord
			for _, r := range sim.CTSTraces("system") {
				if r.Malformed == "" {
					out = append(out, sourceRecord{r.TraceID, r.Time})
				}
			}
			return out
		},
	},
}

// readEvents returns how often each event.id is in the published NDJSON
// files of dir, and each one's @timestamp.
func readEvents(t *testing.T, dir string) (count map[string]int, ts map[string]time.Time) {
	t.Helper()
	count, ts = map[string]int{}, map[string]time.Time{}
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			var d struct {
				Timestamp time.Time `json:"@timestamp"`
				Event     struct{ ID string }
			}
			if err := json.Unmarshal(ln, &d); err != nil || d.Event.ID == "" {
				t.Fatalf("%s: not an event: %.200q (%v)", f, ln, err)
			}
			count[d.Event.ID]++
			ts[d.Event.ID] = d.Timestamp
		}
	}
	return count, ts
}

// checkSourceRange asserts that dir holds exactly the records of recs with
// a time in [from, to], each once, and returns how many that is.
func checkSourceRange(t *testing.T, dir string, recs []sourceRecord, from, to time.Time) int {
	t.Helper()
	count, ts := readEvents(t, dir)
	want := map[string]bool{}
	for _, r := range recs {
		in := !r.time.Before(from) && !r.time.After(to)
		switch n := count[r.eventID]; {
		case in && n != 1:
			t.Errorf("record %s (%s) in range exported %d times", r.eventID, r.time, n)
		case !in && n != 0:
			t.Errorf("record %s (%s) outside [%s, %s] exported", r.eventID, r.time, from, to)
		}
		if in {
			want[r.eventID] = true
			if !ts[r.eventID].Equal(r.time) {
				t.Errorf("record %s: @timestamp %s, want %s", r.eventID, ts[r.eventID], r.time)
			}
		}
	}
	for id := range count {
		if !slices.ContainsFunc(recs, func(r sourceRecord) bool { return r.eventID == id }) {
			t.Errorf("event %s is no record of the simulator", id)
		}
	}
	if len(want) == 0 {
		t.Fatal("the range holds no record; the test proves nothing")
	}
	return len(want)
}

// reportRow returns the columns of stream's row in a backfill report, by
// header name.
func reportRow(t *testing.T, report, stream string) map[string]string {
	t.Helper()
	var header []string
	for _, ln := range strings.Split(report, "\n") {
		f := strings.Fields(ln)
		if len(f) > 0 && f[0] == "STREAM" {
			header = f
			continue
		}
		if header != nil && len(f) >= len(header) && f[0] == stream {
			row := map[string]string{}
			for i, h := range header {
				row[h] = f[i]
			}
			// COMPLETE may carry a note: "yes (DISCREPANCY)".
			row["COMPLETE"] = strings.Join(f[len(header)-1:], " ")
			return row
		}
	}
	t.Fatalf("no report row for %s in\n%s", stream, report)
	return nil
}

// checkReportRow asserts a completed stream's row: written are the
// records of the range, fetched adds those read outside it (excluded:
// readers see a little past each end), nothing dead-lettered, the API's
// total agrees with fetched when the source gives one.
func checkReportRow(t *testing.T, r result, stream string, records int) {
	t.Helper()
	row := reportRow(t, r.stdout, stream)
	n := strconv.Itoa(records)
	excluded, _ := strconv.Atoi(row["EXCL"])
	fetched := strconv.Itoa(records + excluded)
	if row["STATUS"] != "done" || row["FETCHED"] != fetched || row["WRITTEN"] != n || row["DEAD"] != "0" || row["COMPLETE"] != "yes" {
		t.Errorf("report row %v, want done, %s written and %s fetched, complete\n%s", row, n, fetched, r.stdout)
	}
	if row["API"] != fetched {
		t.Errorf("API %s, want %s\n%s", row["API"], fetched, r.stdout)
	}
	if _, err := strconv.Atoi(row["REPEATS"]); err != nil {
		t.Errorf("REPEATS %q", row["REPEATS"])
	}
	// The same in the JSON log line.
	var found bool
	for _, ln := range strings.Split(r.stderr, "\n") {
		var l struct {
			Msg       string `json:"msg"`
			Stream    string `json:"stream"`
			Fetched   int    `json:"fetched"`
			APITotal  *int   `json:"api_total"`
			Written   map[string]int
			Complete  bool `json:"complete"`
			Duplicate *int `json:"duplicates_skipped"`
			Before    int  `json:"excluded_before_start"`
			After     int  `json:"excluded_after_end"`
		}
		if json.Unmarshal([]byte(ln), &l) != nil || l.Msg != "backfill stream report" || l.Stream != stream {
			continue
		}
		found = true
		if l.Fetched != records+l.Before+l.After || l.Before+l.After != excluded || l.Written["file"] != records || !l.Complete ||
			l.Duplicate == nil || l.APITotal == nil || *l.APITotal != l.Fetched {
			t.Errorf("report log line %s", ln)
		}
	}
	if !found {
		t.Errorf("no backfill stream report logged for %s:\n%s", stream, r.stderr)
	}
}

// Each source's backfill writes exactly the records of the range, says so
// in its report, and a second run finds nothing left to do.
func TestBackfillEachSourceExportsExactlyTheRange(t *testing.T) {
	for _, src := range backfillSources {
		t.Run(src.source, func(t *testing.T) {
			t.Parallel()
			h := newOtherSourcesHarness(t, 21)
			recs := src.records(h.sim)
			from, to := recs[len(recs)/4].time, recs[len(recs)/2].time
			args := []string{"backfill", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--sources", src.source}
			r := h.mustRun(exitOK, args...)
			dir := filepath.Join(h.dir, "out", src.dataset)
			n := checkSourceRange(t, dir, recs, from, to)
			checkReportRow(t, r, src.stream, n)
			if !strings.Contains(r.stdout, "complete: every stream exported the whole range") {
				t.Errorf("no completion line:\n%s", r.stdout)
			}
			// --sources left the other sources alone.
			for _, other := range backfillSources {
				if other.source != src.source {
					if _, err := os.Stat(filepath.Join(h.dir, "out", other.dataset)); err == nil {
						t.Errorf("--sources %s also exported %s", src.source, other.source)
					}
				}
			}

			// Again: the range is done.
			r = h.mustRun(exitOK, args...)
			// Readers may look at a page past the end again: nothing of it
			// is written.
			if row := reportRow(t, r.stdout, src.stream); row["FETCHED"] != row["EXCL"] || row["WRITTEN"] != "0" || row["COMPLETE"] != "yes" {
				t.Errorf("rerun: %v\n%s", row, r.stdout)
			}
			checkSourceRange(t, dir, recs, from, to)
		})
	}
}

// A window source's backfill that fails half-way reports the stream
// incomplete and exits 1; the same command then resumes it, and the range
// ends up exported exactly once.
func TestBackfillWindowSourceResumesAfterFailure(t *testing.T) {
	t.Parallel()
	h := newOtherSourcesHarness(t, 22)
	h.env["HWCAUDIT_WINDOW_MAX_RECORDS"] = "100" // several windows, several checkpoints
	h.env["HWCAUDIT_PARALLEL_STREAMS"] = "1"
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "200ms"
	src := backfillSources[2]
	recs := src.records(h.sim)
	from, to := recs[len(recs)/8].time, recs[7*len(recs)/8].time
	args := []string{"backfill", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--sources", "dbss"}

	h.sim.SetFaults(simulator.Faults{Latency: 20 * time.Millisecond})
	p := h.start(args...)
	waitFor(t, 30*time.Second, "a checkpoint saved", func() bool {
		names, _ := filepath.Glob(filepath.Join(h.stateDir(), "backfill~*dbss*.json"))
		return len(names) > 0 || p.exited()
	})
	h.sim.SetFaults(simulator.Faults{ServerErrorRate: 1, ServerErrorStatus: 503})
	r := p.wait(t, time.Minute)
	if r.code != exitFailed || !strings.Contains(r.stdout, "INCOMPLETE") {
		t.Fatalf("a backfill against a failing API must exit 1 and report it did not complete:\n%s", r)
	}
	if row := reportRow(t, r.stdout, src.stream); row["STATUS"] != "failed" || !strings.HasPrefix(row["COMPLETE"], "NO") {
		t.Errorf("failed stream's row: %v\n%s", row, r.stdout)
	}
	checkJSONLogs(t, r.stderr)
	partial, _ := readEvents(t, filepath.Join(h.dir, "out", src.dataset))

	h.sim.SetFaults(simulator.Faults{})
	r = h.mustRun(exitOK, args...)
	n := checkSourceRange(t, filepath.Join(h.dir, "out", src.dataset), recs, from, to)
	row := reportRow(t, r.stdout, src.stream)
	if row["COMPLETE"] != "yes" || row["FETCHED"] != strconv.Itoa(n-len(partial)) {
		t.Errorf("resumed run: %v, want %d fetched (%d of %d were delivered before the failure)\n%s", row, n-len(partial), len(partial), n, r.stdout)
	}
	if len(partial) == 0 {
		t.Errorf("the first run delivered nothing before it failed (a checkpoint was saved): nothing was resumed")
	}
}

func testBackfillConfig(sinks ...string) *Config {
	return &Config{
		Sinks: sinks,
		backfill: &backfillRange{
			from:      time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
			to:        time.Date(2026, 10, 8, 0, 0, 0, 0, time.UTC),
			namespace: "backfill/2026-10-01T00:00:00Z_2026-10-08T00:00:00Z/",
		},
	}
}

// The report has the API's total ("-" when unknown) and the duplicates
// skipped; a stream whose fetched records differ from the API's total is
// flagged, without changing the exit code.
func TestBackfillReportColumns(t *testing.T) {
	cfg := testBackfillConfig("file", "kafka")
	sum := &pipeline.Summary{Streams: []pipeline.StreamResult{
		{Stream: "swr/a/pull", Status: pipeline.StatusDone, Fetched: 120, APITotal: 120, Duplicates: 3, Delivered: 120, Written: map[string]int64{"file": 120, "kafka": 120}},
		{Stream: "dbss/b", Status: pipeline.StatusDone, Fetched: 40, Delivered: 38, Written: map[string]int64{"file": 38, "kafka": 38}, DeadLettered: 2},
		{Stream: "taurusdb/c", Status: pipeline.StatusDone, Fetched: 9, APITotal: 11, Delivered: 7, Excluded: pipeline.Excluded{AfterEnd: 2}, Written: map[string]int64{"file": 7, "kafka": 7}},
	}}
	var buf bytes.Buffer
	printBackfillReport(&buf, cfg, sum, 0)
	out := buf.String()
	for stream, want := range map[string]map[string]string{
		"swr/a/pull": {"FETCHED": "120", "API": "120", "WRITTEN:FILE": "120", "WRITTEN:KAFKA": "120", "DEAD": "0", "REPEATS": "3", "COMPLETE": "yes"},
		"dbss/b":     {"FETCHED": "40", "API": "-", "WRITTEN:FILE": "38", "DEAD": "2", "REPEATS": "0", "COMPLETE": "yes"},
		"taurusdb/c": {"FETCHED": "9", "API": "11", "COMPLETE": "yes (DISCREPANCY)"},
	} {
		row := reportRow(t, out, stream)
		for col, v := range want {
			if row[col] != v {
				t.Errorf("%s %s: %q, want %q\n%s", stream, col, row[col], v, out)
			}
		}
	}
	for _, want := range []string{
		"taurusdb/c: DISCREPANCY: fetched 9 records, the API counted 11 in the range read",
		"WARNING: 1 stream(s) fetched a different number of records than the API counted",
		"complete: every stream exported the whole range",
		"3 duplicates skipped",
		"the exit code is non-zero only when a stream did not complete",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if code := exitCode(sum); code != exitOK {
		t.Errorf("a discrepancy changed the exit code to %d", code)
	}

	var logs bytes.Buffer
	logBackfillReport(slog.New(slog.NewJSONHandler(&logs, nil)), cfg, sum)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a log line per stream:\n%s", logs.String())
	}
	var l struct {
		Level       string           `json:"level"`
		Stream      string           `json:"stream"`
		APITotal    *int64           `json:"api_total"`
		Written     map[string]int64 `json:"written"`
		Duplicates  int64            `json:"duplicates_skipped"`
		Discrepancy bool             `json:"discrepancy"`
	}
	for i, want := range []struct {
		level    string
		apiTotal int64 // 0: absent
		dups     int64
		disc     bool
	}{{"INFO", 120, 3, false}, {"INFO", 0, 0, false}, {"WARN", 11, 0, true}} {
		l.APITotal = nil
		if err := json.Unmarshal([]byte(lines[i]), &l); err != nil {
			t.Fatal(err)
		}
		if l.Level != want.level || (l.APITotal == nil) != (want.apiTotal == 0) || (l.APITotal != nil && *l.APITotal != want.apiTotal) ||
			l.Duplicates != want.dups || l.Discrepancy != want.disc || l.Written["kafka"] == 0 {
			t.Errorf("log line %d: %s", i, lines[i])
		}
	}

	// An incomplete stream does change it.
	sum.Streams[1].Status, sum.Streams[1].Err = pipeline.StatusFailed, io.ErrUnexpectedEOF
	buf.Reset()
	printBackfillReport(&buf, cfg, sum, 0)
	if row := reportRow(t, buf.String(), "dbss/b"); row["COMPLETE"] != "NO" || !strings.Contains(buf.String(), "INCOMPLETE: 1 stream(s)") {
		t.Errorf("failed stream:\n%s", buf.String())
	}
	if code := exitCode(sum); code != exitFailed {
		t.Errorf("exit code %d, want %d", code, exitFailed)
	}
}

// checkpoints list groups backfills with their state; reset --backfill
// deletes a complete one's checkpoints (an incomplete one's only with
// --force) under its run lock; prune deletes every complete one.
func TestCheckpointsBackfillGroups(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := checkpoint.Config{URL: "file://" + dir}
	store, err := checkpoint.Open(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	scoped := func(scope string) (checkpoint.Store, error) {
		c := cfg
		c.LockScope = scope
		return checkpoint.Open(c, "test")
	}
	save := func(key, cursor string) {
		t.Helper()
		if err := store.Save(ctx, key, []byte(cursor)); err != nil {
			t.Fatal(err)
		}
	}
	const done, half, none = "2026-10-01T00:00:00Z_2026-10-08T00:00:00Z", "72h_now", "2026-09-01T00:00:00Z_2026-09-02T00:00:00Z"
	save("swr/a/pull", `{"id":1}`)
	save("backfill/"+done+"/swr/a/pull", `{"id":7}`)
	save("backfill/"+done+"/dbss/x", `{"through":"2026-10-08T00:00:00Z"}`)
	save("backfill/"+done+"/status-shard-0-of-2", `{"done":["swr/a/pull"],"incomplete":[]}`)
	save("backfill/"+done+"/status-shard-1-of-2", `{"done":["dbss/x"],"incomplete":[]}`)
	save("backfill/"+half+"/dbss/x", `{"through":"2026-10-08T00:00:00Z"}`)
	save("backfill/"+half+"/status", `{"done":["dbss/x"],"incomplete":["taurusdb/y"]}`)
	save("backfill/"+none+"/swr/a/pull", `{"id":3}`)

	run := func(args ...string) (string, error) {
		t.Helper()
		op, ok := parseCheckpointsArgs(args)
		if !ok {
			t.Fatalf("%q: usage error", args)
		}
		var out bytes.Buffer
		err := checkpointsCmd(ctx, store, scoped, op, &out)
		return out.String(), err
	}
	out, err := run("list")
	if err != nil {
		t.Fatal(err)
	}
	runPart, bfPart, _ := strings.Cut(out, "\nBACKFILL")
	if strings.Count(runPart, "\n") != 2 || !strings.Contains(runPart, "swr/a/pull") {
		t.Errorf("the run's table holds more than its one checkpoint:\n%s", out)
	}
	bfPart = strings.Join(strings.Fields(bfPart), " ")
	for _, want := range []string{
		done + " complete 2 ",
		half + " incomplete (1 stream(s) to resume) 1 ",
		none + " incomplete (no run finished) 1 ",
	} {
		if !strings.Contains(bfPart, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	out, err = run("list", "--backfill", "backfill/"+done+"/")
	if err != nil || !strings.Contains(out, "backfill/"+done+"/dbss/x") || strings.Contains(out, "status-shard") || !strings.HasPrefix(out, "backfill "+done+": complete") {
		t.Errorf("list --backfill: %v\n%s", err, out)
	}

	if _, err := run("reset", "--backfill", half); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("reset of an incomplete backfill: %v", err)
	}
	other, err := scoped("backfill/" + done)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := other.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run("reset", "--backfill", done); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Errorf("reset while the backfill holds its lock: %v", err)
	}
	unlock()
	if out, err := run("reset", "--backfill", done); err != nil || !strings.Contains(out, "4 checkpoint(s) deleted") {
		t.Errorf("reset --backfill: %v\n%s", err, out)
	}
	if out, err := run("prune"); err != nil || !strings.Contains(out, "0 complete backfill(s) pruned") || !strings.Contains(out, half+" kept") {
		t.Errorf("prune: %v\n%s", err, out)
	}
	if _, err := run("reset", "--backfill", half, "--force"); err != nil {
		t.Errorf("reset --force: %v", err)
	}
	save("backfill/"+none+"/status", `{"done":["swr/a/pull"],"incomplete":[]}`)
	if out, err := run("prune"); err != nil || !strings.Contains(out, "1 complete backfill(s) pruned") {
		t.Errorf("prune: %v\n%s", err, out)
	}
	cps, err := store.List(ctx)
	if err != nil || len(cps) != 1 || cps[0].Stream != "swr/a/pull" {
		t.Errorf("left: %+v %v", cps, err)
	}
	if _, err := run("reset", "--backfill", done); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("reset of a gone backfill: %v", err)
	}

	for _, bad := range [][]string{{"list", "extra"}, {"reset"}, {"reset", "--backfill"}, {"reset", "--force"}, {"prune", "x"}, {"reset", "--backfill", "a/b"}, {"show", "--backfill"}} {
		if _, ok := parseCheckpointsArgs(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestBackfillReportFitsTheTerminal: on a terminal of 80 or 100 columns
// every line of a backfill report fits, the stream keys losing their
// middle; without a width (a file, a pipe) the keys stay whole.
func TestBackfillReportFitsTheTerminal(t *testing.T) {
	cfg := testBackfillConfig("file")
	long := "dbss/9d1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a/sql"
	sum := &pipeline.Summary{Streams: []pipeline.StreamResult{
		{Stream: "swr/7f3c2a10-5b8e-4d21-9c4f-0e6a1b2c3d4e/create", Status: pipeline.StatusDone, Fetched: 3000, APITotal: 3000, Delivered: 3000, Written: map[string]int64{"file": 3000}},
		{Stream: long, Status: pipeline.StatusDone, Fetched: 6000, APITotal: 6100, Delivered: 6000, Written: map[string]int64{"file": 6000}},
	}}
	for _, width := range []int{80, 100} {
		var buf bytes.Buffer
		printBackfillReport(&buf, cfg, sum, width)
		for i, ln := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
			if n := utf8.RuneCountInString(ln); n > width {
				t.Errorf("width %d: line %d has %d columns: %s", width, i+1, n, ln)
			}
		}
		if !strings.Contains(buf.String(), "dbss/") || !strings.Contains(buf.String(), "/sql ") {
			t.Errorf("width %d: the shortened key lost its source or its last part:\n%s", width, buf.String())
		}
	}
	var buf bytes.Buffer
	printBackfillReport(&buf, cfg, sum, 0)
	if row := reportRow(t, buf.String(), long); row["API"] != "6100" || row["COMPLETE"] != "yes (DISCREPANCY)" {
		t.Errorf("no width: row %v\n%s", row, buf.String())
	}
}
