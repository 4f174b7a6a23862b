package s3sink

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/egress/egresstest"
)

const (
	fakeAccessKey = "AKIDFAKEHWCAUDIT0001"
	fakeSecretKey = "fake/secret+key=HWCAUDIT-0123456789abcdef"
	fakeToken     = "FwoGZXIvYXdzEFAKE/session+token=="
)

// fakeSink is a sink writing to endpoint (a test server) with static keys
// and a session token, retrying once.
func fakeSink(t *testing.T, endpoint string, mod func(*Config)) *Sink {
	t.Helper()
	cfg := Config{Bucket: "b", PartSize: 16 << 20, Endpoint: endpoint, ForcePathStyle: true, Region: "us-east-1"}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(fakeAccessKey, fakeSecretKey, fakeToken)
		o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 2)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func oneEvent() *pipeline.Batch {
	return &pipeline.Batch{Stream: "s/1", Events: []pipeline.Event{event("a", "d", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}}
}

// TestConditionalPutFallback: a store that does not implement
// If-None-Match (501) is written to without it, from then on.
func TestConditionalPutFallback(t *testing.T) {
	var mu sync.Mutex
	var conditional, plain int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("If-None-Match") != "" {
			conditional++
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, `<?xml version="1.0"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`)
			return
		}
		plain++
		w.Header().Set("ETag", `"x"`)
	}))
	defer srv.Close()
	s := fakeSink(t, srv.URL, nil)
	for range 2 {
		if err := s.Write(context.Background(), oneEvent()); err != nil {
			t.Fatal(err)
		}
	}
	if conditional != 1 || plain != 2 {
		t.Errorf("%d conditional and %d plain PUTs, want 1 and 2", conditional, plain)
	}
}

// TestRedirectsStayOnEndpoint: a store that redirects (307 keeps the
// method and body, 302 would turn the PUT into a GET) to another server
// gets an error; the other server receives nothing, least of all the
// signature or the session token.
func TestRedirectsStayOnEndpoint(t *testing.T) {
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusFound, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			url, received := egresstest.Redirector(t, code, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"x"`)
			})
			err := fakeSink(t, url, nil).Write(context.Background(), oneEvent())
			if err == nil {
				t.Error("Write through a redirect to another server succeeded")
			}
			if got := received(); len(got) > 0 {
				t.Errorf("the other server received %d request(s), first with headers %v", len(got), got[0])
			}
		})
	}
}

// TestErrorsHoldNoSecret: a store echoing the keys in its error, in every
// form, never gets them into the sink's error.
func TestErrorsHoldNoSecret(t *testing.T) {
	for _, secret := range []string{fakeSecretKey, fakeToken, fakeAccessKey} {
		for name, form := range egresstest.SecretForms(secret) {
			t.Run(secret[:6]+"/"+name, func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					w.WriteHeader(http.StatusForbidden)
					fmt.Fprintf(w, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>key %s refused; you sent %s</Message></Error>`,
						form, r.Header.Get("Authorization"))
				}))
				defer srv.Close()
				err := fakeSink(t, srv.URL, nil).Write(context.Background(), oneEvent())
				if err == nil || !pipeline.IsPermanent(err) {
					t.Fatalf("Write = %v, want a permanent error", err)
				}
				if strings.Contains(err.Error(), form) || strings.Contains(err.Error(), fakeAccessKey) {
					t.Errorf("error shows a key: %v", err)
				}
			})
		}
	}
}

// TestCertificateErrorIsPermanent: a store whose certificate does not
// verify is not retried like a network fault.
func TestCertificateErrorIsPermanent(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	err := fakeSink(t, srv.URL, nil).Write(context.Background(), oneEvent())
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "SSL_CERT_FILE") {
		t.Errorf("Write = %v, want a permanent error naming %s and the fix", err, srv.URL)
	}
}

// TestTimeoutBoundsTricklingStore: a store that sends headers and then one
// byte a second cannot hold a Write past its timeouts.
func TestTimeoutBoundsTricklingStore(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		for range 60 {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			w.Write([]byte(" "))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	defer close(stop)
	done := make(chan error, 1)
	go func() {
		done <- fakeSink(t, srv.URL, func(c *Config) { c.Timeout = time.Second }).Write(context.Background(), oneEvent())
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Write succeeded against a trickling store")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Write still running after 20s with HWCAUDIT_S3_TIMEOUT=1s")
	}
}

func TestPlainHTTPNeedsOptIn(t *testing.T) {
	c := Config{Bucket: "b", PartSize: 16 << 20, Endpoint: "http://minio:9000"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "HWCAUDIT_S3_ALLOW_INSECURE") {
		t.Errorf("Validate(http://minio:9000) = %v, want a refusal naming HWCAUDIT_S3_ALLOW_INSECURE", err)
	}
	c.AllowInsecure = true
	if err := c.Validate(); err != nil || len(c.InsecureSettings()) != 1 {
		t.Errorf("with the opt-in: %v, insecure settings %q", err, c.InsecureSettings())
	}
	if err := (Config{Bucket: "b", PartSize: 16 << 20, Endpoint: "http://127.0.0.1:9000"}).Validate(); err != nil {
		t.Errorf("loopback refused: %v", err)
	}
}
