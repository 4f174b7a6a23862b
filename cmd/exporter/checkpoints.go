package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
)

const checkpointsUsage = `usage: exporter checkpoints list [--backfill RANGE]
       exporter checkpoints show STREAM
       exporter checkpoints reset STREAM
       exporter checkpoints reset --backfill RANGE [--force]
       exporter checkpoints prune
list shows the run's checkpoints, then one line per backfill (RANGE is its
<from>_<to>, as in backfill/<from>_<to>/...) with its state: complete once
every stream of its last runs completed. list --backfill RANGE shows that
backfill's streams. reset --backfill deletes a complete backfill's
checkpoints (--force: an incomplete one's too; rerunning it then starts
over); prune does so for every complete backfill. Both take the backfill's
run lock; do not run them while a sharded run of that backfill is going.
(the store is HWCAUDIT_CHECKPOINT_URL; run 'exporter help')
`

// checkpointsOp is one `exporter checkpoints` command line.
type checkpointsOp struct {
	cmd      string // list, show, reset or prune
	stream   string // show, reset
	backfill string // list --backfill, reset --backfill: a RANGE
	force    bool   // reset --backfill --force
}

func parseCheckpointsArgs(args []string) (checkpointsOp, bool) {
	op, err := parseCheckpoints(args)
	return op, err == nil
}

// parseCheckpoints reads a checkpoints command line: the subcommand, then
// its flags and arguments, each subcommand with its own flag set.
func parseCheckpoints(args []string) (checkpointsOp, error) {
	if len(args) == 0 {
		return checkpointsOp{}, errors.New("missing subcommand: list, show, reset or prune")
	}
	op := checkpointsOp{cmd: args[0]}
	fl := flag.NewFlagSet("exporter checkpoints "+op.cmd, flag.ContinueOnError)
	var backfill *string
	var force *bool
	var want int // arguments besides flags
	switch op.cmd {
	case "list":
		backfill = fl.String("backfill", "", "list this backfill's streams")
	case "show", "prune":
		if op.cmd == "show" {
			want = 1
		}
	case "reset":
		backfill = fl.String("backfill", "", "delete this backfill's checkpoints")
		force = fl.Bool("force", false, "with --backfill: even when the backfill is incomplete")
	default:
		return op, fmt.Errorf("unknown subcommand %q (want list, show, reset or prune)", op.cmd)
	}
	if err := parseFlags(fl, args[1:]); err != nil {
		return op, err
	}
	if backfill != nil {
		op.backfill = *backfill
		if flagSet(fl, "backfill") && op.backfill == "" {
			return op, errors.New("--backfill needs a RANGE")
		}
	}
	if force != nil {
		op.force = *force
	}
	if op.cmd == "reset" && op.backfill == "" {
		// reset STREAM, or reset --backfill RANGE [--force].
		if op.force {
			return op, errors.New("--force goes with --backfill RANGE")
		}
		want = 1
	}
	if fl.NArg() != want {
		if fl.NArg() > want {
			return op, fmt.Errorf("unexpected argument %q", fl.Arg(want))
		}
		return op, fmt.Errorf("%s needs a STREAM", op.cmd)
	}
	if want == 1 {
		op.stream = fl.Arg(0)
	}
	if op.backfill != "" {
		// Accept the namespace as list or a checkpoint key shows it.
		op.backfill = strings.Trim(strings.TrimPrefix(op.backfill, "backfill/"), "/")
		if op.backfill == "" || strings.Contains(op.backfill, "/") {
			return op, fmt.Errorf("--backfill: want a RANGE <from>_<to> as 'exporter checkpoints list' shows it, got %q", *backfill)
		}
	}
	return op, nil
}

// cmdCheckpoints lists, shows, resets or prunes checkpoints. It reads only
// HWCAUDIT_CHECKPOINT_URL, so it works without any source configured.
func cmdCheckpoints(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, checkpointsUsage)
		return exitOK
	}
	op, err := parseCheckpoints(args)
	if err != nil {
		fmt.Fprintf(stderr, "exporter checkpoints: %v\n%s", err, checkpointsUsage)
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	var cfg checkpoint.Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &cfg, Lookuper: envconfig.OsLookuper()}); err != nil {
		return configError(stderr, err)
	}
	if err := cfg.Validate(); err != nil {
		return configError(stderr, err)
	}
	store, err := checkpoint.Open(cfg, version())
	if err != nil {
		fmt.Fprintf(stderr, "exporter checkpoints: cannot open the checkpoint store: %v\n", err)
		return exitFailed
	}
	// A backfill's checkpoints are deleted under its own run lock, the one
	// `exporter backfill` takes for the range.
	scoped := func(scope string) (checkpoint.Store, error) {
		c := cfg
		c.LockScope = scope
		return checkpoint.Open(c, version())
	}
	if err := checkpointsCmd(ctx, store, scoped, op, stdout); err != nil {
		fmt.Fprintf(stderr, "exporter checkpoints %s: %v\n", op.cmd, err)
		return exitFailed
	}
	return exitOK
}

