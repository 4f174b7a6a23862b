package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/sinks/kafkasink/kafkatest"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
	"github.com/hwcaudit/hwcaudit/sources/artifact"
	"github.com/hwcaudit/hwcaudit/sources/dbss"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
	"github.com/hwcaudit/hwcaudit/sources/swr"
	"github.com/hwcaudit/hwcaudit/sources/taurusdb"
)

// The fault suite: the real binary against the simulator in hostile mode
// (simulator.Hostile) over all four sources at once, killed with SIGKILL
// at random moments, its sinks taken away mid-run, two runs started at
// once. Every test compares what was stored with the simulator's own
// record lists, at least once: duplicates are allowed, loss is not.

// envKillSeed overrides the seed of TestHostileKillAndResume's kill
// moments, to replay a failure; the seed in use is always logged.
const envKillSeed = "HWCAUDIT_TEST_KILL_SEED"

// The simulated CodeArts Artifact repositories, TaurusDB and DBSS
// instances of the fault suite (SWR uses testInstances).
var (
	hostileRepos = []simulator.ArtifactRepo{
		{Module: "file", Repo: "cn-north-4_hostile_maven_1_7"},
		{Module: "repository", Repo: "cn-north-4_hostile_npm_1_8"},
	}
	hostileTaurus = "3f2b7c9a1d3f4e6b8a0c2d4f6e8a0b1cin07"
	hostileDBSS   = "6c1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
)

// hostileSim is the four-source dataset in hostile mode, 12 hours old
// (inside the default start window, long settled), scaled by n.
func hostileSim(seed int64, n int) simulator.Config {
	cfg := simConfig(seed, n)
	start := cfg.SWR.Start
	cfg.Artifact = simulator.ArtifactConfig{TenantID: simulator.DemoArtifactTenant, Repos: hostileRepos, RecordsPerRepo: n * 3 / 2, Start: start}
	cfg.TaurusDB = simulator.TaurusDBConfig{Instances: []string{hostileTaurus}, Files: n, Start: start}
	cfg.DBSS = simulator.DBSSConfig{Instances: []string{hostileDBSS}, Records: 2 * n, Start: start}
	return simulator.Hostile(cfg)
}

// hostileLite is HostileFaults at rates that keep a run steady enough to
// cut its sink off in the middle: no slow pages, less throttling.
func hostileLite() simulator.Faults {
	f := simulator.HostileFaults()
	f.ThrottleRate, f.ServerErrorRate = 0.04, 0.02
	f.SlowPageEvery = 0
	return f
}

// withoutDrift is f with no more records inserted while paging, for the
// last run that collects what the drift of the runs before inserted.
// Malformed and odd records stay as they were served.
func withoutDrift(f simulator.Faults) simulator.Faults {
	f.DriftPerPage = 0
	return f
}

// useAllSources points every source at the harness's simulator, with
// small pages so that same-second runs straddle page edges.
func useAllSources(h *harness) {
	url := h.env["HWCAUDIT_SWR_ENDPOINT"]
	var repos []string
	for _, r := range hostileRepos {
		repos = append(repos, r.Module+"/"+r.Repo)
	}
	for k, v := range map[string]string{
		"HWCAUDIT_SWR_PAGE_SIZE":      "20",
		"HWCAUDIT_ARTIFACT_TENANT_ID": simulator.DemoArtifactTenant,
		"HWCAUDIT_ARTIFACT_REPOS":     strings.Join(repos, ","),
		"HWCAUDIT_ARTIFACT_ENDPOINT":  url,
		"HWCAUDIT_ARTIFACT_PAGE_SIZE": "20",
		"HWCAUDIT_GAUSSDB_INSTANCES":  hostileTaurus,
		"HWCAUDIT_GAUSSDB_ENDPOINT":   url,
		"HWCAUDIT_GAUSSDB_PAGE_SIZE":  "10",
		// The simulator's files span minutes; a day of look-back would
		// list every file again for each of the small windows.
		"HWCAUDIT_GAUSSDB_LOOKBACK":   "1h",
		"HWCAUDIT_DBSS_INSTANCES":     hostileDBSS,
		"HWCAUDIT_DBSS_ENDPOINT":      url,
		"HWCAUDIT_DBSS_PAGE_SIZE":     "10",
		"HWCAUDIT_WINDOW_MAX_RECORDS": "100",
		"HWCAUDIT_BATCH_SIZE":         "7",
		"HWCAUDIT_FILE_MAX_BYTES":     "65536",
		// Honour Retry-After (1s) at most briefly: the point is that it
		// is read, not that the test waits.
		"HWCAUDIT_RETRY_MAX": "100ms",
	} {
		h.env[k] = v
	}
	// The concurrency of in-stream page fetching is whatever the
	// environment running the tests says, or the default.
	if c := os.Getenv("HWCAUDIT_CONCURRENCY"); c != "" {
		h.env["HWCAUDIT_CONCURRENCY"] = c
	}
}

