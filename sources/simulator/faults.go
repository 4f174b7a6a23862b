package simulator

import (
	"net/http"
	"strconv"
	"time"
)

// Faults are failures the simulator injects. The zero value injects none.
// Patterns are deterministic: "every Nth" counts from the first request the
// fault applies to, and rates are drawn from Config.Seed and that count.
type Faults struct {
	// Latency delays every response, including errors. A request whose
	// context ends first gets no answer.
	Latency time.Duration

	// ThrottleEvery makes every Nth authenticated request answer 429 with
	// APIG.0308. 0 disables.
	ThrottleEvery int
	// ThrottleRate throttles each authenticated request with this
	// probability, in [0, 1].
	ThrottleRate float64
	// RetryAfter, when positive, is sent with each 429 as a Retry-After
	// header in whole seconds, rounded up. When zero no header is sent.
	RetryAfter time.Duration
	// NoRetryAfterRate is the fraction of 429s sent without Retry-After
	// although RetryAfter is set, so that a client sees throttling both
	// with and without it, in [0, 1]. 0: every 429 carries it.
	NoRetryAfterRate float64

	// ServerErrorEvery makes every Nth authenticated request that was not
	// throttled answer ServerErrorStatus. 0 disables.
	ServerErrorEvery int
	// ServerErrorRate fails each authenticated, unthrottled request with this
	// probability, in [0, 1].
	ServerErrorRate float64
	// ServerErrorStatus is 500 (the default, with the service's internal
	// error body), 502, 503 or 504 (with API Gateway's backend error body).
	ServerErrorStatus int

	// DriftPerPage inserts this many new records at the newest end of the
	// list each successful page was cut from, right after cutting it, so a
	// client paging by offset sees every later page shifted.
	DriftPerPage int

	// MalformedRate is the fraction of records served malformed, in every
	// API: for SWR id as a string, id missing, or op_time not a time; for
	// the others the same three in their own fields (see hostile.go).
	// Which records, and how, is decided by Config.Seed and the record's
	// identity; the Malformed field of SWRRecord, ArtifactRecord,
	// DBSSRecord and TaurusDBRecord reports it.
	MalformedRate float64

	// OddRate is the fraction of well-formed records served odd but valid:
	// unicode and emoji, characters that need escaping, very long strings,
	// empty or null optional members, unknown extra members (the Odd*
	// kinds). A client must map them like any other record. The Odd field
	// of each record type reports it.
	OddRate float64

	// SlowPageEvery delays every Nth successful page by SlowPageDelay, on
	// top of Latency. 0 disables.
	SlowPageEvery int
	SlowPageDelay time.Duration
}

// injectFault answers with an injected 429 or 5xx if this authenticated
// request is due one, and reports whether it did. internal is the service's
// body for a 500.
func (s *Server) injectFault(w http.ResponseWriter, internal serviceErrorBody) bool {
	n := s.faultSeq.Add(1)
	f := s.faults.Load()
	seed := s.cfg.Seed

	if every(n, f.ThrottleEvery) || chance(seed, saltThrottle, n, f.ThrottleRate) {
		if f.RetryAfter > 0 && !chance(seed, saltNoRetryAfter, n, f.NoRetryAfterRate) {
			secs := (f.RetryAfter + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		}
		s.gatewayError(w, http.StatusTooManyRequests, codeThrottled, msgThrottled)
		return true
	}
	if every(n, f.ServerErrorEvery) || chance(seed, saltServerError, n, f.ServerErrorRate) {
		switch f.ServerErrorStatus {
		case http.StatusBadGateway, http.StatusServiceUnavailable:
			s.gatewayError(w, f.ServerErrorStatus, codeBackend, msgBackendUnavailable)
		case http.StatusGatewayTimeout:
			s.gatewayError(w, f.ServerErrorStatus, codeBackend, msgBackendTimeout)
		default:
			s.serviceError(w, http.StatusInternalServerError, internal.ErrorCode, internal.ErrorMsg)
		}
		return true
	}
	return false
}

// slowPage delays the response if this successful page is due to be slow,
// and reports whether the request is still wanted.
func (s *Server) slowPage(r *http.Request) bool {
	n := s.pageSeq.Add(1)
	f := s.faults.Load()
	if every(n, f.SlowPageEvery) && f.SlowPageDelay > 0 {
		return sleep(r, f.SlowPageDelay)
	}
	return true
}

// sleep waits d or until r's context ends, and reports whether d elapsed.
func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
