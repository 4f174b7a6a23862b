package main

import (
	"encoding/json"
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hwcaudit/hwcaudit/sinks/kafkasink/kafkatest"
	"github.com/hwcaudit/hwcaudit/sources/swr"
)

// kafkaBroker runs a Kafka-protocol broker on a fixed loopback port, so a
// test can stop it and start it again where the exporter expects it.
type kafkaBroker struct {
	t    *testing.T
	port int
	dir  string
	c    *kfake.Cluster
}

func newKafkaBroker(t *testing.T) *kafkaBroker {
	b := &kafkaBroker{t: t, dir: t.TempDir()}
	// The port is picked free and then bound by the broker; another test
	// can take it in between, so try a few.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		c, err := kfake.NewCluster(b.opts()...)
		if err == nil {
			b.c = c
			break
		}
		if attempt == 4 {
			t.Fatal(err)
		}
	}
	t.Cleanup(b.down)
	return b
}

func (b *kafkaBroker) opts() []kfake.Opt {
	return []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(b.port), kfake.DataDir(b.dir), kfake.SeedTopics(1, swr.Dataset)}
}

func (b *kafkaBroker) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

func (b *kafkaBroker) up() {
	c, err := kfake.NewCluster(b.opts()...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.c = c
}

func (b *kafkaBroker) down() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
}

// kafkaIDs returns how many messages carry each key (event.id), checking
// that every key is the event.id of its document.
func kafkaIDs(t *testing.T, addr string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, m := range kafkatest.ReadAll(t, addr, nil) {
		var d struct{ Event struct{ ID string } }
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Fatalf("message is not a JSON document: %v", err)
		}
		if string(m.Key) != d.Event.ID {
			t.Fatalf("message key %q is not its event.id %q", m.Key, d.Event.ID)
		}
		ids[d.Event.ID]++
	}
	return ids
}

func TestKafkaAndFileFanOut(t *testing.T) {
	t.Parallel()
	broker := newKafkaBroker(t)
	h := newHarness(t, simConfig(31, 150))
	h.env["HWCAUDIT_SINKS"] = "file,kafka"
	h.env["HWCAUDIT_KAFKA_BROKERS"] = broker.addr()
	h.mustRun(exitOK, "run")

	out := readOutput(t, h.datasetDir(), false)
	checkExported(t, h.sim, out, exactlyOnce)
	ids := kafkaIDs(t, broker.addr())
	for id := range out.ids() {
		if ids[id] != 1 {
			t.Fatalf("event %s is in the files but %d times in Kafka", id, ids[id])
		}
	}
	if len(ids) != len(out.ids()) {
		t.Errorf("Kafka holds %d events, the files %d", len(ids), len(out.ids()))
	}
}

func TestKafkaOutageHoldsTheCheckpoint(t *testing.T) {
	t.Parallel()
	broker := newKafkaBroker(t)
	h := newHarness(t, simConfig(32, 120))
	h.env["HWCAUDIT_SINKS"] = "file,kafka"
	h.env["HWCAUDIT_KAFKA_BROKERS"] = broker.addr()
	h.env["HWCAUDIT_KAFKA_WRITE_TIMEOUT"] = "1s"
	h.env["HWCAUDIT_RETRY_MAX_ELAPSED"] = "2s"

	broker.down()
	h.mustRun(exitFailed, "run")
	// The file sink took the records, Kafka did not: no checkpoint may
	// say they were delivered.
	if entries, _ := os.ReadDir(h.stateDir()); len(readCheckpoints(t, h.stateDir())) != 0 {
		t.Fatalf("checkpoints saved while Kafka was down: %v", entries)
	}

	broker.up()
	h.mustRun(exitOK, "run")
	out := readOutput(t, h.datasetDir(), false)
	checkExported(t, h.sim, out, atLeastOnce)
	ids := kafkaIDs(t, broker.addr())
	for id := range out.ids() {
		if ids[id] == 0 {
			t.Fatalf("event %s never reached Kafka", id)
		}
	}
}

// ids returns the event ids in out.
func (out *output) ids() map[string]bool {
	ids := map[string]bool{}
	for _, docs := range out.docs {
		for _, d := range docs {
			ids[d.Event.ID] = true
		}
	}
	return ids
}
