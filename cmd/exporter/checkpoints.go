package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/hwcaudit/hwcaudit/checkpoint"
)

const checkpointsUsage = `usage: exporter checkpoints list
       exporter checkpoints show STREAM
       exporter checkpoints reset STREAM
(the store is HWCAUDIT_CHECKPOINT_URL; run 'exporter help')
`

// cmdCheckpoints lists, shows or resets checkpoints. It reads only
// HWCAUDIT_CHECKPOINT_URL, so it works without any source configured.
func cmdCheckpoints(args []string, stdout, stderr io.Writer) int {
	var stream string
	switch {
	case len(args) == 1 && args[0] == "list":
	case len(args) == 2 && (args[0] == "show" || args[0] == "reset"):
		stream = args[1]
	default:
		fmt.Fprint(stderr, checkpointsUsage)
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
	if err := checkpointsCmd(ctx, store, args[0], stream, stdout); err != nil {
		fmt.Fprintf(stderr, "exporter checkpoints %s: %v\n", args[0], err)
		return exitFailed
	}
	return exitOK
}

func checkpointsCmd(ctx context.Context, store checkpoint.Store, cmd, stream string, out io.Writer) error {
	switch cmd {
	case "list":
		cps, err := store.List(ctx)
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STREAM\tUPDATED\tCURSOR")
		for _, cp := range cps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", cp.Stream, cp.UpdatedAt.UTC().Format(time.RFC3339), compactJSON(cp.Cursor))
		}
		tw.Flush()
		// Unreadable checkpoints are named in err; the others are listed.
		return err
	case "show":
		cp, err := find(ctx, store, stream)
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
		unlock, err := store.Lock(ctx)
		if err != nil {
			return fmt.Errorf("cannot take the run lock: %w", err)
		}
		defer unlock()
		if err := store.Delete(ctx, stream); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stream %q has no checkpoint (see 'exporter checkpoints list')", stream)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(out, "checkpoint of %s deleted; its next run starts from HWCAUDIT_START_FROM\n", stream)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q", cmd)
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
