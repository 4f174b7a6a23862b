package checkpoint

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hwcaudit/hwcaudit/sinks/egress/egresstest"
)

const (
	fakeSecretKey = "fake/secret+key=HWCAUDIT-checkpoint-0123"
	fakeToken     = "FwoGZXIvYXdzEFAKE/checkpoint+token=="
)

// fakeStore is an S3Store on endpoint (a test server) with static keys and
// a session token, without retries.
func fakeStore(t *testing.T, endpoint string, timeout time.Duration) *S3Store {
	t.Helper()
	s, err := NewS3Store(context.Background(), S3Config{Bucket: "b", Endpoint: endpoint, Region: "us-east-1", PathStyle: true, Timeout: timeout},
		"1.2.3", func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider("AKIDFAKECHECKPOINT01", fakeSecretKey, fakeToken)
			o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 1)
		})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestS3RedirectsStayOnEndpoint: a store that redirects a checkpoint read
// to another server gets an error; the other server receives nothing (Go
// keeps Authorization across ports of one host, and forwards
// X-Amz-Security-Token everywhere).
func TestS3RedirectsStayOnEndpoint(t *testing.T) {
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusFound} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			url, received := egresstest.Redirector(t, code, http.NotFound)
			_, err := fakeStore(t, url, time.Minute).Load(context.Background(), "swr/a")
			if err == nil {
				t.Error("Load through a redirect to another server succeeded")
			}
			if got := received(); len(got) > 0 {
				t.Errorf("the other server received %d request(s), first with headers %v", len(got), got[0])
			}
		})
	}
}

// TestS3ReadIsBounded: a checkpoint object larger than MaxObjectBytes is
// refused without being read into memory.
func TestS3ReadIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		w.Write([]byte(`{"stream":"swr/a","cursor":"`))
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range MaxObjectBytes>>20 + 8 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		w.Write([]byte(`"}`))
	}))
	defer srv.Close()
	_, err := fakeStore(t, srv.URL, time.Minute).Load(context.Background(), "swr/a")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load = %v, want an error about the object's size", err)
	}
}

// TestS3TimeoutBoundsTricklingStore: a store that sends headers and then
// one byte a second cannot hold a Load past the request timeout.
func TestS3TimeoutBoundsTricklingStore(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
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
		_, err := fakeStore(t, srv.URL, time.Second).Load(context.Background(), "swr/a")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Load succeeded against a trickling store")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Load still running after 20s with a 1s timeout")
	}
}

// TestS3ErrorsHoldNoKey: a store echoing the secret key or the session
// token in its error never gets them into the store's errors.
func TestS3ErrorsHoldNoKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>key %s token %s</Message></Error>`, fakeSecretKey, fakeToken)
	}))
	defer srv.Close()
	s := fakeStore(t, srv.URL, time.Minute)
	_, err := s.Load(context.Background(), "swr/a")
	if err == nil {
		t.Fatal("Load succeeded")
	}
	err2 := s.Save(context.Background(), "swr/a", []byte(`{}`))
	_, err3 := s.Lock(context.Background())
	for _, e := range []error{err, err2, err3} {
		if e != nil && (strings.Contains(e.Error(), fakeSecretKey) || strings.Contains(e.Error(), fakeToken)) {
			t.Errorf("error shows a key: %v", e)
		}
	}
}
