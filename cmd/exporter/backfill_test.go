package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/checkpoint"
	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/simulator"
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
		{[]string{"--from", "24h", "--sources", "swr,cts"}, "--sources"},
		{[]string{"--from", "24h", "extra"}, "extra"},
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
	if !strings.Contains(r.stdout, "complete: every stream exported the whole range") || !strings.Contains(r.stdout, "WRITTEN:FILE") {
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

// boundedReader drops records after to and ends at the first page past it.
func TestBoundedReader(t *testing.T) {
	to := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	pages := []pipeline.Page{
		{Records: [][]byte{[]byte("5"), []byte("9")}, Cursor: []byte("1")},
		{Records: [][]byte{[]byte("10"), []byte("bad"), []byte("11")}, Cursor: []byte("2")},
		{Records: [][]byte{[]byte("12")}, Cursor: []byte("3")},
	}
	r := &boundedReader{r: &fakeReader{pages: pages}, s: secStream{}, to: to}
	var got [][]byte
	for {
		p, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Records...)
	}
	if want := [][]byte{[]byte("5"), []byte("9"), []byte("10"), []byte("bad")}; !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("got %q, want %q", got, want)
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

// secStream maps a record "N" to an event N seconds after 2026-01-01.
type secStream struct{ pipeline.Stream }

func (secStream) Map(raw []byte, ev *pipeline.Event) error {
	d, err := time.ParseDuration(string(raw) + "s")
	if err != nil {
		return err
	}
	ev.Timestamp = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(d)
	return nil
}
