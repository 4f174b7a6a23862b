// Package s3test runs a real S3 server for tests: versitygw with its POSIX
// backend on a loopback port and a temporary directory.
//
// Start finds the server in this order:
//
//   - HWCAUDIT_TEST_S3_ENDPOINT (with HWCAUDIT_TEST_S3_ACCESS_KEY and
//     HWCAUDIT_TEST_S3_SECRET_KEY): an external server started by someone
//     else. Stop and Restart are then unavailable.
//   - HWCAUDIT_TEST_VERSITYGW: the path of a versitygw binary to start.
//   - {module root}/.cache/bin/versitygw, where scripts/s3server.sh installs
//     it (GOBIN=.cache/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0).
//
// When none is found the test is skipped, unless HWCAUDIT_TEST_S3_REQUIRED=1
// (set by CI), which makes it fail instead.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the tests are written against.
const Version = "v1.8.0"

// Environment variables read by Start.
const (
	EnvEndpoint  = "HWCAUDIT_TEST_S3_ENDPOINT"
	EnvAccessKey = "HWCAUDIT_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "HWCAUDIT_TEST_S3_SECRET_KEY"
	EnvBinary    = "HWCAUDIT_TEST_VERSITYGW"
	EnvRequired  = "HWCAUDIT_TEST_S3_REQUIRED"
)

// Server is a running S3 server.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string

	bin, addr, dir string // empty for an external server

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedBuffer
}

// Start returns a running server, stopped when t ends, or skips t.
func Start(t testing.TB) *Server {
	t.Helper()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		return &Server{Endpoint: ep, AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey), Region: "us-east-1"}
	}
	bin := findBinary()
	if bin == "" {
		msg := fmt.Sprintf("s3test: no S3 server: set %s, or install versitygw with scripts/s3server.sh (GOBIN=.cache/bin go install github.com/versity/versitygw/cmd/versitygw@%s)", EnvEndpoint, Version)
		if os.Getenv(EnvRequired) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{
		AccessKey: "hwcaudit-test",
		SecretKey: "hwcaudit-test-secret-" + randHex(8),
		Region:    "us-east-1",
		bin:       bin,
		dir:       t.TempDir(),
		logs:      &lockedBuffer{},
	}
	// Reserve a port; versitygw binds it again right after. Restart reuses it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	l.Close()
	s.Endpoint = "http://" + s.addr
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func findBinary() string {
	if p := os.Getenv(EnvBinary); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "bin", "versitygw")
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin,
		"--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", s.Region, "--port", s.addr, "--quiet",
		"--health", "/health",
		"posix", s.dir)
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("s3test: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-done:
			return fmt.Errorf("s3test: versitygw exited at start: %s", s.logs.String())
		default:
		}
		resp, err := client.Get(s.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("s3test: versitygw not healthy after 15s (last error %v): %s", err, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Stop stops the server, keeping its data, so that clients fail until
// Restart. It fails t for an external server.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.bin == "" {
		t.Fatal("s3test: cannot stop an external server")
	}
	s.stop()
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.bin == "" {
		t.Fatal("s3test: cannot restart an external server")
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// CanStop reports whether Stop and Restart work (the server is ours).
func (s *Server) CanStop() bool { return s.bin != "" }

// Client returns a path-style client for the server that does not retry,
// so that tests of failures stay fast.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// Bucket creates a new, empty bucket with a unique name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "t-" + randHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: create bucket: %v", err)
	}
	return name
}

// ReadAll returns every object under prefix in bucket, by key in order.
func (s *Server) ReadAll(t testing.TB, bucket, prefix string) (keys []string, bodies [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("s3test: list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	for _, k := range keys {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("s3test: get %s: %v", k, err)
		}
		body, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatalf("s3test: read %s: %v", k, err)
		}
		bodies = append(bodies, body)
	}
	return keys, bodies
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
