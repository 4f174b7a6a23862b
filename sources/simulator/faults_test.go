package simulator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestThrottling(t *testing.T) {
	tests := []struct {
		name       string
		faults     Faults
		statuses   []int
		retryAfter string
	}{
		{"every third with Retry-After", Faults{ThrottleEvery: 3, RetryAfter: 2500 * time.Millisecond},
			[]int{200, 200, 429, 200, 200, 429}, "3"},
		{"every second without Retry-After", Faults{ThrottleEvery: 2},
			[]int{200, 429, 200, 429}, ""},
		{"all", Faults{ThrottleRate: 1, RetryAfter: time.Second},
			[]int{429, 429}, "1"},
		{"off", Faults{}, []int{200, 200, 200}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Faults = tt.faults
			s := New(cfg)
			throttled := 0
			for i, want := range tt.statuses {
				w := get(t, s, auditPath(testProject, testInstance)+"?operation=pull")
				if w.Code != want {
					t.Fatalf("request %d: status %d, want %d", i+1, w.Code, want)
				}
				if w.Code != http.StatusTooManyRequests {
					continue
				}
				throttled++
				if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
				}
				e := decodeError(t, w.Body.Bytes())
				if e.ErrorCode != codeThrottled || e.ErrorMsg != msgThrottled || e.RequestID == "" {
					t.Errorf("429 body %+v", e)
				}
			}
			if st := s.Stats(); st.Throttled != int64(throttled) || st.Requests != int64(len(tt.statuses)) {
				t.Errorf("stats %+v, want %d throttled", st, throttled)
			}
		})
	}

	t.Run("unauthenticated requests are not counted", func(t *testing.T) {
		cfg := testConfig()
		cfg.Faults.ThrottleEvery = 2
		s := New(cfg)
		r := httptest.NewRequest(http.MethodGet, auditPath(testProject, testInstance)+"?operation=pull", nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r) // no credentials: 401, before the throttle
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d", w.Code)
		}
		if c := get(t, s, auditPath(testProject, testInstance)+"?operation=pull").Code; c != 200 {
			t.Errorf("first authenticated request: %d, want 200", c)
		}
		if c := get(t, s, auditPath(testProject, testInstance)+"?operation=pull").Code; c != 429 {
			t.Errorf("second authenticated request: %d, want 429", c)
		}
	})
}

func TestServerErrors(t *testing.T) {
	tests := []struct {
		status     int
		wantStatus int
		code       string
		msg        string
	}{
		{0, 500, codeSWRInternal, msgSWRInternal},
		{500, 500, codeSWRInternal, msgSWRInternal},
		{502, 502, codeBackend, msgBackendUnavailable},
		{503, 503, codeBackend, msgBackendUnavailable},
		{504, 504, codeBackend, msgBackendTimeout},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.wantStatus), func(t *testing.T) {
			cfg := testConfig()
			cfg.Faults = Faults{ServerErrorEvery: 2, ServerErrorStatus: tt.status}
			s := New(cfg)
			for i, want := range []int{200, tt.wantStatus, 200, tt.wantStatus} {
				w := get(t, s, auditPath(testProject, testInstance)+"?operation=pull")
				if w.Code != want {
					t.Fatalf("request %d: status %d, want %d", i+1, w.Code, want)
				}
				if want != 200 {
					if e := decodeError(t, w.Body.Bytes()); e.ErrorCode != tt.code || e.ErrorMsg != tt.msg {
						t.Errorf("body %+v, want %s %q", e, tt.code, tt.msg)
					}
				}
			}
			if st := s.Stats(); st.ServerErrors != 2 || st.Pages != 2 {
				t.Errorf("stats %+v", st)
			}
		})
	}

	t.Run("throttle takes precedence", func(t *testing.T) {
		cfg := testConfig()
		cfg.Faults = Faults{ThrottleEvery: 2, ServerErrorEvery: 2}
		s := New(cfg)
		for i, want := range []int{200, 429, 200, 429} {
			if c := get(t, s, auditPath(testProject, testInstance)+"?operation=pull").Code; c != want {
				t.Errorf("request %d: %d, want %d", i+1, c, want)
			}
		}
	})
}

// The latency tests use contexts that are already cancelled, so they assert
// that a delayed request gives up, without depending on timing.
func TestLatencyRespectsCancellation(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.Latency = time.Hour
	s := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, auditPath(testProject, testInstance)+"?operation=pull", nil)
	r.Header.Set("X-Auth-Token", testToken)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Body.Len() != 0 || w.Code != 200 || w.Result().Header.Get("Content-Type") != "" {
		t.Errorf("a cancelled request got an answer: %d %s", w.Code, w.Body)
	}
}

func TestSlowPages(t *testing.T) {
	cfg := testConfig()
	cfg.Faults = Faults{SlowPageEvery: 2, SlowPageDelay: time.Hour, DriftPerPage: 1}
	s := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	do := func(ctx context.Context) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, auditPath(testProject, testInstance)+"?operation=pull", nil)
		r.Header.Set("X-Auth-Token", testToken)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	// Page 1 is not slow, so even a cancelled request is answered.
	if w := do(ctx); w.Body.Len() == 0 {
		t.Fatal("page 1 was delayed")
	}
	// Page 2 is slow: the cancelled request gives up without an answer.
	if w := do(ctx); w.Body.Len() != 0 {
		t.Fatalf("page 2 was not delayed: %s", w.Body)
	}
	if w := do(context.Background()); w.Body.Len() == 0 {
		t.Fatal("page 3 was delayed")
	}
	if st := s.Stats(); st.Pages != 2 {
		t.Errorf("stats %+v: the abandoned page must not count", st)
	}
}

func TestSetFaults(t *testing.T) {
	s := New(testConfig())
	if c := get(t, s, auditPath(testProject, testInstance)+"?operation=pull").Code; c != 200 {
		t.Fatalf("status %d", c)
	}
	s.SetFaults(Faults{ThrottleRate: 1})
	if c := get(t, s, auditPath(testProject, testInstance)+"?operation=pull").Code; c != 429 {
		t.Errorf("after SetFaults: %d, want 429", c)
	}
	s.SetFaults(Faults{})
	if c := get(t, s, auditPath(testProject, testInstance)+"?operation=pull").Code; c != 200 {
		t.Errorf("after clearing faults: %d, want 200", c)
	}
}

func TestStartLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", "example.com:0", "nonsense"} {
		if _, err := New(testConfig()).Start(addr); err == nil {
			t.Errorf("Start(%q) succeeded", addr)
		}
	}
	s := New(testConfig())
	if err := s.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	base, err := s.Start(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Start(":0"); err == nil {
		t.Error("second Start succeeded")
	}
	resp, err := http.Get(base + auditPath(testProject, testInstance) + "?operation=pull")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated GET: %d", resp.StatusCode)
	}
}