func checkpointsCmd(ctx context.Context, store checkpoint.Store, scoped func(scope string) (checkpoint.Store, error),
	op checkpointsOp, out io.Writer) error {
	switch op.cmd {
	case "list":
		cps, err := store.List(ctx)
		runs, backfills := groupCheckpoints(cps)
		if op.backfill != "" {
			b := findBackfill(backfills, op.backfill)
			if b == nil {
				return errors.Join(err, fmt.Errorf("backfill %q has no checkpoint (see 'exporter checkpoints list')", op.backfill))
			}
			fmt.Fprintf(out, "backfill %s: %s\n", b.rng, b.state())
			printCheckpoints(out, b.streams)
			return err
		}
		printCheckpoints(out, runs)
		if len(backfills) > 0 {
			fmt.Fprintln(out)
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BACKFILL\tSTATE\tSTREAMS\tUPDATED")
			for _, b := range backfills {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", b.rng, b.state(), len(b.streams), b.updated.UTC().Format(time.RFC3339))
			}
			tw.Flush()
			fmt.Fprintln(out, "(its streams: exporter checkpoints list --backfill RANGE; delete a complete backfill's checkpoints: exporter checkpoints reset --backfill RANGE, or prune for all)")
		}
		// Unreadable checkpoints are named in err; the others are listed.
		return err
	case "show":
		cp, err := find(ctx, store, op.stream)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(cp, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n", b)
		return nil
	case "reset":
		if op.backfill != "" {
			return resetBackfill(ctx, store, scoped, op.backfill, op.force, out)
		}
		unlock, err := store.Lock(ctx)
		if err != nil {
			return fmt.Errorf("cannot take the run lock: %w", err)
		}
		defer unlock()
		if err := store.Delete(ctx, op.stream); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stream %q has no checkpoint (see 'exporter checkpoints list')", op.stream)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(out, "checkpoint of %s deleted; its next run starts from HWCAUDIT_START_FROM\n", op.stream)
		return nil
	case "prune":
		cps, err := store.List(ctx)
		if err != nil {
			// A backfill whose checkpoint cannot be read might look complete.
			return fmt.Errorf("nothing pruned: %w", err)
		}
		_, backfills := groupCheckpoints(cps)
		pruned := 0
		for _, b := range backfills {
			if !b.complete() {
				fmt.Fprintf(out, "backfill %s kept: %s\n", b.rng, b.state())
				continue
			}
			if err := resetBackfill(ctx, store, scoped, b.rng, false, out); err != nil {
				return err
			}
			pruned++
		}
		fmt.Fprintf(out, "%d complete backfill(s) pruned\n", pruned)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q", op.cmd)
}

func printCheckpoints(out io.Writer, cps []checkpoint.Checkpoint) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tUPDATED\tCURSOR")
	for _, cp := range cps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cp.Stream, cp.UpdatedAt.UTC().Format(time.RFC3339), compactJSON(cp.Cursor))
	}
	tw.Flush()
}

// backfillGroup is one backfill's checkpoints: its streams' cursors and
// the status documents its runs saved (see saveBackfillStatus).
type backfillGroup struct {
	rng        string // <from>_<to>
	streams    []checkpoint.Checkpoint
	others     []checkpoint.Checkpoint // status documents
	updated    time.Time
	done       map[string]bool
	incomplete map[string]bool
	unreadable bool // a status document could not be parsed
}

