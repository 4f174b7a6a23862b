package simulator

import (
	"encoding/json"
	"net/http"
)

// Error codes and messages. Where a code or message is marked "documented",
// it is quoted from Huawei Cloud's public documentation; the others are
// plausible stand-ins in the same style, because no published source was
// found for them.
const (
	// API Gateway (APIG) codes, answered before a request reaches a service.
	// Documented: API Gateway error code table (devg-apisign/api-sign-errorcode)
	// and the APIG FAQ "Incorrect IAM authentication information"
	// (apig_faq/apig-faq-0003).
	codeAPINotFound  = "APIG.0101" // documented, 404
	codeIAMAuth      = "APIG.0301" // documented, 401
	codeTokenExpired = "APIG.0307" // documented, 401
	codeThrottled    = "APIG.0308" // documented, 429
	codeBackend      = "APIG.0201" // documented with 502 "Backend unavailable." and 504 "Backend timeout."

	msgAPINotFound = "The API does not exist or has not been published in the environment." // documented
	msgIAMPrefix   = "Incorrect IAM authentication information: "                           // documented prefix
	msgSignature   = msgIAMPrefix + "verify aksk signature fail"                            // documented; detail follows ", "
	msgAKLocked    = msgIAMPrefix + "AK access failed to reach the limit,forbidden."        // documented
	msgNoToken     = msgIAMPrefix + "x-auth-token not found"                                // documented (OCR FAQ ocr_01_0063)
	msgBadToken    = msgIAMPrefix + "decrypt token fail"                                    // documented
	msgTokenExpiry = "The token must be updated."                                           // documented (OCR FAQ ocr_01_0089)
	// The documented APIG.0308 message names the policy and its limit
	// ("The throttling threshold has been reached: policy user over
	// ratelimit,limit:XX,time:1 minute", OCR FAQ ocr_01_0041); the limit is
	// made up, as the simulator throttles by pattern rather than by rate.
	msgThrottled          = "The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute"
	msgBackendUnavailable = "Backend unavailable." // documented for 502; the simulator also uses it for 503
	msgBackendTimeout     = "Backend timeout."     // documented for 504

	// SWR service codes. The SVCSTG.SWR.<status><serial> scheme and the three
	// codes below marked documented come from the SWR error code tables
	// (api-swr/ErrorCode, api-swr2/ErrorCode).
	codeSWRInvalidParam     = "SVCSTG.SWR.4000014" // documented: invalid request parameter
	codeSWRForbidden        = "SVCSTG.SWR.4030170" // documented: "Insufficient permissions"
	codeSWRInternal         = "SVCSTG.SWR.5000008" // documented: "Failed to obtain the list."
	codeSWRInstanceNotFound = "SVCSTG.SWR.4040101" // NOT documented: stand-in for "instance not found"

	msgSWRForbidden = "Insufficient permissions"                          // documented
	msgSWRInternal  = "Internal server error: Failed to obtain the list." // documented
)

// gatewayErrorBody is the body API Gateway answers with; it carries the
// request id, as the documented examples do.
type gatewayErrorBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id"`
}

// serviceErrorBody is the body the SWR API reference documents for every
// error status.
type serviceErrorBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

// gatewayError answers as API Gateway would and counts the answer.
func (s *Server) gatewayError(w http.ResponseWriter, status int, code, msg string) {
	s.writeError(w, status, gatewayErrorBody{code, msg, w.Header().Get(headerRequestID)})
}

// serviceError answers as the backing cloud service would and counts the
// answer.
func (s *Server) serviceError(w http.ResponseWriter, status int, code, msg string) {
	s.writeError(w, status, serviceErrorBody{code, msg})
}

func (s *Server) writeError(w http.ResponseWriter, status int, body any) {
	switch {
	case status == http.StatusUnauthorized:
		s.stats.authFailures.Add(1)
	case status == http.StatusTooManyRequests:
		s.stats.throttled.Add(1)
	case status >= 500:
		s.stats.serverErrors.Add(1)
	default:
		s.stats.clientErrors.Add(1)
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err) // the bodies are fixed structs of strings
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