// wantRec is one simulator record as the exporter must deliver it.
type wantRec struct {
	stream    string
	id        string    // event.id; "" for a malformed record
	ts        time.Time // @timestamp
	raw       string    // the bytes served, event.original or the dead letter's original
	malformed string    // "" or the kind
	odd       string
	key       string    // the audit id (SWR, Artifact) as the cursor compares it
	second    time.Time // the time the window cursor compares (TaurusDB, DBSS)
	sourceID  string    // the id the window cursor's seen_ids hold
}

// hostileRecords lists every record the simulator serves now under its
// current faults, in all four sources.
func hostileRecords(sim *simulator.Server) []wantRec {
	var out []wantRec
	for _, ins := range testInstances {
		for _, op := range testOps {
			for _, r := range sim.SWRRecords(ins, op) {
				w := wantRec{stream: "swr/" + ins + "/" + op, ts: r.OpTime, raw: r.Raw, malformed: r.Malformed, odd: r.Odd, key: strconv.FormatInt(r.ID, 10)}
				if r.Malformed == "" {
					w.id = ecsdoc.ID("swr", ins, strconv.FormatInt(r.ID, 10))
				}
				out = append(out, w)
			}
		}
	}
	for _, repo := range hostileRepos {
		for _, r := range sim.ArtifactRecords(repo.Module, repo.Repo) {
			w := wantRec{stream: "artifact/" + repo.Module + "/" + repo.Repo, ts: r.Time.UTC(), raw: r.Raw, malformed: r.Malformed, odd: r.Odd, key: r.ID}
			if r.Malformed == "" {
				w.id = ecsdoc.ID("artifact", simulator.DemoArtifactTenant, repo.Module, repo.Repo, r.ID)
			}
			out = append(out, w)
		}
	}
	for _, r := range sim.TaurusDBRecords(hostileTaurus) {
		w := wantRec{stream: "taurusdb/" + hostileTaurus, ts: r.EndTime, raw: r.Raw, malformed: r.Malformed, odd: r.Odd, second: r.EndTime, sourceID: r.ID}
		if r.Malformed == "" {
			w.id = ecsdoc.ID("taurusdb", hostileTaurus, r.ID)
		}
		out = append(out, w)
	}
	for _, r := range sim.DBSSRecords(hostileDBSS) {
		w := wantRec{stream: "dbss/" + hostileDBSS, ts: r.Time, raw: r.Raw, malformed: r.Malformed, odd: r.Odd, second: r.Time, sourceID: r.ID}
		if r.Malformed == "" {
			w.id = ecsdoc.ID("dbss", hostileDBSS, r.ID)
		}
		out = append(out, w)
	}
	return out
}

var hostileDatasets = []string{swr.Dataset, artifact.Dataset, taurusdb.Dataset, dbss.Dataset}

// anyDoc is what the fault suite reads of a stored event.
type anyDoc struct {
	where string
	line  []byte

	Timestamp string `json:"@timestamp"`
	Event     struct {
		ID       string `json:"id"`
		Dataset  string `json:"dataset"`
		Original string `json:"original"`
	} `json:"event"`
}

// stored is every event a sink holds, by event.id.
type stored map[string][]anyDoc

// add parses NDJSON data from where; a line that is not one JSON document
// fails the test (a torn line).
func (s stored) add(t *testing.T, where string, data []byte) {
	t.Helper()
	if len(data) == 0 {
		return
	}
	for n, ln := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		d := anyDoc{where: where, line: ln}
		if err := json.Unmarshal(ln, &d); err != nil || d.Event.ID == "" {
			t.Errorf("%s line %d is not an event (torn?): %v: %.200q", where, n+1, err, ln)
			continue
		}
		s[d.Event.ID] = append(s[d.Event.ID], d)
	}
}

// readFileSink reads every dataset directory under root. Published files
// must end with a newline and hold only complete documents; with
// inProgress the complete lines of hidden in-progress files count too
// (they are durable; the next start publishes them). It returns the
// in-progress files it found.
func readFileSink(t *testing.T, root string, inProgress bool) (stored, []string) {
	t.Helper()
	s := stored{}
	var leftover []string
	for _, ds := range hostileDatasets {
		dir := filepath.Join(root, ds)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			hidden := strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".inprogress")
			switch {
			case strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".inprogress.new"):
				// Created and not yet locked and named: it holds nothing.
				continue
			case hidden:
				leftover = append(leftover, filepath.Join(ds, name))
				if !inProgress {
					continue
				}
			case !strings.HasSuffix(name, ".ndjson"):
				t.Errorf("unexpected file %s in %s", name, dir)
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if hidden {
				data = data[:bytes.LastIndexByte(data, '\n')+1]
			} else if len(data) == 0 || data[len(data)-1] != '\n' {
				t.Errorf("published file %s/%s is empty or ends in a torn line", ds, name)
			}
			s.add(t, filepath.Join(ds, name), data)
		}
	}
	return s, leftover
}

