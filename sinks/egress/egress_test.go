package egress

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress/egresstest"
)

func TestRedactEveryForm(t *testing.T) {
	const secret = `p@ss/w+rd "q" <&> é`
	s := NewSecrets(secret)
	for name, form := range egresstest.SecretForms(secret) {
		t.Run(name, func(t *testing.T) {
			text := "body starts <html>" + form + "</html>"
			got := s.Redact(text)
			if strings.Contains(got, form) {
				t.Errorf("Redact(%q) = %q still holds the secret", text, got)
			}
			if !strings.Contains(got, Redacted) {
				t.Errorf("Redact(%q) = %q, want %s", text, got, Redacted)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	s := &Secrets{}
	s.AddBasic("elastic", "changeme-please")
	header := "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:changeme-please"))
	if got := s.Redact("echo: " + header); strings.Contains(got, header[6:]) {
		t.Errorf("base64 user:password survived: %s", got)
	}
}

func TestErrorKeepsChain(t *testing.T) {
	s := NewSecrets("hunter2-secret")
	err := s.Error(pipeline.Permanent(fmt.Errorf("answer: hunter2-secret: %w", http.ErrBodyNotAllowed)))
	if strings.Contains(err.Error(), "hunter2") || !pipeline.IsPermanent(err) || !errors.Is(err, http.ErrBodyNotAllowed) {
		t.Errorf("Error() = %v, permanent %t", err, pipeline.IsPermanent(err))
	}
	if s.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

func TestCheckRedirect(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the second server received %s with headers %v", r.URL, r.Header)
	}))
	defer other.Close()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, srv.URL+"/ok", http.StatusFound)
		case "/ok":
		default:
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		}
	}))
	defer srv.Close()
	c := &http.Client{CheckRedirect: CheckRedirect}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/away", nil)
	req.Header.Set("Authorization", "secret")
	if _, err := c.Do(req); !errors.Is(err, ErrRedirect) {
		t.Errorf("redirect to another port followed: %v", err)
	}
	if resp, err := c.Get(srv.URL + "/same"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("redirect on the same origin: %v", err)
	}
	// https → http on the same host and port is a weaker scheme.
	if err := CheckRedirect(&http.Request{URL: &url.URL{Scheme: "http", Host: "es:443"}},
		[]*http.Request{{URL: &url.URL{Scheme: "https", Host: "es"}}}); !errors.Is(err, ErrRedirect) {
		t.Errorf("https to http allowed: %v", err)
	}
}

func TestCheckEndpoint(t *testing.T) {
	tests := []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"https://es.example:9200", false, true},
		{"http://127.0.0.1:9200", false, true},
		{"http://localhost:9200", false, true},
		{"http://[::1]:9200", false, true},
		{"http://es.example:9200", false, false},
		{"http://user:pw@10.0.0.1:9200", false, false},
		{"http://es.example:9200", true, true},
	}
	for _, tt := range tests {
		err := CheckEndpoint(tt.url, "ELASTICSEARCH_URL", "HWCAUDIT_ELASTICSEARCH_ALLOW_INSECURE", tt.allow)
		if (err == nil) != tt.ok {
			t.Errorf("CheckEndpoint(%q, %t) = %v", tt.url, tt.allow, err)
		}
		if err != nil && (strings.Contains(err.Error(), "pw") || !strings.Contains(err.Error(), "HWCAUDIT_ELASTICSEARCH_ALLOW_INSECURE")) {
			t.Errorf("message %q shows the password or lacks the opt-in", err)
		}
	}
}

func TestCertErrorOnlyForCertificates(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := http.Get(srv.URL) // default pool: the test CA is unknown
	if e := CertError(err, "essink", srv.URL, "set X"); e == nil || !pipeline.IsPermanent(e) || !strings.Contains(e.Error(), srv.URL) {
		t.Errorf("CertError(%v) = %v", err, e)
	}
	if e := CertError(errors.New("connection refused"), "essink", srv.URL, "set X"); e != nil {
		t.Errorf("a network error became %v", e)
	}
}
