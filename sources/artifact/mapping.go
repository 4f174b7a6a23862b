package artifact

import (
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
)

// auditDO is one record of the audit API (the AuditDO object). Every member
// is documented as a string; null (as "reason" is in the example) reads as
// empty.
type auditDO struct {
	ID                 jsonscan.Value // as sent: parseID reads it; Raw is nil when absent
	Module             string
	Operation          string
	Time               string
	Info               string
	Data               string
	Reason             string
	UserAgent          string
	Operator           string
	OperatorNickName   string
	OperatorTenantName string
	IPSource           string
}

// decode reads a record. Member names match exactly; a string member
// that holds another type is an error, null leaves it empty.
func (a *auditDO) decode(raw []byte) error {
	return jsonscan.Members(raw, a.set)
}

// set takes one member of the record.
func (a *auditDO) set(name []byte, v jsonscan.Value) error {
	var dst *string
	n := jsonscan.Name(name)
	switch string(n) {
	case "id":
		a.ID = v
		return nil
	case "module":
		dst = &a.Module
	case "operation":
		dst = &a.Operation
	case "time":
		dst = &a.Time
	case "info":
		dst = &a.Info
	case "data":
		dst = &a.Data
	case "reason":
		dst = &a.Reason
	case "userAgent":
		dst = &a.UserAgent
	case "operator":
		dst = &a.Operator
	case "operatorNickName":
		dst = &a.OperatorNickName
	case "operatorTenantName":
		dst = &a.OperatorTenantName
	case "ipSource":
		dst = &a.IPSource
	default:
		return nil
	}
	// null resets the member, as it did the *string encoding/json filled.
	*dst = ""
	return keepString(dst, n, v)
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

// categories is event.category by module. File operations upload,
// download and delete stored artifacts: ECS "file", a set of information
// created on or read from storage. Repository operations create, change
// and delete a repository and its settings: ECS "configuration", the
// settings of an application. Both categories expect every type eventTypes
// gives (creation, access, change, deletion, info). Not "api": ECS keeps it
// for OS and protocol API calls observed on a host.
var categories = map[string]string{
	ModuleFile:       "file",
	ModuleRepository: "configuration",
}

// Map turns one audit record into an ECS document.
func (s *Stream) Map(raw []byte, ev *pipeline.Event) error {
	var a auditDO
	if err := a.decode(raw); err != nil {
		return fmt.Errorf("artifact audit log is not a JSON object: %w", err)
	}
	id, ok := parseID(a.ID)
	if !ok {
		if a.ID.Raw == nil || a.ID.Kind == jsonscan.Null {
			return errNoID
		}
		return fmt.Errorf("artifact audit log id %s is not a digit string", a.ID.Raw)
	}
	ts, ok := parseTime(a.Time, s.loc)
	if !ok {
		return fmt.Errorf("artifact audit log %s: time %q is not a timestamp", id, a.Time)
	}
	module := a.Module
	if module == "" {
		module = s.module
	}
	op := a.Operation
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
	w.StringIf("reason", a.Reason)
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

	// operator is the login (the documented example is an account name),
	// operatorNickName the person's name, operatorTenantName the name of
	// the account (Huawei Cloud's IAM "domain") the operator belongs to:
	// the directory ECS's user.domain names.
	operator, nick, domain := a.Operator, a.OperatorNickName, a.OperatorTenantName
	if operator != "" || nick != "" || domain != "" {
		w.Open("user")
		w.StringIf("name", operator)
		w.StringIf("full_name", nick)
		w.StringIf("domain", domain)
		w.Close()
	}
	var ipText string
	if ip := net.ParseIP(a.IPSource); ip != nil {
		ipText = ip.String()
		w.Open("source")
		w.String("ip", ipText)
		w.Close()
	}
	w.Related([]string{operator}, []string{ipText}, nil)
	if ua := a.UserAgent; ua != "" {
		w.Open("user_agent")
		w.String("original", ua)
		w.Close()
	}
	// For the file module, data is the file's path within the repository
	// ("1/1/1/1-1-1.jar" in the documented example).
	data := a.Data
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
	w.StringIf("info", a.Info)
	w.StringIf("data", data)
	if ipText == "" {
		w.StringIf("ip_source", a.IPSource) // not an address: kept as sent
	}
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}
