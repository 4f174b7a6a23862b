package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// variable documents one environment variable for `exporter help`. A test
// checks this table against the env tags of Config, so neither can drift.
type variable struct {
	name, def, doc string
}

var variables = []variable{
	{"HWCAUDIT_SINKS", "file", "comma list of destinations: file, stdout, kafka, elasticsearch, s3"},
	{"HWCAUDIT_REGION", "", "Huawei Cloud region, e.g. cn-north-4 (builds default endpoints, fills cloud.region)"},
	{"HWCAUDIT_PROJECT_ID", "$HUAWEICLOUD_SDK_PROJECT_ID", "project whose audit logs are read"},
	{"HWCAUDIT_START_FROM", "24h", "where a stream without checkpoint starts: RFC 3339 time or duration ago (72h, 7d)"},
	{"HWCAUDIT_CHECKPOINT_URL", "file://./state", "checkpoint store: file://DIR or s3://BUCKET/PREFIX[?endpoint=…&region=…&path_style=true&lease_ttl=2m]"},
	{"HWCAUDIT_DEADLETTER", "file://./out/deadletter", "where records that cannot be mapped or delivered go, with the reason: file://DIR, or s3://BUCKET/PREFIX (one gzip NDJSON object per batch; endpoint, region, path style and SSE from HWCAUDIT_S3_*)"},
	{"HWCAUDIT_FILE_DIR", "./out", "file sink: root directory, one subdirectory per dataset"},
	{"HWCAUDIT_FILE_MAX_BYTES", "67108864", "file sink: publish a file and start the next at this size"},
	{"HWCAUDIT_FILE_MAX_AGE", "1h", "file sink: publish a file once it is this old (0 disables)"},
	{"HWCAUDIT_KAFKA_BROKERS", "", "Kafka sink: brokers, comma list of host:port"},
	{"HWCAUDIT_KAFKA_TOPIC", "{dataset}", "Kafka sink: topic; {dataset} is replaced by event.dataset"},
	{"HWCAUDIT_KAFKA_AUTO_CREATE_TOPICS", "false", "Kafka sink: let the broker create missing topics"},
	{"HWCAUDIT_KAFKA_COMPRESSION", "zstd", "Kafka sink: none, gzip, snappy, lz4 or zstd"},
	{"HWCAUDIT_KAFKA_BATCH_SIZE", "1000", "Kafka sink: most messages in one produce request"},
	{"HWCAUDIT_KAFKA_BATCH_BYTES", "1048576", "Kafka sink: largest produce request"},
	{"HWCAUDIT_KAFKA_BATCH_TIMEOUT", "5ms", "Kafka sink: wait for a batch to fill"},
	{"HWCAUDIT_KAFKA_MAX_MESSAGE_BYTES", "1048576", "Kafka sink: larger events go to the dead letter (the broker's message.max.bytes)"},
	{"HWCAUDIT_KAFKA_WRITE_TIMEOUT", "10s", "Kafka sink: timeout of one produce request"},
	{"HWCAUDIT_KAFKA_TLS", "false", "Kafka sink: connect with TLS"},
	{"HWCAUDIT_KAFKA_TLS_CA_FILE", "", "Kafka sink: CA bundle to verify the brokers"},
	{"HWCAUDIT_KAFKA_TLS_CERT_FILE", "", "Kafka sink: client certificate"},
	{"HWCAUDIT_KAFKA_TLS_KEY_FILE", "", "Kafka sink: client key"},
	{"HWCAUDIT_KAFKA_TLS_INSECURE_SKIP_VERIFY", "false", "Kafka sink: skip broker certificate checks (only when asked)"},
	{"HWCAUDIT_KAFKA_SASL_MECHANISM", "", "Kafka sink: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Huawei DMS uses SASL_SSL)"},
	{"HWCAUDIT_KAFKA_ALLOW_INSECURE", "false", "Kafka sink: accept SASL without TLS to brokers that are not on loopback"},
	{"HWCAUDIT_KAFKA_SASL_USERNAME", "", "Kafka sink: SASL user"},
	{"HWCAUDIT_KAFKA_SASL_PASSWORD", "", "Kafka sink: SASL password"},
	{"HWCAUDIT_S3_BUCKET", "", "S3 sink: bucket (Huawei OBS, AWS S3, MinIO…); credentials and region from the AWS default chain"},
	{"HWCAUDIT_S3_PREFIX", "", "S3 sink: key prefix; objects go under {prefix}/dataset=…/year=…/month=…/day=…/hour=…/"},
	{"HWCAUDIT_S3_ENDPOINT", "", "S3 sink: endpoint of an S3-compatible store, e.g. https://obs.cn-north-4.myhuaweicloud.com"},
	{"HWCAUDIT_S3_ALLOW_INSECURE", "false", "S3 sink: accept a plain http:// endpoint that is not on loopback"},
	{"HWCAUDIT_S3_TIMEOUT", "5m", "S3 sink: one request, from sending to reading the whole answer"},
	{"HWCAUDIT_S3_FORCE_PATH_STYLE", "false", "S3 sink: path-style requests (MinIO and most self-hosted stores)"},
	{"HWCAUDIT_S3_REGION", "", "S3 sink: region, when the AWS chain has none"},
	{"HWCAUDIT_S3_SSE", "", "S3 sink: server-side encryption, AES256 or aws:kms"},
	{"HWCAUDIT_S3_SSE_KMS_KEY_ID", "", "S3 sink: KMS key for aws:kms"},
	{"HWCAUDIT_S3_PART_SIZE", "16777216", "S3 sink: objects larger than this are uploaded in parts of this size (at least 5242880, 5 MiB)"},
	{"ELASTICSEARCH_URL", "", "Elasticsearch sink: cluster URLs, comma list (the client's own variable); required, no default"},
	{"HWCAUDIT_ELASTICSEARCH_ALLOW_INSECURE", "false", "Elasticsearch sink: accept plain http:// nodes that are not on loopback"},
	{"HWCAUDIT_ELASTICSEARCH_API_KEY", "", "Elasticsearch sink: API key (base64 id:key)"},
	{"HWCAUDIT_ELASTICSEARCH_USERNAME", "", "Elasticsearch sink: basic-auth user, instead of an API key"},
	{"HWCAUDIT_ELASTICSEARCH_PASSWORD", "", "Elasticsearch sink: basic-auth password"},
	{"HWCAUDIT_ELASTICSEARCH_CA_FILE", "", "Elasticsearch sink: CA bundle to verify the cluster"},
	{"HWCAUDIT_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY", "false", "Elasticsearch sink: skip certificate checks (only when asked)"},
	{"HWCAUDIT_ELASTICSEARCH_TARGET", "logs-{dataset}-{namespace}", "Elasticsearch sink: data stream (logs-*) or index; {dataset} and {namespace} are replaced"},
	{"HWCAUDIT_ELASTICSEARCH_NAMESPACE", "default", "Elasticsearch sink: data stream namespace"},
	{"HWCAUDIT_ELASTICSEARCH_BULK_MAX_BYTES", "5242880", "Elasticsearch sink: largest bulk request"},
	{"HWCAUDIT_ELASTICSEARCH_BULK_MAX_DOCS", "1000", "Elasticsearch sink: most documents in one bulk request"},
	{"HWCAUDIT_ELASTICSEARCH_COMPRESS", "false", "Elasticsearch sink: gzip bulk request bodies"},
	{"HWCAUDIT_ELASTICSEARCH_SETUP", "false", "Elasticsearch sink: install index and component templates for the huaweicloud.* fields at start"},
	{"HWCAUDIT_ELASTICSEARCH_ITEM_RETRIES", "3", "Elasticsearch sink: re-sends of items refused with 429/5xx within one write"},
	{"HWCAUDIT_ELASTICSEARCH_RETRY_BACKOFF", "500ms", "Elasticsearch sink: first wait before re-sending refused items"},
	{"HWCAUDIT_ELASTICSEARCH_TIMEOUT", "90s", "Elasticsearch sink: one request, from sending it to reading the whole answer"},
	{"HWCAUDIT_SWR_INSTANCES", "", "SWR Enterprise instance ids, comma list"},
	{"HWCAUDIT_SWR_OPERATIONS", "pull,create,delete", "SWR operations to read, one stream each"},
	{"HWCAUDIT_SWR_ENDPOINT", "https://swr-api.{region}.myhuaweicloud.com", "SWR API endpoint"},
	{"HWCAUDIT_SWR_PAGE_SIZE", "100", "largest page requested from SWR (20..100)"},
	{"HWCAUDIT_ARTIFACT_TENANT_ID", "", "CodeArts Artifact tenant id"},
	{"HWCAUDIT_ARTIFACT_REPOS", "", "CodeArts Artifact repositories, comma list of module/repo (module file or repository)"},
	{"HWCAUDIT_ARTIFACT_ENDPOINT", "https://{artifact host for the region}", "CodeArts Artifact API endpoint (required for regions the exporter has no host for)"},
	{"HWCAUDIT_ARTIFACT_TIMEZONE", "+08:00", "zone of CodeArts Artifact's zone-less times"},
	{"HWCAUDIT_ARTIFACT_PAGE_SIZE", "100", "largest page requested from CodeArts Artifact (20..100)"},
	{"HWCAUDIT_GAUSSDB_INSTANCES", "", "TaurusDB (GaussDB for MySQL) instance ids, comma list"},
	{"HWCAUDIT_GAUSSDB_ENDPOINT", "https://{gaussdb host for the region}", "TaurusDB API endpoint (required for regions the exporter has no host for)"},
	{"HWCAUDIT_GAUSSDB_LOOKBACK", "24h", "TaurusDB: each query starts this long before its window, so a file is found whatever time the API filters on; at least the longest file span"},
	{"HWCAUDIT_GAUSSDB_PAGE_SIZE", "100", "page size for TaurusDB (1..100)"},
	{"HWCAUDIT_DBSS_INSTANCES", "", "DBSS instance ids, comma list"},
	{"HWCAUDIT_DBSS_ENDPOINT", "https://dbss.{region}.myhuaweicloud.com", "DBSS API endpoint"},
	{"HWCAUDIT_DBSS_PAGE_SIZE", "100", "page size for DBSS (1..100)"},
	{"HWCAUDIT_CTS_ENABLED", "false", "read the Cloud Trace Service traces of HWCAUDIT_PROJECT_ID"},
	{"HWCAUDIT_CTS_TRACE_TYPES", "system", "CTS trace types to read, one stream each: system (management), data (OBS data traces)"},
	{"HWCAUDIT_CTS_ENDPOINT", "https://cts.{region}.myhuaweicloud.com", "CTS API endpoint (eu-west-101: https://cts.eu-west-101.myhuaweicloud.eu)"},
	{"HWCAUDIT_CTS_PAGE_SIZE", "200", "page size for CTS (1..200)"},
	{"HWCAUDIT_CTS_LOOKBACK", "10m", "CTS: each query starts this long before its window, so a trace recorded late is found if the API selects by its time (0..12h)"},
	{"HWCAUDIT_SETTLE_DELAY", "5m", "TaurusDB/DBSS/CTS: read a time range only once it is this old (late records)"},
	{"HWCAUDIT_WINDOW_MAX_RECORDS", "5000", "TaurusDB/DBSS/CTS: split a time range holding more records than this (100..1000000)"},
	{"HWCAUDIT_CREDENTIALS", "env,profile,metadata,pod-identity", "where AK/SK credentials are looked for, in order (Huawei SDK providers)"},
	{"HWCAUDIT_AUTH_TOKEN", "", "static IAM token (X-Auth-Token) instead of AK/SK signing; expires after 24h"},
	{"HWCAUDIT_MAX_RPS", "10", "requests per second per API endpoint, across all streams (greater than 0, fractions allowed)"},
	{"HWCAUDIT_HTTP_TIMEOUT", "30s", "timeout of one API request"},
	{"HWCAUDIT_HTTP_MAX_BODY_BYTES", "16777216", "largest API response accepted (at least 1024)"},
	{"HWCAUDIT_BATCH_SIZE", "2000", "most events in one sink write"},
	{"HWCAUDIT_PARALLEL_STREAMS", "4", "streams exported at once"},
	{"HWCAUDIT_PPROF_DIR", "", "directory for a CPU profile (cpu.pprof), an allocation profile at exit (heap.pprof) and the heap at its peak (heap-peak.pprof) of the run, for go tool pprof"},
	{"HWCAUDIT_CONCURRENCY", "4", "API requests one stream keeps in flight while catching up (1..64), within HWCAUDIT_MAX_RPS"},
	{"HWCAUDIT_SHUTDOWN_GRACE", "10s", "time in-flight writes get to finish after SIGTERM/SIGINT"},
	{"HWCAUDIT_MAX_RUN_DURATION", "45m", "a run stops after this, commits what was delivered and exits 0 (backfill: 3); the next run continues (0 disables)"},
	{"HWCAUDIT_MEMORY_BUDGET", "67108864", "bytes of fetched pages and their documents held between the API and the sinks, all streams together"},
	{"HWCAUDIT_RETRY_INITIAL", "500ms", "first backoff after a retryable failure (network, 429, 5xx)"},
	{"HWCAUDIT_RETRY_MAX", "30s", "longest single backoff"},
	{"HWCAUDIT_RETRY_MAX_ELAPSED", "5m", "give up on one operation after retrying this long; the stream fails, its checkpoint stays"},
	{"HWCAUDIT_SHARD", "", "index/count: export only the streams whose key hashes (FNV-1a) to index mod count (run and backfill)"},
	{"HWCAUDIT_PUSHGATEWAY_URL", "", "Prometheus Pushgateway (http:// or https://) to push metrics to at the end of each run (job hwcaudit, grouped by shard and mode)"},
	{"HWCAUDIT_ALLOW_INSECURE", "false", "accept plain http:// endpoints (API overrides, sinks, dead letters, a Pushgateway URL with a password) and Kafka SASL without TLS off loopback; sets every sink's own *_ALLOW_INSECURE; each insecure setting is logged at start"},
	{"HWCAUDIT_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"HWCAUDIT_LOG_FORMAT", "auto", "json, text, or auto (text on a terminal, JSON otherwise)"},
}

// sdkVariables are read by the Huawei Cloud SDK's credential provider.
var sdkVariables = []variable{
	{"HUAWEICLOUD_SDK_AK", "", "access key id for AK/SK request signing"},
	{"HUAWEICLOUD_SDK_SK", "", "secret access key"},
	{"HUAWEICLOUD_SDK_SECURITY_TOKEN", "", "security token of temporary credentials (sent as X-Security-Token)"},
	{"HUAWEICLOUD_SDK_PROJECT_ID", "", "project id, used when HWCAUDIT_PROJECT_ID is not set"},
}

const usage = `hwcaudit exports Huawei Cloud audit logs as Elastic Common Schema (ECS) NDJSON.

Usage:
  exporter demo [--fresh] [--latency D]
                            export from an embedded API simulator (no cloud account
                            needed); --latency adds D (e.g. 20ms) to every simulated
                            API request, to see concurrency and progress at work
  exporter run [--metrics-addr HOST:PORT]
                            export from Huawei Cloud, configured by the environment;
                            --metrics-addr serves Prometheus /metrics while running
  exporter backfill --from T [--to T|now] [--sources swr,artifact,taurusdb,dbss,cts]
                   [--progress auto|bar|log|none] [--metrics-addr HOST:PORT]
                            export a historic range once (records with @timestamp
                            in [from, to]) under its own checkpoints; rerun the same
                            command to resume; shows progress (a bar on a terminal,
                            log lines otherwise) and ends with a completeness report;
                            --metrics-addr serves /metrics as for run
  exporter check            check configuration, credentials, sources, sinks and
                            checkpoint store without exporting (exit 0: all ok)
  exporter checkpoints list [--backfill RANGE]
                            one line per stream: stream, updated_at, cursor; then
                            one line per backfill with its state
  exporter checkpoints show STREAM      print a stream's checkpoint document
  exporter checkpoints reset STREAM     delete a stream's checkpoint (under the run
                                        lock); its next run starts over
  exporter checkpoints reset --backfill RANGE [--force]
                            delete a complete backfill's checkpoints
  exporter checkpoints prune            delete every complete backfill's checkpoints
  exporter help             show this help
  exporter version          print the version

Each run reads every stream until it is caught up, then exits. A stream's
checkpoint moves only after every sink stored everything before it, so a run
that is killed or fails resumes where delivery stopped.

Exit codes: 0 success, 1 a stream failed, 2 invalid configuration or usage,
3 interrupted (SIGINT/SIGTERM) before every stream caught up. A run whose
destinations fail to close (files left unpublished) exits 1. A run that finds
another run holding the run lock exports nothing and exits 0 (a backfill: 1).

Metrics: HWCAUDIT_PUSHGATEWAY_URL receives them at the end of every run,
grouped by job hwcaudit, shard (i-of-N, or all) and mode (run, or backfill with
backfill_range). A run skipped because the lock was held pushes only
hwcaudit_last_skipped_timestamp_seconds, never a success time. Checkpoint lag
in a Pushgateway is time() - hwcaudit_checkpoint_event_timestamp_seconds;
hwcaudit_checkpoint_lag_seconds stops at its value at push time. README.md
lists every metric.
`

func printHelp(w io.Writer) {
	fmt.Fprint(w, usage)
	fmt.Fprintln(w, "\nEnvironment:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, v := range variables {
		fmt.Fprintf(tw, "  %s\t%s\t(default: %s)\n", v.name, v.doc, orNone(v.def))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nCredentials (Huawei Cloud SDK conventions):")
	for _, v := range sdkVariables {
		fmt.Fprintf(tw, "  %s\t%s\n", v.name, v.doc)
	}
	tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
