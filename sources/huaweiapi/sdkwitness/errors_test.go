package sdkwitness_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"

	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi/sdkwitness"
)

// Our client must read the code and message of an error answer where the
// official SDK reads them: top-level error_code/error_msg (API Gateway,
// SWR, TaurusDB), code/message, or nested as DBSS documents
// ({"error":{"error_code":…,"error_msg":…}}).
func TestErrorBodiesReadAsTheSDKReadsThem(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"gateway", 401, `{"error_code":"APIG.0301","error_msg":"Incorrect IAM authentication information","request_id":"r1"}`},
		{"SWR with encoded message", 403, `{"error_code":"SWR.0403","error_msg":"denied","encoded_authorization_message":"xyz"}`},
		{"TaurusDB", 400, `{"error_code":"DBS.200001","error_msg":"Invalid parameter."}`},
		{"DBSS nested", 400, `{"error":{"error_code":"DBSS.XXXX","error_msg":"XXX"}}`},
		{"DBSS nested 500", 500, `{"error":{"error_code":"DBSS.0500","error_msg":"Internal server error."}}`},
		{"code and message", 404, `{"code":"CloudArtifact.404","message":"repository not found"}`},
		{"code and message nested", 400, `{"status":"error","error":{"code":"E1","message":"bad page_size"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := sdkwitness.NewRecorder(t, sdkwitness.Answer(tc.status, tc.body))
			api := sdkwitness.OurClient(t, sdkwitness.AK, sdkwitness.SK, sdkwitness.ProjectID)
			_, err := api.Do(context.Background(), huaweiapi.Request{Method: http.MethodGet, Endpoint: rec.URL, Path: "/v1/x"})
			var ours *huaweiapi.APIError
			if !errors.As(err, &ours) {
				t.Fatalf("Do: %v, want an APIError", err)
			}
			sdk := sdkerr.NewServiceResponseError(&http.Response{
				StatusCode: tc.status,
				Header:     http.Header{"Content-Type": {"application/json"}},
				Body:       io.NopCloser(strings.NewReader(tc.body)),
			})
			if ours.Code != sdk.ErrorCode || ours.Message != sdk.ErrorMessage {
				t.Errorf("ours code %q message %q; the SDK's code %q message %q", ours.Code, ours.Message, sdk.ErrorCode, sdk.ErrorMessage)
			}
		})
	}
}
