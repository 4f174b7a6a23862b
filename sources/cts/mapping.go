package cts

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
)

const (
	// MaxOriginalBytes caps event.original: a trace larger than this
	// (request and response bodies can be large) keeps its first
	// MaxOriginalBytes bytes there and is marked
	// huaweicloud.cts.truncated: true, rather than dead-lettered.
	MaxOriginalBytes = 1 << 20
	// MaxFieldBytes caps each of huaweicloud.cts.request, .response and
	// .message; a longer value keeps its first MaxFieldBytes bytes and
	// marks the event huaweicloud.cts.truncated: true.
	MaxFieldBytes = 8 << 10
)

// trace is what Map reads of one trace (the SDK's Traces model).
type trace struct {
	ID, Time, RecordTime jsonscan.Value // as sent

	Name, Rating, Source, Code, Service    string
	ResourceType, ResourceName, ResourceID string
	APIVersion, Message, Request, Response string
	SourceIP, RequestID, LocationInfo      string
	Endpoint, ResourceURL, EnterpriseProj  string
	ResourceAccount, OperationID, Tracker  string
	UserAgent                              string
	ReadOnly                               jsonscan.Value

	User user
}

type user struct {
	ID, Name, UserName, AccountID, AccessKeyID string
	PrincipalURN, PrincipalID, Type            string
	DomainID, DomainName                       string
	RootUser                                   string
}

// decode reads a trace. Member names match exactly; a string member that
// holds another type is an error; null leaves a member as it was.
func (tr *trace) decode(raw []byte) error {
	return jsonscan.Members(raw, tr.set)
}

func (tr *trace) set(name []byte, v jsonscan.Value) error {
	n := jsonscan.Name(name)
	var dst *string
	switch string(n) {
	case "trace_id":
		tr.ID = v
		return nil
	case "time":
		tr.Time = v
		return nil
	case "record_time":
		tr.RecordTime = v
		return nil
	case "read_only":
		tr.ReadOnly = v
		return nil
	case "user":
		if v.Kind == jsonscan.Null {
			return nil
		}
		if v.Kind != jsonscan.Object {
			return fmt.Errorf("user is a %s, want an object", v.Kind)
		}
		return v.EachMember(tr.User.set)
	case "trace_name":
		dst = &tr.Name
	case "trace_rating":
		dst = &tr.Rating
	case "trace_type":
		dst = &tr.Source
	case "code":
		if v.Kind == jsonscan.Number { // the SDK's string, sent as a number
			tr.Code = string(v.Raw)
			return nil
		}
		dst = &tr.Code
	case "service_type":
		dst = &tr.Service
	case "resource_type":
		dst = &tr.ResourceType
	case "resource_name":
		dst = &tr.ResourceName
	case "resource_id":
		dst = &tr.ResourceID
	case "api_version":
		dst = &tr.APIVersion
	case "message":
		dst = &tr.Message
	case "request":
		dst = &tr.Request
	case "response":
		dst = &tr.Response
	case "source_ip":
		dst = &tr.SourceIP
	case "request_id":
		dst = &tr.RequestID
	case "location_info":
		dst = &tr.LocationInfo
	case "endpoint":
		dst = &tr.Endpoint
	case "resource_url":
		dst = &tr.ResourceURL
	case "enterprise_project_id":
		dst = &tr.EnterpriseProj
	case "resource_account_id":
		dst = &tr.ResourceAccount
	case "operation_id":
		dst = &tr.OperationID
	case "tracker_name":
		dst = &tr.Tracker
	case "user_agent":
		dst = &tr.UserAgent
	default:
		return nil
	}
	return setString(dst, n, v)
}

