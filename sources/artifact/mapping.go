package artifact

import (
	"encoding/json"
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
)

// auditDO is one record of the audit API (the AuditDO object). Every member
// is documented as a string; null (as "reason" is in the example) reads as
// empty.
type auditDO struct {
	ID                 json.RawMessage `json:"id"`
	Module             *string         `json:"module"`
	Operation          *string         `json:"operation"`
	Time               *string         `json:"time"`
	Info               *string         `json:"info"`
	Data               *string         `json:"data"`
	Reason             *string         `json:"reason"`
	UserAgent          *string         `json:"userAgent"`
	Operator           *string         `json:"operator"`
	OperatorNickName   *string         `json:"operatorNickName"`
	OperatorTenantName *string         `json:"operatorTenantName"`
	IPSource           *string         `json:"ipSource"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// eventTypes maps an operation to ECS event.type. The API documents
// operation only as "操作类型" with "upload" in its example; the other
// names are the verbs of the service's console. Anything else is "info".
var eventTypes = map[string]string{
	"upload":   "creation",
	"create":   "creation",
	"add":      "creation",
	"download": "access",
	"view":     "access",
	"query":    "access",
	"delete":   "deletion",
	"remove":   "deletion",
	"update":   "change",
	"modify":   "change",
	"edit":     "change",
	"move":     "change",
	"rename":   "change",
	"copy":     "change",
	"restore":  "change",
	"recover":  "change",
}

// categories is event.category by module: file operations act on the
// stored artifacts; repository operations on a repository's settings. Both
// categories expect creation, access, change, deletion and info.
var categories = map[string]string{
	ModuleFile:       "file",
	ModuleRepository: "configuration",
}

// Map turns one audit record into an ECS document.
func (s *Stream) Map(raw []byte, ev *pipeline.Event) error {
	var a auditDO
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("artifact audit log is not a JSON object: %w", err)
	}
	id, ok := parseID(a.ID)
	if !ok {
		if len(a.ID) == 0 || string(a.ID) == "null" {
			return errNoID
		}
		return fmt.Errorf("artifact audit log id %s is not a digit string", a.ID)
	}
	ts, ok := parseTime(str(a.Time), s.loc)
	if !ok {
		return fmt.Errorf("artifact audit log %s: time %q is not a timestamp", id, str(a.Time))
	}
	module := str(a.Module)
	if module == "" {
		module = s.module
	}
	op := str(a.Operation)
	action := strings.ToLower(op)
	eventType, ok := eventTypes[action]
	if !ok {
		eventType = "info"
	}
	category, ok := categories[module]
	if !ok {
		category = categories[s.module]
	}

	ev.ID = ecsdoc.ID("artifact", s.tenant, s.module, s.repo, id)
	ev.Timestamp = ts
	ev.Dataset = Dataset

	var w ecsdoc.Writer
	w.Begin(ev.Doc, ts)
	w.Strings("category", category)
	w.Strings("type", eventType)
	w.StringIf("action", action)
	// The API lists operations that happened; it records no result, so the
	// outcome is not claimed.
	w.String("outcome", "unknown")
	w.StringIf("reason", str(a.Reason))
	w.String("dataset", Dataset)
	w.String("module", "huaweicloud")
	w.String("provider", "codeartsartifact")
	w.String("id", ev.ID)
	w.Time("ingested", s.now())
	w.RawString("original", raw)
	w.Close()
	w.Open("cloud")
	w.String("provider", "huaweicloud")
	w.StringIf("region", s.region)
	w.Open("account")
	w.String("id", s.tenant)
	w.Close()
	w.Open("project")
	w.String("id", s.project)
	w.Close()
	w.Open("service")
	w.String("name", "codeartsartifact")
	w.Close()
	w.Close()

	operator, nick := str(a.Operator), str(a.OperatorNickName)
	if operator != "" || nick != "" {
		w.Open("user")
		w.StringIf("name", operator)
		w.StringIf("full_name", nick)
		w.Close()
	}
	ip := net.ParseIP(str(a.IPSource))
	if ip != nil {
		w.Open("source")
		w.String("ip", ip.String())
		w.Close()
	}
	if operator != "" || ip != nil {
		w.Open("related")
		if operator != "" {
			w.Strings("user", operator)
		}
		if ip != nil {
			w.Strings("ip", ip.String())
		}
		w.Close()
	}
	if ua := str(a.UserAgent); ua != "" {
		w.Open("user_agent")
		w.String("original", ua)
		w.Close()
	}
	// For the file module, data is the file's path within the repository
	// ("1/1/1/1-1-1.jar" in the documented example).
	data := str(a.Data)
	if module == ModuleFile && data != "" {
		w.Open("file")
		if name := path.Base(data); name != "." && name != "/" {
			w.String("name", name)
		}
		w.String("path", data)
		w.Close()
	}

	w.Open("huaweicloud")
	w.Open("artifact")
	w.String("tenant_id", s.tenant)
	w.String("repository_id", s.repo)
	w.String("module", module)
	w.String("audit_id", id)
	w.StringIf("operation", op)
	w.StringIf("info", str(a.Info))
	w.StringIf("data", data)
	w.StringIf("operator_tenant_name", str(a.OperatorTenantName))
	if ip == nil {
		w.StringIf("ip_source", str(a.IPSource))
	}
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}
