package s3sink

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Check asks for the bucket (HeadBucket) with the client New builds
// (endpoint, credentials, TLS, redirect refusal): a check that passes means
// the store answers, the bucket exists and the credentials are accepted.
// Write permission is not tested. Errors are classified and redacted as
// Write's are.
func Check(ctx context.Context, cfg Config) error {
	client, err := NewClient(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return client.Classify(fmt.Errorf("HeadBucket %s: %w", cfg.Bucket, err))
	}
	return nil
}
