package egress

import (
	"fmt"
	"strings"
	"testing"
)

// A message quoting the first bytes of a body (`body starts "…"`) can cut
// a secret in two; before, the beginning before the cut was printed.
func TestRedactsASecretCutByAnExcerpt(t *testing.T) {
	const secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
	s := NewSecrets(secret)
	body := `{"token":"` + secret + `"}`
	for cut := len(`{"token":"`) + len(secret)/2 + 1; cut < len(body); cut++ {
		msg := fmt.Sprintf("response is not an audit page (body starts %q)", body[:cut])
		got := s.Redact(msg)
		if strings.Contains(got, secret[:len(secret)/2]) {
			t.Errorf("cut at %d: %s", cut, got)
		}
	}
	// A user name is not its user:password's secret half.
	b := &Secrets{}
	b.AddBasic("dms-user", "s3cret-password")
	if got := b.Redact(`SASL login as "dms-user" refused`); got != `SASL login as "dms-user" refused` {
		t.Errorf("redacted the user name: %s", got)
	}
	// Text that merely shares a short beginning is left alone.
	if got := s.Redact(`name "MIIE"`); got != `name "MIIE"` {
		t.Errorf("redacted a 4-byte beginning: %s", got)
	}
}
