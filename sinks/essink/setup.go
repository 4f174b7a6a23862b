package essink

import (
	"bytes"
	"context"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Names of what Setup installs.
const (
	ComponentTemplateName = "hwcaudit-huaweicloud@mappings"
	IndexTemplateName     = "logs-huaweicloud"
	// IndexPattern is what the index template covers: the data streams of
	// the default Target for every huaweicloud.* dataset.
	IndexPattern = "logs-huaweicloud.*-*"
)

// componentTemplate maps every huaweicloud.* field the sources emit, so
// none is mapped dynamically by accident, and maps any new string field
// under huaweicloud.* to keyword. Ids look numeric in some APIs but are
// identifiers (keyword); IP-like fields are keyword because the APIs return
// values such as "not-an-ip"; times use ignore_malformed so a bad time does
// not send the whole event to the dead letter. taurusdb.size_kb is
// fractional ("12.5"), so it is a double, not a long. CTS request and
// response bodies (cut at 8 KiB by the mapping) are kept whole in _source
// and indexed up to 8191 characters.
const componentTemplate = `{
  "template": {
    "mappings": {
      "dynamic_templates": [
        {"hwcaudit_huaweicloud_strings": {
          "path_match": "huaweicloud.*",
          "match_mapping_type": "string",
          "mapping": {"type": "keyword", "ignore_above": 1024}
        }}
      ],
      "properties": {
        "huaweicloud": {
          "properties": {
            "swr": {"properties": {
              "audit_id": {"type": "keyword"},
              "instance_id": {"type": "keyword"},
              "operation": {"type": "keyword"},
              "resource_type": {"type": "keyword"},
              "resource": {"type": "keyword", "ignore_above": 1024},
              "repository": {"type": "keyword", "ignore_above": 1024},
              "tag": {"type": "keyword"},
              "digest": {"type": "keyword"}
            }},
            "artifact": {"properties": {
              "audit_id": {"type": "keyword"},
              "tenant_id": {"type": "keyword"},
              "repository_id": {"type": "keyword"},
              "module": {"type": "keyword"},
              "operation": {"type": "keyword"},
              "info": {"type": "keyword", "ignore_above": 1024},
              "data": {"type": "keyword", "ignore_above": 8191},
              "ip_source": {"type": "keyword"}
            }},
            "dbss": {"properties": {
              "log_id": {"type": "keyword"},
              "instance_id": {"type": "keyword"},
              "name": {"type": "keyword"},
              "function": {"type": "keyword"},
              "action": {"type": "keyword"},
              "description": {"type": "keyword", "ignore_above": 1024},
              "result": {"type": "keyword"},
              "ip": {"type": "keyword"}
            }},
            "taurusdb": {"properties": {
              "audit_log_id": {"type": "keyword"},
              "instance_id": {"type": "keyword"},
              "name": {"type": "keyword", "ignore_above": 1024},
              "size_kb": {"type": "double"},
              "begin_time": {"type": "date", "format": "strict_date_optional_time||yyyy-MM-dd'T'HH:mm:ssZ", "ignore_malformed": true},
              "end_time": {"type": "date", "format": "strict_date_optional_time||yyyy-MM-dd'T'HH:mm:ssZ", "ignore_malformed": true}
            }},
            "cts": {"properties": {
              "trace_id": {"type": "keyword"},
              "trace_type": {"type": "keyword"},
              "source_type": {"type": "keyword"},
              "trace_rating": {"type": "keyword"},
              "code": {"type": "keyword"},
              "record_time": {"type": "date", "format": "strict_date_optional_time", "ignore_malformed": true},
              "resource_type": {"type": "keyword"},
              "resource_name": {"type": "keyword", "ignore_above": 1024},
              "resource_id": {"type": "keyword", "ignore_above": 1024},
              "api_version": {"type": "keyword"},
              "request_id": {"type": "keyword"},
              "location_info": {"type": "keyword", "ignore_above": 1024},
              "endpoint": {"type": "keyword", "ignore_above": 1024},
              "resource_url": {"type": "keyword", "ignore_above": 1024},
              "enterprise_project_id": {"type": "keyword"},
              "resource_account_id": {"type": "keyword"},
              "operation_id": {"type": "keyword"},
              "tracker_name": {"type": "keyword"},
              "read_only": {"type": "boolean"},
              "truncated": {"type": "boolean"},
              "request": {"type": "keyword", "ignore_above": 8191},
              "response": {"type": "keyword", "ignore_above": 8191},
              "message": {"type": "keyword", "ignore_above": 8191},
              "source_ip": {"type": "keyword"},
              "user": {"properties": {
                "access_key_id": {"type": "keyword"},
                "account_id": {"type": "keyword"},
                "principal_urn": {"type": "keyword", "ignore_above": 1024},
                "principal_id": {"type": "keyword"},
                "type": {"type": "keyword"},
                "principal_is_root_user": {"type": "boolean"}
              }}
            }}
          }
        }
      }
    }
  },
  "_meta": {"managed_by": "hwcaudit", "description": "Mappings of the huaweicloud.* fields written by hwcaudit"}
}`

// indexTemplate composes the built-in logs and ECS mappings (Elasticsearch
// 8.11+ names) with ours. Its priority is above the built-in logs-*-*
// template (100), which it replaces for logs-huaweicloud.*-*; the @custom
// hooks keep working as they do for logs-*-*.
const indexTemplate = `{
  "index_patterns": ["` + IndexPattern + `"],
  "data_stream": {},
  "priority": 200,
  "composed_of": ["logs@mappings", "logs@settings", "ecs@mappings", "` + ComponentTemplateName + `", "logs@custom", "logs-huaweicloud@custom"],
  "ignore_missing_component_templates": ["logs@custom", "logs-huaweicloud@custom"],
  "_meta": {"managed_by": "hwcaudit", "description": "Data streams of Huawei Cloud audit logs written by hwcaudit"}
}`

// Setup installs (or overwrites) the component template and the index
// template for logs-huaweicloud.*-* data streams. New calls it when
// Config.Setup is set. It is idempotent. Existing data streams pick the
// mappings up at their next rollover.
func (s *Sink) Setup(ctx context.Context) error {
	return s.redact(s.setup(ctx))
}

func (s *Sink) setup(ctx context.Context) error {
	puts := []struct {
		what string
		do   func(context.Context) (*esapi.Response, error)
	}{
		{"component template " + ComponentTemplateName, func(ctx context.Context) (*esapi.Response, error) {
			return esapi.ClusterPutComponentTemplateRequest{Name: ComponentTemplateName, Body: bytes.NewReader([]byte(componentTemplate))}.Do(ctx, s.client)
		}},
		{"index template " + IndexTemplateName, func(ctx context.Context) (*esapi.Response, error) {
			return esapi.IndicesPutIndexTemplateRequest{Name: IndexTemplateName, Body: bytes.NewReader([]byte(indexTemplate))}.Do(ctx, s.client)
		}},
	}
	for _, p := range puts {
		if err := s.put(ctx, "essink: setup: put "+p.what, p.do); err != nil {
			return err
		}
	}
	return nil
}

// put sends one request under the request Timeout and reads no more of
// its answer than an error needs.
func (s *Sink) put(ctx context.Context, what string, do func(context.Context) (*esapi.Response, error)) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.timeout())
	defer cancel()
	res, err := do(rctx)
	if err != nil {
		return s.transportError(ctx, rctx, what, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return s.requestError(res, what)
	}
	return nil
}
