package essink

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config configures the Elasticsearch sink. Credentials are never printed:
// errors name the variable, not its value.
type Config struct {
	// URLs are the Elasticsearch nodes, as the go-elasticsearch client's own
	// ELASTICSEARCH_URL convention: a comma-separated list.
	// Default "http://localhost:9200".
	URLs []string `env:"ELASTICSEARCH_URL,default=http://localhost:9200"`

	// APIKey is the base64 "id:api_key" credential sent as
	// "Authorization: ApiKey …". Mutually exclusive with Username/Password.
	APIKey string `env:"HWCAUDIT_ELASTICSEARCH_API_KEY"`
	// Username and Password are HTTP basic credentials.
	Username string `env:"HWCAUDIT_ELASTICSEARCH_USERNAME"`
	Password string `env:"HWCAUDIT_ELASTICSEARCH_PASSWORD"`

	// CAFile is a PEM file of certificate authorities trusted in addition
	// to the system pool (e.g. the cluster's http_ca.crt).
	CAFile string `env:"HWCAUDIT_ELASTICSEARCH_CA_FILE"`
	// TLSInsecureSkipVerify disables server certificate verification. Only
	// for tests against a throwaway cluster. Default false.
	TLSInsecureSkipVerify bool `env:"HWCAUDIT_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY,default=false"`

	// Target is the data stream or index written to. "{dataset}" is replaced
	// by the event's dataset (e.g. "huaweicloud.swr_audit") and
	// "{namespace}" by Namespace. A target starting with "logs-" is a data
	// stream (Elastic's logs-<dataset>-<namespace> scheme, so the built-in
	// logs-*-* index template applies); anything else is a plain index.
	// Default "logs-{dataset}-{namespace}".
	Target string `env:"HWCAUDIT_ELASTICSEARCH_TARGET,default=logs-{dataset}-{namespace}"`
	// Namespace is the data stream namespace. Default "default".
	Namespace string `env:"HWCAUDIT_ELASTICSEARCH_NAMESPACE,default=default"`

	// BulkMaxBytes bounds the uncompressed body of one _bulk request. A
	// document larger than this is rejected (dead letter); a request holding
	// one document may exceed it by that document's action line.
	// Default 5242880 (5 MiB).
	BulkMaxBytes int `env:"HWCAUDIT_ELASTICSEARCH_BULK_MAX_BYTES,default=5242880"`
	// BulkMaxDocs bounds the documents in one _bulk request. Default 1000.
	BulkMaxDocs int `env:"HWCAUDIT_ELASTICSEARCH_BULK_MAX_DOCS,default=1000"`
	// Compress gzips request bodies. Default false.
	Compress bool `env:"HWCAUDIT_ELASTICSEARCH_COMPRESS,default=false"`

	// Setup makes New install the component and index templates for
	// logs-huaweicloud.*-* (see Sink.Setup). Default false.
	Setup bool `env:"HWCAUDIT_ELASTICSEARCH_SETUP,default=false"`

	// ItemRetries is how many times Write re-sends items that Elasticsearch
	// answered with 429 or 5xx before it gives up and returns a retryable
	// error for the pipeline to back off on. Default 3.
	ItemRetries int `env:"HWCAUDIT_ELASTICSEARCH_ITEM_RETRIES,default=3"`
	// RetryBackoff is the first wait before re-sending such items; it
	// doubles on each attempt (with jitter), capped at 30s. Default 500ms.
	RetryBackoff time.Duration `env:"HWCAUDIT_ELASTICSEARCH_RETRY_BACKOFF,default=500ms"`
	// Timeout bounds the wait for the response headers of one request.
	// Default 90s.
	Timeout time.Duration `env:"HWCAUDIT_ELASTICSEARCH_TIMEOUT,default=90s"`
}

// Validate reports the first setting that cannot work. It does not read
// CAFile; New does.
func (c Config) Validate() error {
	if len(c.URLs) == 0 {
		return errors.New("ELASTICSEARCH_URL: must name at least one node")
	}
	for i, raw := range c.URLs {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The value may hold credentials: name its position only.
			return fmt.Errorf("ELASTICSEARCH_URL: entry %d is not an http(s)://host[:port] URL", i+1)
		}
	}
	switch {
	case c.APIKey != "" && (c.Username != "" || c.Password != ""):
		return errors.New("HWCAUDIT_ELASTICSEARCH_API_KEY: set either it or HWCAUDIT_ELASTICSEARCH_USERNAME/_PASSWORD, not both")
	case c.Username != "" && c.Password == "":
		return errors.New("HWCAUDIT_ELASTICSEARCH_PASSWORD: must be set with HWCAUDIT_ELASTICSEARCH_USERNAME")
	case c.Password != "" && c.Username == "":
		return errors.New("HWCAUDIT_ELASTICSEARCH_USERNAME: must be set with HWCAUDIT_ELASTICSEARCH_PASSWORD")
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_CA_FILE: %w", err)
		}
	}
	if err := validateName(c.Namespace); err != nil {
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_NAMESPACE: %w", err)
	}
	if strings.Contains(c.Namespace, "-") {
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_NAMESPACE: %q must not contain '-' (data stream names are type-dataset-namespace)", c.Namespace)
	}
	if len(c.Namespace) > 100 {
		return errors.New("HWCAUDIT_ELASTICSEARCH_NAMESPACE: must be at most 100 bytes")
	}
	probe := strings.NewReplacer("{dataset}", "x", "{namespace}", "x").Replace(c.Target)
	if err := validateName(probe); err != nil {
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_TARGET: %q: %w", c.Target, err)
	}
	if strings.ContainsAny(probe, "{}") {
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_TARGET: %q: only {dataset} and {namespace} may be substituted", c.Target)
	}
	if isDataStream(c.Target) && strings.Count(probe, "-") < 2 {
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_TARGET: %q starts with logs- so names a data stream, which must be logs-<dataset>-<namespace>", c.Target)
	}
	if c.Setup && !isDataStream(c.Target) {
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_SETUP: the templates cover logs-huaweicloud.*-* data streams, but HWCAUDIT_ELASTICSEARCH_TARGET %q is a plain index", c.Target)
	}
	switch {
	case c.BulkMaxBytes <= 0:
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_BULK_MAX_BYTES: must be a positive number of bytes, got %d", c.BulkMaxBytes)
	case c.BulkMaxDocs <= 0:
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_BULK_MAX_DOCS: must be positive, got %d", c.BulkMaxDocs)
	case c.ItemRetries < 0:
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_ITEM_RETRIES: must not be negative, got %d", c.ItemRetries)
	case c.RetryBackoff < 0:
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_RETRY_BACKOFF: must not be negative, got %s", c.RetryBackoff)
	case c.Timeout < 0:
		return fmt.Errorf("HWCAUDIT_ELASTICSEARCH_TIMEOUT: must not be negative, got %s", c.Timeout)
	}
	return nil
}

// validateName checks Elasticsearch's rules for index and data stream names.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case name != strings.ToLower(name):
		return errors.New("must be lowercase")
	case strings.ContainsAny(name, "\\/*?\"<>| ,#:"):
		return errors.New(`must not contain \ / * ? " < > | space , # :`)
	case name[0] == '-' || name[0] == '_' || name[0] == '+' || name == "." || name == "..":
		return errors.New("must not start with -, _ or +, nor be . or ..")
	case len(name) > 255:
		return errors.New("must be at most 255 bytes")
	}
	return nil
}

func isDataStream(target string) bool { return strings.HasPrefix(target, "logs-") }