// readDeadLetters returns the dead letters in dir by original, and the
// in-progress files found; with inProgress their complete lines count.
func readDeadLetters(t *testing.T, dir string, inProgress bool) (map[string][]deadLetter, []string) {
	t.Helper()
	letters := map[string][]deadLetter{}
	var leftover []string
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return letters, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		hidden := strings.HasSuffix(name, ".inprogress")
		if hidden {
			leftover = append(leftover, name)
			if !inProgress {
				continue
			}
		} else if !strings.HasSuffix(name, ".ndjson") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if hidden {
			data = data[:bytes.LastIndexByte(data, '\n')+1]
		} else if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Errorf("published dead-letter file %s is empty or ends in a torn line", name)
		}
		if len(data) == 0 {
			continue
		}
		for _, ln := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			var dl deadLetter
			if err := json.Unmarshal(ln, &dl); err != nil || dl.Original == nil {
				t.Errorf("dead letter in %s is not JSON with an original (%v): %.200q", name, err, ln)
				continue
			}
			letters[*dl.Original] = append(letters[*dl.Original], dl)
		}
	}
	return letters, leftover
}

// checkDelivered asserts at-least-once delivery of every simulator record
// in want: each well-formed record is in got with its deterministic
// event.id, its time as a UTC @timestamp, its bytes as event.original, and
// copies that agree on everything but event.ingested; distinct records
// have distinct ids; got holds nothing else. With letters, every
// malformed record is dead-lettered with a reason, and no well-formed one
// is.
func checkDelivered(t *testing.T, want []wantRec, got stored, letters map[string][]deadLetter) {
	t.Helper()
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ids := map[string]bool{}
	good, bad, odd := 0, 0, 0
	for _, w := range want {
		if w.malformed != "" {
			bad++
			if letters == nil {
				continue
			}
			dls := letters[w.raw]
			if len(dls) == 0 {
				report("%s: malformed record (%s) not dead-lettered: %.150s", w.stream, w.malformed, w.raw)
			}
			for _, dl := range dls {
				// Map refuses what it cannot map; the reader refuses, before
				// Map, a record whose id or time paging cannot trust.
				if strings.TrimSpace(dl.Reason) == "" || dl.Stream != w.stream || (dl.Stage != "map" && dl.Stage != "read") {
					report("%s: dead letter of a malformed record (%s): stream %q stage %q reason %q", w.stream, w.malformed, dl.Stream, dl.Stage, dl.Reason)
				}
			}
			continue
		}
		good++
		if w.odd != "" {
			odd++
		}
		if ids[w.id] {
			report("%s: two records share event.id %s", w.stream, w.id)
		}
		ids[w.id] = true
		if letters != nil && len(letters[w.raw]) > 0 {
			report("%s: a valid record (odd: %q) was dead-lettered: %s: %.150s", w.stream, w.odd, letters[w.raw][0].Reason, w.raw)
		}
		docs := got[w.id]
		if len(docs) == 0 {
			report("%s: missing record %s (odd: %q, %s)", w.stream, w.key+w.sourceID, w.odd, w.ts.Format(time.RFC3339Nano))
			continue
		}
		for _, d := range docs {
			ts, err := time.Parse(time.RFC3339Nano, d.Timestamp)
			if err != nil || !ts.Equal(w.ts) || !strings.HasSuffix(d.Timestamp, "Z") {
				report("%s record %s: @timestamp %q, want %s in UTC", w.stream, w.id, d.Timestamp, w.ts.UTC().Format(time.RFC3339Nano))
			}
			if d.Event.Original != w.raw {
				report("%s record %s (odd: %q): event.original\n got %.300s\nwant %.300s", w.stream, w.id, w.odd, d.Event.Original, w.raw)
			}
		}
		for _, d := range docs[1:] {
			if a, b := withoutIngested(t, docs[0].line), withoutIngested(t, d.line); a != b {
				report("%s record %s: copies differ beyond event.ingested:\n%.300s\n%.300s", w.stream, w.id, a, b)
			}
		}
	}
	copies := 0
	for id, docs := range got {
		copies += len(docs)
		if !ids[id] {
			report("unexpected event %s (%d copies, in %s) is no well-formed simulator record", id, len(docs), docs[0].where)
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Errorf("%d problem(s) with %d records (%d malformed); first %d:\n%s",
			len(problems), len(want), bad, min(len(problems), 20), strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
	t.Logf("%d well-formed records (%d odd) stored as %d events (%d replayed copies); %d malformed", good, odd, copies, copies-good, bad)
	if bad == 0 || odd == 0 {
		t.Errorf("hostile mode served %d malformed and %d odd records; want both", bad, odd)
	}
}

// cursorFields are the members of every source's cursor the suite
// compares: the SWR and Artifact high-water id and skip, the window
// sources' through and seen_ids.
type cursorFields struct {
	ID      json.RawMessage `json:"id"`
	Skip    int             `json:"skip"`
	Through *time.Time      `json:"through"`
	SeenIDs []string        `json:"seen_ids"`
}

// compareDigits orders two non-negative decimal numbers of any length.
func compareDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// backwards reports how cur is behind prev, or "" when it is not.
func backwards(prev, cur json.RawMessage) string {
	var p, c cursorFields
	if err := json.Unmarshal(prev, &p); err != nil {
		return "previous cursor unreadable: " + err.Error()
	}
	if err := json.Unmarshal(cur, &c); err != nil {
		return "cursor unreadable: " + err.Error()
	}
	if p.Through != nil || c.Through != nil {
		switch {
		case p.Through == nil || c.Through == nil:
			return "cursor changed kind"
		case c.Through.Before(*p.Through):
			return "through moved back"
		case c.Through.Equal(*p.Through):
			for _, id := range p.SeenIDs {
				if !slices.Contains(c.SeenIDs, id) {
					return "through unchanged but seen id " + id + " forgotten"
				}
			}
		}
		return ""
	}
	pid, cid := strings.Trim(string(p.ID), `"`), strings.Trim(string(c.ID), `"`)
	switch d := compareDigits(cid, pid); {
	case d < 0:
		return "id moved back"
	case d == 0 && c.Skip < p.Skip:
		return "id unchanged but skip went down"
	}
	return ""
}

// cursorWatch remembers the last cursor of every stream and fails the
// test when one moves backwards or disappears.
type cursorWatch struct {
	t    *testing.T
	mu   sync.Mutex
	last map[string]json.RawMessage
	seen int // observations
}

func newCursorWatch(t *testing.T) *cursorWatch {
	return &cursorWatch{t: t, last: map[string]json.RawMessage{}}
}

func (w *cursorWatch) observe(cps []checkpoint.Checkpoint, when string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen++
	now := map[string]bool{}
	for _, cp := range cps {
		now[cp.Stream] = true
		if prev, ok := w.last[cp.Stream]; ok {
			if why := backwards(prev, cp.Cursor); why != "" {
				w.t.Errorf("%s: checkpoint of %s moved backwards (%s):\n was %s\n now %s", when, cp.Stream, why, prev, cp.Cursor)
			}
		}
		w.last[cp.Stream] = slices.Clone(cp.Cursor)
	}
	for s := range w.last {
		if !now[s] {
			w.t.Errorf("%s: checkpoint of %s disappeared", when, s)
		}
	}
}

// listCheckpoints reads every checkpoint through the store's own List.
func listCheckpoints(t *testing.T, store checkpoint.Store) []checkpoint.Checkpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cps, err := store.List(ctx)
	if err != nil {
		t.Errorf("checkpoint store List: %v", err)
	}
	return cps
}

// watchCheckpoints samples the store every interval until stop is called,
// feeding w.
func watchCheckpoints(t *testing.T, store checkpoint.Store, w *cursorWatch, interval time.Duration) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			w.observe(listCheckpoints(t, store), "watcher")
			select {
			case <-done:
				return
			case <-time.After(interval):
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

// checkCheckpointsCovered asserts commit-after-ack: every well-formed
// record a checkpoint says was delivered is in got.
func checkCheckpointsCovered(t *testing.T, want []wantRec, cps []checkpoint.Checkpoint, got stored, when string) {
	t.Helper()
	cursors := map[string]cursorFields{}
	for _, cp := range cps {
		var c cursorFields
		if err := json.Unmarshal(cp.Cursor, &c); err != nil {
			t.Errorf("%s: checkpoint of %s: %v", when, cp.Stream, err)
			continue
		}
		cursors[cp.Stream] = c
	}
	var missing []string
	for _, w := range want {
		c, ok := cursors[w.stream]
		if !ok || w.malformed != "" || len(got[w.id]) > 0 {
			continue
		}
		covered := false
		if c.Through != nil {
			last := c.Through.Add(-time.Second)
			covered = w.second.Before(last) || (w.second.Equal(last) && slices.Contains(c.SeenIDs, w.sourceID))
		} else {
			covered = compareDigits(w.key, strings.Trim(string(c.ID), `"`)) <= 0
		}
		if covered {
			missing = append(missing, fmt.Sprintf("%s record %s%s (%s)", w.stream, w.key, w.sourceID, w.ts.Format(time.RFC3339Nano)))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s: %d record(s) behind their stream's checkpoint were never stored, e.g.\n%s",
			when, len(missing), strings.Join(missing[:min(10, len(missing))], "\n"))
	}
}

// hostileKillSeed is the seed of the kill moments: $HWCAUDIT_TEST_KILL_SEED, or
// new each time.
func hostileKillSeed(t *testing.T) uint64 {
	if v := os.Getenv(envKillSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envKillSeed, v, err)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

// TestHostileKillAndResume runs the exporter over all four sources in
// hostile mode (records inserted while it pages, 429s with and without
// Retry-After, 503s, slow pages, malformed and odd records, runs of
// records sharing a second or a millisecond across page edges) with the
// file sink, kills it with SIGKILL at seeded random moments, and reruns it
// until a run exits 0. After every kill no checkpoint has moved backwards
// or passed what was durably stored; at the end every record was
// delivered at least once with a deterministic event.id and a UTC
// @timestamp equal to its time, every malformed record is dead-lettered
// with a reason, and no published file holds a torn line.
func TestHostileKillAndResume(t *testing.T) {
	t.Parallel()
	seed := hostileKillSeed(t)
	t.Logf("kill seed %d (%s=%d to replay these kill moments)", seed, envKillSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x686f7374696c65))

	n, budget, minKills, maxKills, maxDelay := 300, 30*time.Second, 12, 30, 800*time.Millisecond
	if testing.Short() {
		n, budget, minKills, maxKills, maxDelay = 100, 8*time.Second, 4, 8, 300*time.Millisecond
	}
	cfg := hostileSim(int64(seed%1000)+300, n)
	h := newHarness(t, cfg)
	useAllSources(h)
	store, err := checkpoint.NewFileStore(h.stateDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	watch := newCursorWatch(t)

	kills, runs, completed := 0, 0, 0
	deadline := time.Now().Add(budget)
	for kills < maxKills && time.Now().Before(deadline) {
		// Kill anywhere from start-up to well into a run; now and then let
		// a run go on long enough to finish.
		delay := time.Duration(rng.Int64N(int64(maxDelay)))
		if rng.IntN(8) == 0 {
			delay += time.Duration(rng.Int64N(int64(3 * time.Second)))
		}
		if os.Getenv("HWCAUDIT_CONCURRENCY") == "" {
			// In-stream concurrency changes between runs: a cursor saved
			// by one setting must resume under another.
			h.env["HWCAUDIT_CONCURRENCY"] = strconv.Itoa([]int{1, 2, 4, 8}[rng.IntN(4)])
		}
		p := h.start("run")
		runs++
		time.Sleep(delay)
		p.cmd.Process.Kill()
		r := p.wait(t, 60*time.Second)
		when := fmt.Sprintf("after run %d (concurrency %s, killed at %s)", runs, h.env["HWCAUDIT_CONCURRENCY"], delay.Round(time.Millisecond))
		if !r.signaled {
			if r.code != exitOK {
				t.Fatalf("run %d, not killed, failed:\n%v", runs, r)
			}
			completed++
			when = fmt.Sprintf("after run %d (concurrency %s, completed)", runs, h.env["HWCAUDIT_CONCURRENCY"])
		} else {
			kills++
		}
		cps := listCheckpoints(t, store)
		watch.observe(cps, when)
		got, _ := readFileSink(t, filepath.Join(h.dir, "out"), true)
		checkCheckpointsCovered(t, hostileRecords(h.sim), cps, got, when)
		if t.Failed() {
			t.FailNow()
		}
		if !r.signaled {
			if kills >= minKills {
				break
			}
			// Caught up too soon: new records at the head of every
			// newest-first list give the next runs work to be killed in.
			for _, ins := range testInstances {
				for _, op := range testOps {
					if err := h.sim.InsertSWR(ins, op, n/2); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, repo := range hostileRepos {
				if err := h.sim.InsertArtifact(repo.Module, repo.Repo, n); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Logf("%d runs: %d killed with SIGKILL, %d completed before their kill", runs, kills, completed)
	if kills == 0 {
		t.Errorf("every run finished before its kill: no crash was exercised")
	}

	// Rerun until a run exits 0; a run that ends otherwise fails the test.
	h.mustRun(exitOK, "run")
	watch.observe(listCheckpoints(t, store), "after the first complete run")
	// The drift of that run's last pages inserted records after it read
	// them; one more run without drift collects them, then a last run
	// has nothing new.
	h.sim.SetFaults(withoutDrift(cfg.Faults))
	h.mustRun(exitOK, "run")
	watch.observe(listCheckpoints(t, store), "after the collecting run")
	r := h.mustRun(exitOK, "run")
	if !strings.Contains(r.stdout, "nothing new") {
		t.Errorf("the run after recovery is not caught up:\n%s", r.stdout)
	}
	watch.observe(listCheckpoints(t, store), "after the last run")

	got, leftover := readFileSink(t, filepath.Join(h.dir, "out"), false)
	letters, dlLeftover := readDeadLetters(t, h.deadLetterDir(), false)
	if len(leftover)+len(dlLeftover) > 0 {
		t.Errorf("in-progress files left after clean runs: %v %v", leftover, dlLeftover)
	}
	checkDelivered(t, hostileRecords(h.sim), got, letters)
	if tmp, _ := filepath.Glob(filepath.Join(h.stateDir(), ".tmp-*")); len(tmp) > 0 {
		t.Errorf("checkpoint temporaries left after clean runs: %v", tmp)
	}
	st := h.sim.Stats()
	if st.Throttled == 0 || st.ServerErrors == 0 {
		t.Errorf("simulator stats %+v: want throttled and failed requests", st)
	}
	t.Logf("simulator: %d requests, %d pages, %d throttled, %d 5xx; %d checkpoint observations", st.Requests, st.Pages, st.Throttled, st.ServerErrors, watch.seen)
}

// runThroughOutage runs one export (h's sinks, its checkpoints in store)
// and, once a first checkpoint is saved, takes the sink away with down
// for a few seconds. While it is away no checkpoint may advance (after a
// moment for writes that were already acknowledged); once up brings it
// back the run must complete with exit 0 and the checkpoints move on.
// watch sees every checkpoint sampled throughout.
func runThroughOutage(t *testing.T, h *harness, store checkpoint.Store, watch *cursorWatch, down, up func()) {
	t.Helper()
	stopWatch := watchCheckpoints(t, store, watch, 100*time.Millisecond)
	defer stopWatch()

	p := h.start("run")
	waitFor(t, 60*time.Second, "a first checkpoint", func() bool {
		if p.exited() {
			t.Fatalf("the run ended before its sink could be taken away:\n%v", p.res)
		}
		return len(listCheckpoints(t, store)) > 0
	})
	down()
	// A write the sink acknowledged just before it went away may still be
	// checkpointed; nothing after that may be.
	time.Sleep(1500 * time.Millisecond)
	held := listCheckpoints(t, store)
	watch.observe(held, "sink down")
	heldAt := map[string]string{}
	for _, cp := range held {
		heldAt[cp.Stream] = string(cp.Cursor)
	}
	samples := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if p.exited() {
			t.Fatalf("the run ended while its sink was away (it should wait for it):\n%v", p.res)
		}
		cps := listCheckpoints(t, store)
		samples++
		for _, cp := range cps {
			if was, ok := heldAt[cp.Stream]; !ok || was != string(cp.Cursor) {
				t.Errorf("checkpoint of %s moved while the sink was down: %s → %s", cp.Stream, was, cp.Cursor)
				heldAt[cp.Stream] = string(cp.Cursor)
			}
		}
	}
	up()
	r := p.wait(t, 120*time.Second)
	if r.code != exitOK {
		t.Fatalf("the run did not complete once the sink was back:\n%v", r)
	}
	checkJSONLogs(t, r.stderr)
	if !strings.Contains(r.stderr, `"msg":"retrying"`) {
		t.Errorf("no retry was logged; was the sink really away?\n%s", tail(r.stderr, 2000))
	}
	after := listCheckpoints(t, store)
	watch.observe(after, "after the outage")
	moved := 0
	for _, cp := range after {
		if heldAt[cp.Stream] != string(cp.Cursor) {
			moved++
		}
	}
	if moved == 0 {
		t.Errorf("no checkpoint moved after the sink came back: the outage hit no pending write")
	}
	t.Logf("%d checkpoints held during %d samples of the outage; %d moved after it", len(held), samples, moved)
}

// killDuringOutage gives h's simulator new records, starts a run, and
// once that run has saved a checkpoint takes the sink away and kills the
// run with SIGKILL while writes to the absent sink are pending: the crash
// the issue names, with the sink down. No checkpoint may have moved past
// what the sink acknowledged; the caller's later runs, with the sink back,
// must deliver everything. n sizes the new records.
func killDuringOutage(t *testing.T, h *harness, store checkpoint.Store, watch *cursorWatch, n int, down, up func()) {
	t.Helper()
	stopWatch := watchCheckpoints(t, store, watch, 100*time.Millisecond)
	defer stopWatch()
	for _, ins := range testInstances {
		for _, op := range testOps {
			if err := h.sim.InsertSWR(ins, op, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, repo := range hostileRepos {
		if err := h.sim.InsertArtifact(repo.Module, repo.Repo, n); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]string{}
	for _, cp := range listCheckpoints(t, store) {
		before[cp.Stream] = string(cp.Cursor)
	}
	p := h.start("run")
	waitFor(t, 60*time.Second, "a checkpoint of the second run", func() bool {
		if p.exited() {
			t.Fatalf("the run ended before its sink could be taken away:\n%v", p.res)
		}
		for _, cp := range listCheckpoints(t, store) {
			if before[cp.Stream] != string(cp.Cursor) {
				return true
			}
		}
		return false
	})
	down()
	time.Sleep(1500 * time.Millisecond)
	if p.exited() {
		t.Fatalf("the run ended while its sink was away:\n%v", p.res)
	}
	p.cmd.Process.Kill()
	r := p.wait(t, 60*time.Second)
	if !r.signaled {
		t.Fatalf("the run was not killed:\n%v", r)
	}
	watch.observe(listCheckpoints(t, store), "killed with the sink down")
	up()
}

// outageHarness is the four-source dataset in hostile-lite mode, slowed
// down so that a run lasts long enough to lose its sink halfway, with
// retries patient enough to outlast the outage.
func outageHarness(t *testing.T, seed int64) (*harness, simulator.Faults) {
	t.Helper()
	n := 120
	if testing.Short() {
		n = 60
	}
	cfg := hostileSim(seed, n)
	cfg.Faults = hostileLite()
	cfg.Faults.Latency = 15 * time.Millisecond
	h := newHarness(t, cfg)
	useAllSources(h)
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "2m"
	h.env["HWCAUDIT_RETRY_MAX"] = "300ms"
	return h, cfg.Faults
}

// TestHostileKafkaOutage exports to Kafka in hostile-lite mode and stops
// the broker mid-run for a few seconds: the checkpoints hold still while
// it is down, the run completes once it is back on the same address; a
// second run is killed with SIGKILL while the broker is down; and Kafka
// holds every record at least once, keyed by its event.id.
func TestHostileKafkaOutage(t *testing.T) {
	t.Parallel()
	broker := newKafkaBroker(t)
	h, faults := outageHarness(t, 71)
	h.env["HWCAUDIT_SINKS"] = "kafka"
	h.env["HWCAUDIT_KAFKA_BROKERS"] = broker.addr()
	h.env["HWCAUDIT_KAFKA_TOPIC"] = swr.Dataset // the topic the broker has
	h.env["HWCAUDIT_KAFKA_WRITE_TIMEOUT"] = "1s"
	store, err := checkpoint.NewFileStore(h.stateDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	watch := newCursorWatch(t)
	runThroughOutage(t, h, store, watch, broker.down, broker.up)
	killDuringOutage(t, h, store, watch, 60, broker.down, broker.up)

	// The killed run's work, then what drift added behind it.
	h.mustRun(exitOK, "run")
	h.sim.SetFaults(withoutDrift(faults))
	h.mustRun(exitOK, "run")
	watch.observe(listCheckpoints(t, store), "after the collecting run")

	got := stored{}
	for _, m := range kafkatest.ReadAll(t, broker.addr(), nil) {
		got.add(t, "kafka", m.Value)
		var d anyDoc
		if json.Unmarshal(m.Value, &d) == nil && string(m.Key) != d.Event.ID {
			t.Errorf("message key %q is not its event.id %q", m.Key, d.Event.ID)
		}
	}
	letters, _ := readDeadLetters(t, h.deadLetterDir(), false)
	checkDelivered(t, hostileRecords(h.sim), got, letters)
}

// TestHostileS3Outage exports to S3 in hostile-lite mode (checkpoints on
// local disk) and stops the S3 server mid-run for a few seconds: the
// checkpoints hold still while it is down, the run completes once it is
// back on the same address; a second run is killed with SIGKILL while the
// server is down; and the bucket holds every record at least once.
func TestHostileS3Outage(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	if !srv.CanStop() {
		t.Skip("an external S3 server cannot be stopped")
	}
	bucket := srv.Bucket(t)
	h, faults := outageHarness(t, 72)
	h.env["HWCAUDIT_SINKS"] = "s3"
	useS3(h, srv, bucket)
	h.env["HWCAUDIT_CHECKPOINT_URL"] = "file://./state" // only the sink goes away
	store, err := checkpoint.NewFileStore(h.stateDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	watch := newCursorWatch(t)
	runThroughOutage(t, h, store, watch, func() { srv.Stop(t) }, func() { srv.Restart(t) })
	killDuringOutage(t, h, store, watch, 60, func() { srv.Stop(t) }, func() { srv.Restart(t) })

	h.mustRun(exitOK, "run")
	h.sim.SetFaults(withoutDrift(faults))
	h.mustRun(exitOK, "run")
	watch.observe(listCheckpoints(t, store), "after the collecting run")

	got := stored{}
	keys, bodies := srv.ReadAll(t, bucket, "audit/")
	for i, body := range bodies {
		if !strings.HasPrefix(keys[i], "audit/dataset=") || !strings.HasSuffix(keys[i], ".ndjson.gz") {
			t.Errorf("object key %q is not Hive-partitioned gzip NDJSON", keys[i])
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", keys[i], err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v (a torn object?)", keys[i], err)
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Errorf("object %s is empty or ends in a torn line", keys[i])
		}
		got.add(t, keys[i], data)
	}
	letters, _ := readDeadLetters(t, h.deadLetterDir(), false)
	checkDelivered(t, hostileRecords(h.sim), got, letters)
}

// TestHostileOverlappingRuns starts two `exporter run` at once on one
// checkpoint store, a directory or an S3 prefix, several times over:
// each time exactly one exports and the other leaves at once, exit 0,
// saying another run holds the lock; a watcher sampling the checkpoints
// throughout never sees a cursor move backwards; and together the runs
// deliver every record.
func TestHostileOverlappingRuns(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"file", "s3"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			n, rounds := 60, 3
			if testing.Short() {
				rounds = 2
			}
			cfg := hostileSim(81, n)
			cfg.Faults = hostileLite()
			cfg.Faults.Latency = 25 * time.Millisecond // long runs: the second start finds the first running
			h := newHarness(t, cfg)
			useAllSources(h)
			var store checkpoint.Store
			if backend == "s3" {
				srv := s3test.Start(t)
				bucket := srv.Bucket(t)
				useS3(h, srv, bucket) // the sink stays file; the checkpoints go to S3
				s, err := checkpoint.NewS3Store(context.Background(), checkpoint.S3Config{
					Bucket: bucket, Prefix: "state", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
				}, "test", func(o *s3.Options) {
					o.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
				})
				if err != nil {
					t.Fatal(err)
				}
				store = s
			} else {
				s, err := checkpoint.NewFileStore(h.stateDir(), "test")
				if err != nil {
					t.Fatal(err)
				}
				store = s
			}
			watch := newCursorWatch(t)
			stopWatch := watchCheckpoints(t, store, watch, 20*time.Millisecond)

			for round := 1; round <= rounds; round++ {
				if round > 1 { // new records, so that the round has work
					for _, ins := range testInstances {
						if err := h.sim.InsertSWR(ins, "pull", 30); err != nil {
							t.Fatal(err)
						}
					}
					if err := h.sim.InsertArtifact(hostileRepos[0].Module, hostileRepos[0].Repo, 30); err != nil {
						t.Fatal(err)
					}
				}
				a, b := h.start("run"), h.start("run")
				ra, rb := a.wait(t, 120*time.Second), b.wait(t, 120*time.Second)
				proceeded, left := 0, 0
				for _, r := range []result{ra, rb} {
					if r.code != exitOK {
						t.Fatalf("round %d: an overlapping run exited %d, want 0 for both:\n%v", round, r.code, r)
					}
					checkJSONLogs(t, r.stderr)
					switch {
					case strings.Contains(r.stdout, "nothing done: ") && strings.Contains(r.stdout, "another run holds the lock"):
						left++
						if summaryRE.MatchString(r.stdout) {
							t.Errorf("round %d: the run that left also reports an export:\n%s", round, r.stdout)
						}
					case summaryRE.MatchString(r.stdout):
						proceeded++
					default:
						t.Errorf("round %d: a run neither exported nor said why not:\n%v", round, r)
					}
				}
				if proceeded != 1 || left != 1 {
					t.Errorf("round %d: %d runs exported and %d left; want exactly one of each\n--- first:\n%s\n--- second:\n%s", round, proceeded, left, ra.stdout, rb.stdout)
				}
			}
			stopWatch()
			if watch.seen < 10 {
				t.Errorf("the watcher sampled the checkpoints only %d times", watch.seen)
			}

			h.sim.SetFaults(withoutDrift(cfg.Faults))
			h.mustRun(exitOK, "run")
			watch.observe(listCheckpoints(t, store), "after the collecting run")
			got, leftover := readFileSink(t, filepath.Join(h.dir, "out"), false)
			letters, dlLeftover := readDeadLetters(t, h.deadLetterDir(), false)
			if len(leftover)+len(dlLeftover) > 0 {
				t.Errorf("in-progress files left after clean runs: %v %v", leftover, dlLeftover)
			}
			checkDelivered(t, hostileRecords(h.sim), got, letters)
			t.Logf("%d rounds; the watcher sampled %d times", rounds, watch.seen)
		})
	}
}