func (u *user) set(name []byte, v jsonscan.Value) error {
	n := jsonscan.Name(name)
	var dst *string
	switch string(n) {
	case "id":
		dst = &u.ID
	case "name":
		dst = &u.Name
	case "user_name":
		dst = &u.UserName
	case "account_id":
		dst = &u.AccountID
	case "access_key_id":
		dst = &u.AccessKeyID
	case "principal_urn":
		dst = &u.PrincipalURN
	case "principal_id":
		dst = &u.PrincipalID
	case "type":
		dst = &u.Type
	case "principal_is_root_user":
		// The SDK's enum of "true" and "false"; a boolean is read too.
		switch v.Kind {
		case jsonscan.True, jsonscan.False:
			u.RootUser = string(v.Raw)
			return nil
		}
		dst = &u.RootUser
	case "domain":
		if v.Kind == jsonscan.Null {
			return nil
		}
		if v.Kind != jsonscan.Object {
			return fmt.Errorf("user.domain is a %s, want an object", v.Kind)
		}
		return v.EachMember(func(name []byte, v jsonscan.Value) error {
			switch n := jsonscan.Name(name); string(n) {
			case "id":
				return setString(&u.DomainID, []byte("user.domain.id"), v)
			case "name":
				return setString(&u.DomainName, []byte("user.domain.name"), v)
			}
			return nil
		})
	default:
		return nil
	}
	return setString(dst, append([]byte("user."), n...), v)
}

func setString(dst *string, name []byte, v jsonscan.Value) error {
	if v.Kind == jsonscan.Null {
		return nil
	}
	s, ok := v.String()
	if !ok {
		return fmt.Errorf("%s is a %s, want a string", name, v.Kind)
	}
	*dst = s
	return nil
}

// verbs map the start of a trace name (createServer, DELETE.OBJECT) to
// event.type. Longer prefixes come first where one begins another.
var verbs = []struct{ prefix, typ string }{
	{"login", "start"}, {"logout", "end"},
	{"create", "creation"}, {"add", "creation"}, {"put", "creation"}, {"post", "creation"}, {"register", "creation"},
	{"batchcreate", "creation"}, {"import", "creation"}, {"upload", "creation"},
	{"delete", "deletion"}, {"remove", "deletion"}, {"batchdelete", "deletion"}, {"unregister", "deletion"},
	{"scheduledeletion", "deletion"}, {"schedulekeydeletion", "deletion"}, {"destroy", "deletion"},
	{"update", "change"}, {"modify", "change"}, {"set", "change"}, {"reset", "change"}, {"change", "change"},
	{"enable", "change"}, {"disable", "change"}, {"start", "change"}, {"stop", "change"}, {"reboot", "change"},
	{"resize", "change"}, {"attach", "change"}, {"detach", "change"}, {"associate", "change"},
	{"disassociate", "change"}, {"grant", "change"}, {"revoke", "change"}, {"restore", "change"}, {"rotate", "change"},
	{"list", "access"}, {"show", "access"}, {"get", "access"}, {"query", "access"}, {"describe", "access"},
	{"head", "access"}, {"download", "access"}, {"check", "access"}, {"search", "access"},
}

// eventType is event.type of a trace name: by its verb (the part before
// the first capital letter, or before the dot of OBS's PUT.OBJECT), else
// info.
func eventType(name string) string {
	l := strings.ToLower(name)
	if i := strings.IndexByte(l, '.'); i > 0 {
		l = l[:i]
	}
	best, typ := 0, "info"
	for _, v := range verbs {
		if strings.HasPrefix(l, v.prefix) && len(v.prefix) > best {
			best, typ = len(v.prefix), v.typ
		}
	}
	return typ
}

// categories map a service type to the ECS category of its resources, and
// that category's event types (the ECS expected_event_types) the mapping
// can produce: a trace gets the category only with one of them.
var categories = map[string]string{
	"IAM": "iam", "IDENTITYCENTER": "iam", "STS": "iam",
	"ECS": "host", "BMS": "host", "CCE": "host", "AS": "host", "IMS": "host", "EVS": "host", "HSS": "host",
	"VPC": "network", "ELB": "network", "NAT": "network", "DNS": "network", "EIP": "network", "CFW": "network",
	"WAF": "network", "CDN": "network", "VPCEP": "network", "ER": "network", "DC": "network", "VPN": "network",
	"RDS": "database", "DDS": "database", "GAUSSDB": "database", "GAUSSDBFORMYSQL": "database", "TAURUSDB": "database",
	"DCS": "database", "DWS": "database", "NOSQL": "database", "DBSS": "database",
	"OBS": "file", "SFS": "file", "SFSTURBO": "file",
	"KMS": "configuration", "DEW": "configuration", "CSMS": "configuration", "CTS": "configuration",
	"CONFIG": "configuration", "RMS": "configuration", "SMN": "configuration", "LTS": "configuration",
	"CES": "configuration", "SWR": "configuration", "FUNCTIONGRAPH": "configuration", "APIG": "configuration",
}

