package essink

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/sinks/egress"
)

// Config configures the Elasticsearch sink. Credentials are never printed:
// errors name the variable, not its value.
type Config struct {
	// URLs are the Elasticsearch nodes, as the go-elasticsearch client's own
	// ELASTICSEARCH_URL convention: a comma-separated list. Required: there
	// is no default, so a deployment never writes to a localhost it did not
	// name. A plain http:// node is refused unless it is on loopback or
	// AllowInsecure is set.
	URLs []string `env:"ELASTICSEARCH_URL"`

	// AllowInsecure accepts plain http:// nodes that are not on loopback:
	// the credentials and the events then cross the network unencrypted.
	// Default false.
	AllowInsecure bool `env:"HWCAUDIT_ELASTICSEARCH_ALLOW_INSECURE,default=false"`

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
	// Timeout bounds one request to the cluster, from sending it to
	// reading the whole answer (a bulk request of BulkMaxBytes must fit in
	// it). 0 means the default. Default 90s.
	Timeout time.Duration `env:"HWCAUDIT_ELASTICSEARCH_TIMEOUT,default=90s"`
}

// Validate reports the first setting that cannot work. It does not read
// CAFile; New does.
func (c Config) Validate() error {
	if len(c.URLs) == 0 {
		return errors.New("ELASTICSEARCH_URL: must name at least one node (there is no default), e.g. https://es.example:9200")
	}
	for i, raw := range c.URLs {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The value may hold credentials: name its position only.
			return fmt.Errorf("ELASTICSEARCH_URL: entry %d is not an http(s)://host[:port] URL", i+1)
		}
		if err := egress.CheckEndpoint(raw, "ELASTICSEARCH_URL", "HWCAUDIT_ELASTICSEARCH_ALLOW_INSECURE", c.AllowInsecure); err != nil {
			return err
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

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 90 * time.Second

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// InsecureSettings names the settings in force that weaken transport
// security, for a warning at start and for exporter check.
func (c Config) InsecureSettings() []string {
	var out []string
	for _, raw := range c.URLs {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && strings.EqualFold(u.Scheme, "http") {
			out = append(out, "ELASTICSEARCH_URL node "+egress.Origin(u)+" is plain http://")
		}
	}
	if c.TLSInsecureSkipVerify {
		out = append(out, "HWCAUDIT_ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY=true: the cluster's certificate is not verified")
	}
	return out
}

// secrets returns the credentials the sink sends: the API key (and the
// id:key it encodes), the password and the basic-auth user:password, and
// passwords written into the URLs.
func (c Config) secrets() *egress.Secrets {
	s := egress.NewSecrets(c.APIKey)
	if dec, err := base64.StdEncoding.DecodeString(c.APIKey); err == nil {
		if _, key, ok := strings.Cut(string(dec), ":"); ok {
			s.Add(string(dec), key)
		}
	}
	s.AddBasic(c.Username, c.Password)
	for _, raw := range c.URLs {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				s.AddBasic(u.User.Username(), pw)
			}
		}
	}
	return s
}

// validateName checks Elasticsearch's rules for index and data stream names.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case name != strings.ToLower(name):
		return errors.New("must be lowercase")
	case strings.ContainsAny(name, "\\/*?\"<>| ,#:"):
		//lint:ignore ST1005 the message ends with the characters it lists
		return errors.New(`must not contain \ / * ? " < > | space , # :`)
	case name[0] == '-' || name[0] == '_' || name[0] == '+' || name == "." || name == "..":
		//lint:ignore ST1005 the message ends with the names "." and ".."
		return errors.New("must not start with -, _ or +, nor be . or ..")
	case len(name) > 255:
		return errors.New("must be at most 255 bytes")
	}
	return nil
}

func isDataStream(target string) bool { return strings.HasPrefix(target, "logs-") }
