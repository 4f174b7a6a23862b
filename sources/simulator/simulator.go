// Package simulator is an in-process Huawei Cloud API simulator. It powers
// the exporter's demo command and the sources' tests, so it follows the
// documented API behaviour: parameter limits, paging, error bodies, and an
// API Gateway in front that verifies IAM tokens and SDK-HMAC-SHA256
// signatures on its own (it does not use the SDK's signer), throttles, and
// locks an AK after repeated signature failures.
//
// Each API lives in its own file and registers its routes in New: swr.go
// serves the SWR Enterprise audit log API. Authentication (auth.go), fault
// injection (faults.go) and Huawei-style error bodies (errors.go) are shared
// by all of them.
//
// All data and every fault pattern are pure functions of Config.Seed and the
// order of requests: two servers built from the same Config answer the same
// sequence of requests with identical bytes.
package simulator

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	headerRequestID = "X-Request-Id"
	contentTypeJSON = "application/json;charset=UTF-8"
)

// Config describes what the simulator serves. The zero value serves nothing
// and accepts no credentials.
type Config struct {
	// ProjectID is the one project that exists. A URL naming another project
	// gets 403; an X-Project-Id header naming another project fails
	// authentication with 401.
	ProjectID string
	// Credentials are the AK/SK pairs whose signatures verify.
	Credentials []Credential
	// Tokens are the IAM tokens accepted in X-Auth-Token.
	Tokens []Token
	// Seed drives every generated value and every probabilistic fault.
	Seed int64
	// Now is the server clock, used to check X-Sdk-Date (at most 15 minutes
	// off) and to time AK lockouts. Default time.Now. It does not move the
	// generated data, which is placed by SWR.Start.
	Now func() time.Time
	// SWR is the SWR Enterprise audit log dataset.
	SWR SWRConfig
	// TaurusDB is the TaurusDB (GaussDB for MySQL) audit log file dataset.
	TaurusDB TaurusDBConfig
	// DBSS is the DBSS operation, SQL audit and alarm log dataset.
	DBSS DBSSConfig
	// Artifact is the CodeArts Artifact audit log dataset.
	Artifact ArtifactConfig
	// CTS is the Cloud Trace Service trace dataset of ProjectID.
	CTS CTSConfig
	// Faults are injected failures; all are off in the zero value.
	Faults Faults
}

// Credential is an AK/SK pair.
type Credential struct {
	AK string
	SK string
	// SecurityToken, when set, makes this a temporary credential: requests
	// must send it in X-Security-Token and include that header in the
	// signature.
	SecurityToken string
}

// Token is an IAM token accepted in the X-Auth-Token header.
type Token struct {
	Value string
	// Expired tokens are refused with 401 APIG.0307.
	Expired bool
}

// Stats counts what the simulator has answered since New.
type Stats struct {
	Requests     int64 // requests received
	Pages        int64 // 200 answers
	Records      int64 // records in those answers
	Throttled    int64 // 429 answers
	ServerErrors int64 // 5xx answers
	ClientErrors int64 // 400, 403 and 404 answers
	AuthFailures int64 // 401 answers, whatever the reason
	// SignatureFailures counts failed signature verifications per AK. Five
	// in a row lock the AK for five minutes, as the real gateway does.
	SignatureFailures map[string]int
	// LockedAKs are the AKs locked now by the server clock, sorted.
	LockedAKs []string
}

// Server is the simulator. It is an http.Handler, so it can also be mounted
// in an httptest.Server. All methods are safe for concurrent use.
type Server struct {
	cfg    Config
	now    func() time.Time
	mux    *http.ServeMux
	faults atomic.Pointer[Faults]

	requestSeq atomic.Int64 // every request, numbers X-Request-Id
	faultSeq   atomic.Int64 // authenticated requests, numbers throttling and 5xx
	pageSeq    atomic.Int64 // successful pages, numbers slow pages

	stats struct {
		requests, pages, records                            atomic.Int64
		throttled, serverErrors, clientErrors, authFailures atomic.Int64
	}

	authMu sync.Mutex
	aks    map[string]*akState

	swr *swrAPI

	taurus *taurusAPI
	dbss   *dbssAPI

	artifact *artifactAPI

	cts *ctsAPI

	httpMu  sync.Mutex
	httpSrv *http.Server
}

