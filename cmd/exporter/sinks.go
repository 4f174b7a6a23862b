package main

import (
	"context"
	"strings"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sinks/essink"
	"github.com/hwcaudit/hwcaudit/sinks/filesink"
	"github.com/hwcaudit/hwcaudit/sinks/kafkasink"
	"github.com/hwcaudit/hwcaudit/sinks/s3sink"
	"github.com/hwcaudit/hwcaudit/sinks/stdoutsink"
)

// The destinations the exporter writes to. Adding one is a package under
// sinks/ with its Config (in Config), New and Check, and its row here:
// HWCAUDIT_SINKS, run, check and the insecure-settings warning all take
// their sinks from this table.

// sink wires one destination.
type sink struct {
	// name is the sink in HWCAUDIT_SINKS and in logs and metrics.
	name string
	// validate checks the sink's settings, naming the variable at fault.
	// It runs only when the sink is used, so that an unused sink's
	// required variables are not required. Nil: nothing to check.
	validate func(c *Config) error
	// open builds the sink for a run.
	open func(ctx context.Context, c *Config) (pipeline.Sink, error)
	// check tests that the destination answers, with the sink's own client
	// code, and says what it proved.
	check func(ctx context.Context, c *Config) (string, error)
	// insecure lists the sink's insecure settings in force. Nil: none.
	insecure func(c *Config) []string
}

var sinkTable = []sink{
	{
		name:     "file",
		validate: func(c *Config) error { return c.File.Validate() },
		open:     func(_ context.Context, c *Config) (pipeline.Sink, error) { return filesink.New(c.File) },
		check:    func(_ context.Context, c *Config) (string, error) { return checkDirWritable(c.File.Dir) },
	},
	{
		name:  "stdout",
		open:  func(context.Context, *Config) (pipeline.Sink, error) { return stdoutsink.New(nil), nil },
		check: func(context.Context, *Config) (string, error) { return "nothing to check", nil },
	},
	{
		name:     "kafka",
		validate: func(c *Config) error { return c.Kafka.Validate() },
		open:     func(_ context.Context, c *Config) (pipeline.Sink, error) { return kafkasink.New(c.Kafka) },
		check: func(ctx context.Context, c *Config) (string, error) {
			if err := kafkasink.Check(ctx, c.Kafka); err != nil {
				return "", err
			}
			return strings.Join(c.Kafka.Brokers, ",") + " answered with the cluster's metadata", nil
		},
		insecure: func(c *Config) []string { return c.Kafka.InsecureSettings() },
	},
	{
		name:     "elasticsearch",
		validate: func(c *Config) error { return c.ES.Validate() },
		open:     func(ctx context.Context, c *Config) (pipeline.Sink, error) { return essink.New(ctx, c.ES) },
		check: func(ctx context.Context, c *Config) (string, error) {
			if err := essink.Check(ctx, c.ES); err != nil {
				return "", err
			}
			return "the cluster answered GET / with the configured credentials", nil
		},
		insecure: func(c *Config) []string { return c.ES.InsecureSettings() },
	},
	{
		name:     "s3",
		validate: func(c *Config) error { return c.S3.Validate() },
		open:     func(ctx context.Context, c *Config) (pipeline.Sink, error) { return s3sink.New(ctx, c.S3) },
		check:    func(ctx context.Context, c *Config) (string, error) { return checkS3(ctx, c.S3) },
		insecure: func(c *Config) []string { return c.S3.InsecureSettings() },
	},
}

// sinkNamed is the row of the sink called name.
func sinkNamed(name string) (sink, bool) {
	for _, s := range sinkTable {
		if s.name == name {
			return s, true
		}
	}
	return sink{}, false
}

// sinkNames are the names HWCAUDIT_SINKS accepts.
func sinkNames() []string {
	names := make([]string, len(sinkTable))
	for i, s := range sinkTable {
		names[i] = s.name
	}
	return names
}
