package essink

import (
	"context"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Check builds the client exactly as New does (nodes, credentials, TLS,
// Timeout, redirect refusal), without Setup, and asks the cluster for its
// information (GET /): a check that passes means Write can reach the
// cluster and is not refused its credentials. Errors are classified and
// redacted as Write's are.
func Check(ctx context.Context, cfg Config) error {
	cfg.Setup = false
	s, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	return s.redact(s.put(ctx, "essink: check: GET / on "+s.nodes, func(ctx context.Context) (*esapi.Response, error) {
		return esapi.InfoRequest{}.Do(ctx, s.client)
	}))
}