// groupCheckpoints splits cps into the run's checkpoints and one group per
// backfill namespace, each sorted.
func groupCheckpoints(cps []checkpoint.Checkpoint) (runs []checkpoint.Checkpoint, backfills []*backfillGroup) {
	byRange := map[string]*backfillGroup{}
	for _, cp := range cps {
		rest, ok := strings.CutPrefix(cp.Stream, "backfill/")
		rng, sub, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 || rng == "" || sub == "" {
			runs = append(runs, cp)
			continue
		}
		b := byRange[rng]
		if b == nil {
			b = &backfillGroup{rng: rng, done: map[string]bool{}, incomplete: map[string]bool{}}
			byRange[rng] = b
			backfills = append(backfills, b)
		}
		if cp.UpdatedAt.After(b.updated) {
			b.updated = cp.UpdatedAt
		}
		if !strings.Contains(sub, "/") && (sub == "status" || strings.HasPrefix(sub, "status-")) {
			b.others = append(b.others, cp)
			var st backfillStatus
			if err := json.Unmarshal(cp.Cursor, &st); err != nil {
				b.unreadable = true
				continue
			}
			for _, s := range st.Done {
				b.done[s] = true
			}
			for _, s := range st.Incomplete {
				b.incomplete[s] = true
			}
			continue
		}
		b.streams = append(b.streams, cp)
	}
	slices.SortFunc(backfills, func(a, b *backfillGroup) int { return strings.Compare(a.rng, b.rng) })
	return runs, backfills
}

func findBackfill(bs []*backfillGroup, rng string) *backfillGroup {
	for _, b := range bs {
		if b.rng == rng {
			return b
		}
	}
	return nil
}

// toResume counts the streams of b that a run left incomplete, or that
// saved a checkpoint without any run recording them as done.
func (b *backfillGroup) toResume() int {
	left := map[string]bool{}
	for s := range b.incomplete {
		if !b.done[s] {
			left[s] = true
		}
	}
	prefix := "backfill/" + b.rng + "/"
	for _, cp := range b.streams {
		if s := strings.TrimPrefix(cp.Stream, prefix); !b.done[s] {
			left[s] = true
		}
	}
	return len(left)
}

// complete tells a backfill whose every stream completed in some run.
func (b *backfillGroup) complete() bool {
	return len(b.others) > 0 && !b.unreadable && b.toResume() == 0
}

func (b *backfillGroup) state() string {
	switch {
	case b.unreadable:
		return "unknown (unreadable status)"
	case len(b.others) == 0:
		return "incomplete (no run finished)"
	case b.complete():
		return "complete"
	}
	return fmt.Sprintf("incomplete (%d stream(s) to resume)", b.toResume())
}

// resetBackfill deletes every checkpoint of backfill rng under its run
// lock; unless force, only when the backfill is complete.
func resetBackfill(ctx context.Context, store checkpoint.Store, scoped func(string) (checkpoint.Store, error),
	rng string, force bool, out io.Writer) error {
	locked, err := scoped("backfill/" + rng)
	if err != nil {
		return err
	}
	unlock, err := locked.Lock(ctx)
	if err != nil {
		return fmt.Errorf("cannot take the run lock of backfill %s: %w", rng, err)
	}
	defer unlock()
	// Listed under the lock: a run that finished meanwhile counts.
	cps, err := store.List(ctx)
	if err != nil && !force {
		return fmt.Errorf("backfill %s not reset: %w", rng, err)
	}
	_, backfills := groupCheckpoints(cps)
	b := findBackfill(backfills, rng)
	if b == nil {
		return fmt.Errorf("backfill %q has no checkpoint (see 'exporter checkpoints list')", rng)
	}
	if !force && !b.complete() {
		return fmt.Errorf("backfill %s is %s: rerun it to finish it, or add --force to delete its checkpoints anyway (rerunning it then starts over)", rng, b.state())
	}
	n := 0
	for _, cp := range append(slices.Clone(b.streams), b.others...) {
		if err := store.Delete(ctx, cp.Stream); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("backfill %s: %d checkpoint(s) deleted, then: %w", rng, n, err)
		}
		n++
	}
	fmt.Fprintf(out, "backfill %s: %d checkpoint(s) deleted; running it again exports the range again\n", rng, n)
	return nil
}

// find returns stream's checkpoint as stored.
func find(ctx context.Context, store checkpoint.Store, stream string) (checkpoint.Checkpoint, error) {
	cps, listErr := store.List(ctx)
	for _, cp := range cps {
		if cp.Stream == stream {
			return cp, nil
		}
	}
	if listErr != nil {
		return checkpoint.Checkpoint{}, listErr
	}
	return checkpoint.Checkpoint{}, fmt.Errorf("stream %q has no checkpoint (see 'exporter checkpoints list')", stream)
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