// allowedTypes are, per category used above, the event types ECS expects
// with it (ecs_flat.yml, event.category's expected_event_types).
var allowedTypes = map[string][]string{
	"iam":            {"admin", "change", "creation", "deletion", "group", "info", "user"},
	"authentication": {"start", "end", "info"},
	"host":           {"access", "change", "end", "info", "start"},
	"network":        {"access", "allowed", "connection", "denied", "end", "info", "protocol", "start"},
	"database":       {"access", "change", "info", "error"},
	"file":           {"access", "change", "creation", "deletion", "info"},
	"configuration":  {"access", "change", "creation", "deletion", "info"},
}

// categorize returns event.category and event.type of a trace: always
// "api" (a trace is an API call); login and logout are authentication;
// otherwise the service type's category, when ECS expects the trace's
// event type with it.
func categorize(service, name string) (cats []string, typ string) {
	typ = eventType(name)
	cats = []string{"api"}
	if typ == "start" || typ == "end" {
		if strings.EqualFold(service, "IAM") || strings.HasPrefix(strings.ToLower(name), "log") {
			return append(cats, "authentication"), typ
		}
		typ = "change"
	}
	if c, ok := categories[strings.ToUpper(service)]; ok {
		for _, t := range allowedTypes[c] {
			if t == typ {
				return append(cats, c), typ
			}
		}
	}
	return cats, typ
}

// severities map trace_rating to event.severity.
var severities = map[string]int64{"normal": 1, "warning": 2, "incident": 3}

// outcome is event.outcome of an HTTP status code as the trace gives it:
// 2xx and 3xx success, 4xx and 5xx failure, anything else unknown.
func outcome(code string) (string, int64) {
	n, err := strconv.Atoi(strings.TrimSpace(code))
	switch {
	case err != nil || n < 100 || n > 599:
		return "unknown", 0
	case n < 400:
		return "success", int64(n)
	default:
		return "failure", int64(n)
	}
}

