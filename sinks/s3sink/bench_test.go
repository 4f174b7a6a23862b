package s3sink

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hwcaudit/hwcaudit/sinks/s3sink/s3test"
	"github.com/hwcaudit/hwcaudit/sinks/sinktest"
)

// BenchmarkWrite measures Write of batches of 2000 events of about 1.2 KB
// against the real S3 server of s3test (versitygw on loopback, POSIX
// backend), which it skips without, like the other tests. Each batch
// spans about 50 minutes, so it becomes one or two gzipped objects (one
// per hour partition), each below PartSize and stored with one PutObject.
// The figures include gzip, request signing and the server's work on the
// same two cores. The batches cycle, so past the first round each Write
// overwrites its objects with the same bytes, as a re-sent batch does.
func BenchmarkWrite(b *testing.B) {
	srv := s3test.Start(b)
	s, err := New(context.Background(), Config{
		Bucket:         srv.Bucket(b),
		Prefix:         "audit",
		Endpoint:       srv.Endpoint,
		ForcePathStyle: true,
		Region:         srv.Region,
		PartSize:       16 << 20,
	}, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")
	})
	if err != nil {
		b.Fatal(err)
	}
	sinktest.Benchmark(b, s, sinktest.Batches(8, 2000))
}
