package main

import (
	"context"
	"strings"
	"testing"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

type letterBox struct{ got []pipeline.DeadLetter }

func (b *letterBox) Put(_ context.Context, l []pipeline.DeadLetter) error {
	b.got = append(b.got, l...)
	return nil
}

// A dead letter's reason quotes what an API or a sink answered; before,
// reasons went to the dead-letter destination as they came, past the
// redaction every log line gets.
func TestDeadLetterReasonsAreRedacted(t *testing.T) {
	const secret = "sk/Example+Secret=0123456789"
	box := &letterBox{}
	w := redactingLetters{w: box, secrets: egress.NewSecrets(secret)}
	in := []pipeline.DeadLetter{
		{Stage: "read", Reason: "id 7 refused; body starts " + secret, Original: []byte(`{"id":7}`)},
		{Stage: "sink:elasticsearch", Reason: `mapper_parsing_exception: {"token":"sk\/Example+Secret=0123456789"}`},
	}
	if err := w.Put(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	for i, l := range box.got {
		if strings.Contains(l.Reason, "Example+Secret") || !strings.Contains(l.Reason, egress.Redacted) {
			t.Errorf("letter %d reason %q", i, l.Reason)
		}
	}
	if string(box.got[0].Original) != `{"id":7}` || in[0].Reason == box.got[0].Reason {
		t.Errorf("the record must be kept as it came, and the caller's letters left alone: %+v", box.got[0])
	}
}
