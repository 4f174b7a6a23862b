package simulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

const (
	testProject   = "5d1c0f3a9b8e4c7d6a5f4e3d2c1b0a99"
	testInstance  = "inst-a"
	testInstanceB = "inst-b"
	testAK        = "AKTEST00000000000001"
	testSK        = "sk-test-secret"
	testTempAK    = "AKTEMP00000000000002"
	testTempSK    = "sk-temp-secret"
	testSecToken  = "security-token-for-temp-ak"
	testToken     = "token-ok"
	testExpired   = "token-expired"
)

var testStart = time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)

func testConfig() Config {
	return Config{
		ProjectID: testProject,
		Credentials: []Credential{
			{AK: testAK, SK: testSK},
			{AK: testTempAK, SK: testTempSK, SecurityToken: testSecToken},
		},
		Tokens: []Token{{Value: testToken}, {Value: testExpired, Expired: true}},
		Seed:   42,
		SWR: SWRConfig{
			Instances:           []string{testInstance, testInstanceB},
			RecordsPerOperation: 25,
			Start:               testStart,
			Interval:            time.Second,
		},
	}
}

func auditPath(project, instance string) string {
	return "/v2/" + project + "/instances/" + instance + "/audit-logs"
}

// get sends a token-authenticated GET straight to the handler.
func get(t testing.TB, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("X-Auth-Token", testToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type testRecord struct {
	ID           int64  `json:"id"`
	OpTime       string `json:"op_time"`
	Operation    string `json:"operation"`
	Resource     string `json:"resource"`
	ResourceType string `json:"resource_type"`
	Username     string `json:"username"`
}

type testPage struct {
	AuditLogs []testRecord `json:"audit_logs"`
	Total     int64        `json:"total"`
}

type testError struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id"`
}

// getPage fetches a page and fails the test unless it is a 200.
func getPage(t testing.TB, h http.Handler, instance, query string) testPage {
	t.Helper()
	w := get(t, h, auditPath(testProject, instance)+"?"+query)
	if w.Code != http.StatusOK {
		t.Fatalf("GET ?%s: status %d, body %s", query, w.Code, w.Body)
	}
	var p testPage
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("GET ?%s: %v in %s", query, err, w.Body)
	}
	return p
}

func decodeError(t testing.TB, body []byte) testError {
	t.Helper()
	var e testError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	return e
}