// New builds a simulator from cfg. It generates nothing up front: records
// are computed from the seed when a page asks for them.
func New(cfg Config) *Server {
	// The caller keeps its slices; the simulator keeps copies.
	cfg.Credentials = slices.Clone(cfg.Credentials)
	cfg.Tokens = slices.Clone(cfg.Tokens)
	cfg.SWR.Instances = slices.Clone(cfg.SWR.Instances)
	cfg.Artifact.Repos = slices.Clone(cfg.Artifact.Repos)
	s := &Server{
		cfg: cfg,
		now: cfg.Now,
		mux: http.NewServeMux(),
		aks: make(map[string]*akState),
	}
	if s.now == nil {
		s.now = time.Now
	}
	f := cfg.Faults
	s.faults.Store(&f)

	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		s.gatewayError(w, http.StatusNotFound, codeAPINotFound, msgAPINotFound)
	})
	s.swr = newSWRAPI(s, cfg.SWR)
	s.taurus, s.dbss = newTaurusAPI(s, cfg.TaurusDB), newDBSSAPI(s, cfg.DBSS)
	s.artifact = newArtifactAPI(s, cfg.Artifact)
	s.cts = newCTSAPI(s, cfg.CTS)
	return s
}

// handle registers an API route behind the gateway: authentication first,
// then injected throttling and 5xx, then h. internal is the body the service
// answers an injected 500 with.
func (s *Server) handle(pattern string, internal serviceErrorBody, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !s.authenticate(w, r) {
			return
		}
		if s.injectFault(w, internal) {
			return
		}
		h(w, r)
	})
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requestSeq.Add(1)
	s.stats.requests.Add(1)
	w.Header().Set(headerRequestID, string(appendHex(nil, hashOf(s.cfg.Seed, saltRequestID, uint64(n)), hashOf(s.cfg.Seed, saltRequestID, uint64(n), 1))))
	if d := s.faults.Load().Latency; d > 0 && !sleep(r, d) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Start serves on addr, which must be a loopback address such as
// "127.0.0.1:0" (an empty host means 127.0.0.1), and returns the base URL,
// e.g. "http://127.0.0.1:41234". A Server can be started once.
func (s *Server) Start(addr string) (baseURL string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("simulator: listen address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("simulator: listen address %q is not a loopback address", addr)
	}

	s.httpMu.Lock()
	defer s.httpMu.Unlock()
	if s.httpSrv != nil {
		return "", errors.New("simulator: already started")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return "", fmt.Errorf("simulator: %w", err)
	}
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(s.httpSrv)
	return "http://" + ln.Addr().String(), nil
}

// Close stops a server begun with Start, dropping open connections. It is a
// no-op if Start was not called.
func (s *Server) Close() error {
	s.httpMu.Lock()
	defer s.httpMu.Unlock()
	if s.httpSrv == nil {
		return nil
	}
	return s.httpSrv.Close()
}

// SetFaults replaces the injected faults; requests already past a decision
// keep it.
func (s *Server) SetFaults(f Faults) {
	s.faults.Store(&f)
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:          s.stats.requests.Load(),
		Pages:             s.stats.pages.Load(),
		Records:           s.stats.records.Load(),
		Throttled:         s.stats.throttled.Load(),
		ServerErrors:      s.stats.serverErrors.Load(),
		ClientErrors:      s.stats.clientErrors.Load(),
		AuthFailures:      s.stats.authFailures.Load(),
		SignatureFailures: make(map[string]int),
	}
	now := s.now()
	s.authMu.Lock()
	for ak, a := range s.aks {
		if a.failures > 0 {
			st.SignatureFailures[ak] = a.failures
		}
		if now.Before(a.lockedUntil) {
			st.LockedAKs = append(st.LockedAKs, ak)
		}
	}
	s.authMu.Unlock()
	sort.Strings(st.LockedAKs)
	return st
}
