package filesink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
)

const killHelperEnv = "HWCAUDIT_FILESINK_KILL_HELPER_DIR"

// TestKillHelper is not a test: TestKill9 runs the test binary again with
// killHelperEnv set, and this function then writes batches until it is
// killed, printing "ack <id> <id>…" after each Write returned nil.
func TestKillHelper(t *testing.T) {
	dir := os.Getenv(killHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9")
	}
	s, err := New(Config{Dir: dir, MaxBytes: 8 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	run := fmt.Sprintf("p%d", os.Getpid())
	out := bufio.NewWriter(os.Stdout)
	for n := 0; ; {
		ds := []string{"alpha", "beta"}[rand.IntN(2)]
		b := &pipeline.Batch{Stream: "kill/" + ds}
		for range 1 + rand.IntN(40) {
			id := fmt.Sprintf("%s-%07d", run, n)
			n++
			b.Events = append(b.Events, pipeline.Event{
				ID: id, Dataset: ds,
				Doc: fmt.Appendf(nil, `{"event":{"id":%q},"pad":%q}`, id, strings.Repeat("p", rand.IntN(500))),
			})
		}
		if err := s.Write(context.Background(), b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		out.WriteString("ack")
		for _, ev := range b.Events {
			out.WriteString(" " + ev.ID)
		}
		out.WriteString("\n")
		out.Flush()
	}
}

// TestKill9 kills a writing process with SIGKILL at random moments, several
// runs in a row on one directory, and checks after recovery that every
// acknowledged event is published and no published file holds a torn line.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	acked := make(map[string]bool)
	for round := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		killAfter := 1 + rand.IntN(200)
		lines := 0
		var killed bool
		for {
			ln, err := r.ReadString('\n')
			if err != nil {
				break // EOF after the kill; a last partial line is ignored
			}
			if !strings.HasPrefix(ln, "ack ") {
				continue // test framework chatter
			}
			for _, id := range strings.Fields(ln)[1:] {
				acked[id] = true
			}
			if lines++; lines == killAfter && !killed {
				// Kill at a random moment, most likely mid-Write.
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: helper ended with %v, want killed by SIGKILL", round, err)
		}
		t.Logf("round %d: killed after %d acknowledged batches", round, lines)
	}

	// The run after the crash.
	s, err := New(Config{Dir: dir, MaxBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := inProgressFiles(t, dir); len(left) != 0 {
		t.Errorf("in-progress files left after recovery: %v", left)
	}
	stored := make(map[string]bool)
	for _, ln := range readVisible(t, dir) { // fails on a file ending mid-line
		var d struct{ Event struct{ ID string } }
		if err := json.Unmarshal(ln, &d); err != nil || d.Event.ID == "" {
			t.Fatalf("torn or invalid line published: %.100q", ln)
		}
		stored[d.Event.ID] = true
	}
	missing := 0
	for id := range acked {
		if !stored[id] {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged event %s lost", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events lost", missing, len(acked))
	}
	t.Logf("%d acknowledged, %d stored (unacknowledged extras are allowed)", len(acked), len(stored))
}