// Map turns one trace into an ECS document.
func (s *Stream) Map(raw []byte, ev *pipeline.Event) error {
	var tr trace
	if err := tr.decode(raw); err != nil {
		return fmt.Errorf("cts trace is not a JSON object of the documented shape: %w", err)
	}
	id, ok := tr.ID.ID()
	if !ok {
		if tr.ID.Raw == nil || tr.ID.Kind == jsonscan.Null {
			return errors.New("cts trace has no trace_id")
		}
		return fmt.Errorf("cts trace trace_id %s is not a string", tr.ID.Raw)
	}
	ts, ok := millis(tr.Time)
	recorded, rok := millis(tr.RecordTime)
	if !ok {
		if !rok {
			return fmt.Errorf("cts trace %s: neither time (%s) nor record_time (%s) is a time in milliseconds", id, shown(tr.Time), shown(tr.RecordTime))
		}
		ts = recorded
	}
	cats, typ := categorize(tr.Service, tr.Name)
	out, status := outcome(tr.Code)
	ip, ipErr := netip.ParseAddr(strings.TrimSpace(tr.SourceIP))
	validIP := ipErr == nil && ip.Zone() == ""
	userName := tr.User.Name
	if userName == "" {
		userName = tr.User.UserName
	}

	ev.ID = id
	ev.Timestamp = ts
	ev.Dataset = Dataset

	var w ecsdoc.Writer
	w.Begin(ev.Doc, ts)
	w.Strings("category", cats...)
	w.Strings("type", typ)
	w.StringIf("action", tr.Name)
	w.String("outcome", out)
	if sev, ok := severities[strings.ToLower(tr.Rating)]; ok {
		w.Int("severity", sev)
	}
	provider := tr.Service
	if provider == "" {
		provider = "cts"
	}
	w.Origin(Dataset, provider, id)
	w.Time("ingested", s.now())
	original, truncated := cut(raw, MaxOriginalBytes)
	w.RawString("original", original)
	w.Close()

	w.Open("cloud")
	w.String("provider", "huaweicloud")
	w.StringIf("region", s.region)
	if tr.User.DomainID != "" {
		w.Open("account")
		w.String("id", tr.User.DomainID)
		w.StringIf("name", tr.User.DomainName)
		w.Close()
	}
	w.Open("project")
	w.String("id", s.project)
	w.Close()
	if tr.Service != "" {
		w.Open("service")
		w.String("name", tr.Service)
		w.Close()
	}
	w.Close()

	if userName != "" || tr.User.ID != "" || tr.User.DomainName != "" {
		w.Open("user")
		w.StringIf("name", userName)
		w.StringIf("id", tr.User.ID)
		w.StringIf("domain", tr.User.DomainName)
		w.Close()
	}
	var ipText string
	if validIP {
		ipText = ip.String()
		w.Open("source")
		w.String("ip", ipText)
		w.Close()
	}
	if tr.UserAgent != "" {
		w.Open("user_agent")
		w.String("original", tr.UserAgent)
		w.Close()
	}
	if status != 0 {
		w.Open("http")
		w.Open("response")
		w.Int("status_code", status)
		w.Close()
		w.Close()
	}
	w.Related([]string{userName}, []string{ipText}, nil)

	w.Open("huaweicloud")
	w.Open("cts")
	w.String("trace_id", id)
	w.String("trace_type", s.traceType)
	w.StringIf("source_type", tr.Source)
	w.StringIf("trace_rating", tr.Rating)
	w.StringIf("code", tr.Code)
	if rok {
		w.Time("record_time", recorded)
	}
	w.StringIf("resource_type", tr.ResourceType)
	w.StringIf("resource_name", tr.ResourceName)
	w.StringIf("resource_id", tr.ResourceID)
	w.StringIf("api_version", tr.APIVersion)
	w.StringIf("request_id", tr.RequestID)
	w.StringIf("location_info", tr.LocationInfo)
	w.StringIf("endpoint", tr.Endpoint)
	w.StringIf("resource_url", tr.ResourceURL)
	w.StringIf("enterprise_project_id", tr.EnterpriseProj)
	w.StringIf("resource_account_id", tr.ResourceAccount)
	w.StringIf("operation_id", tr.OperationID)
	w.StringIf("tracker_name", tr.Tracker)
	switch tr.ReadOnly.Kind {
	case jsonscan.True:
		w.Raw("read_only", []byte("true"))
	case jsonscan.False:
		w.Raw("read_only", []byte("false"))
	}
	for _, f := range []struct{ k, v string }{{"request", tr.Request}, {"response", tr.Response}, {"message", tr.Message}} {
		v, cutShort := cut([]byte(f.v), MaxFieldBytes)
		truncated = truncated || cutShort
		w.StringIf(f.k, string(v))
	}
	if tr.User.AccessKeyID != "" || tr.User.AccountID != "" || tr.User.PrincipalURN != "" || tr.User.Type != "" || tr.User.PrincipalID != "" || tr.User.RootUser != "" {
		w.Open("user")
		w.StringIf("access_key_id", tr.User.AccessKeyID)
		w.StringIf("account_id", tr.User.AccountID)
		w.StringIf("principal_urn", tr.User.PrincipalURN)
		w.StringIf("principal_id", tr.User.PrincipalID)
		w.StringIf("type", tr.User.Type)
		switch tr.User.RootUser {
		case "true", "false":
			w.Raw("principal_is_root_user", []byte(tr.User.RootUser))
		}
		w.Close()
	}
	if tr.SourceIP != "" && !validIP {
		w.String("source_ip", tr.SourceIP)
	}
	if truncated {
		w.Raw("truncated", []byte("true"))
	}
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}

// cut returns b's first max bytes, ending on a whole UTF-8 character, and
// whether that is shorter than b.
func cut(b []byte, max int) ([]byte, bool) {
	if len(b) <= max {
		return b, false
	}
	b = b[:max]
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		r, size := utf8.DecodeLastRune(b)
		if r != utf8.RuneError || size > 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return b, true
}

// shown is a member's JSON for an error message, "absent" when it was not
// sent.
func shown(v jsonscan.Value) string {
	if v.Raw == nil {
		return "absent"
	}
	return string(head(v.Raw))
}
