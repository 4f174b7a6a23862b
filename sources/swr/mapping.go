package swr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/ecsdoc"
	"github.com/hwcaudit/hwcaudit/sources/jsonscan"
)

// auditLog is one record of the audit-logs API (the AuditLog object).
type auditLog struct {
	ID           []byte // as sent: parseID reads it
	OpTime       string
	Operation    string
	ResourceType string
	Resource     string
	Username     string
}

// decode reads a record. Member names match exactly; a string member
// that holds another type is an error, null leaves it empty.
func (a *auditLog) decode(raw []byte) error {
	return jsonscan.Members(raw, a.set)
}

// set takes one member of the record.
func (a *auditLog) set(name []byte, v jsonscan.Value) error {
	var dst *string
	switch string(jsonscan.Name(name)) {
	case "id":
		a.ID = v.Raw
		return nil
	case "op_time":
		dst = &a.OpTime
	case "operation":
		dst = &a.Operation
	case "resource_type":
		dst = &a.ResourceType
	case "resource":
		dst = &a.Resource
	case "username":
		dst = &a.Username
	default:
		return nil
	}
	if v.Kind == jsonscan.Null {
		*dst = ""
		return nil
	}
	s, ok := v.String()
	if !ok {
		return fmt.Errorf("%s is a %s, want a string", name, v.Kind)
	}
	*dst = s
	return nil
}

// category is event.category of every SWR audit log. The registry logs
// pulls, pushes (create) and deletions of stored content: artifacts (an
// image manifest and its layers), tags and repositories. ECS's "file"
// category is for "a set of information that has been created on, or has
// existed on a filesystem", network-observed transfers included, and it
// expects exactly the types these operations are: access, creation,
// change, deletion, info. The alternatives do not fit: "api" annotates OS
// and protocol API calls (Win32, libc, RPC) seen on a host, which would put
// registry events beside endpoint telemetry; "package" is software
// installed on a host and expects no creation; "configuration" is settings,
// and a pull reads content, not settings.
const category = "file"

// eventTypes maps the API's operation to ECS event.type. The list is the
// documented one plus "update", which the field description mentions.
var eventTypes = map[string]string{
	"pull":   "access",
	"create": "creation",
	"delete": "deletion",
	"update": "change",
}

// Map turns one audit log into an ECS document.
func (s *Stream) Map(raw []byte, ev *pipeline.Event) error {
	var a auditLog
	if err := a.decode(raw); err != nil {
		return fmt.Errorf("swr audit log is not a JSON object as documented: %w", err)
	}
	id, ok := parseID(a.ID)
	if !ok {
		if a.ID == nil {
			return errors.New("swr audit log has no id")
		}
		return fmt.Errorf("swr audit log id %s is not a non-negative integer", a.ID)
	}
	ts, ok := parseTime(a.OpTime)
	if !ok {
		return fmt.Errorf("swr audit log %d: op_time %q is not a timestamp", id, a.OpTime)
	}
	op := strings.ToLower(a.Operation)
	if op == "" {
		op = s.operation
	}
	eventType, ok := eventTypes[op]
	if !ok {
		eventType = "info"
	}
	idStr := strconv.FormatInt(id, 10)

	ev.ID = ecsdoc.ID("swr", s.instance, idStr)
	ev.Timestamp = ts
	ev.Dataset = Dataset

	var w ecsdoc.Writer
	w.Begin(ev.Doc, ts)
	w.Strings("category", category)
	w.Strings("type", eventType)
	w.String("action", op)
	// The API lists operations that happened; it records no result, so the
	// outcome is not claimed.
	w.String("outcome", "unknown")
	w.Origin(Dataset, "swr", ev.ID)
	w.Time("ingested", s.now())
	w.RawString("original", raw)
	w.Close()
	w.Cloud(s.region, s.project, "swr")
	repo, tag, digest := splitResource(a.Resource)
	// username is documented as the user's ID (用户ID), and no member holds
	// a name, so it is user.id; related.user carries it for searches by
	// any user identifier.
	if a.Username != "" {
		w.Open("user")
		w.String("id", a.Username)
		w.Close()
	}
	hash, hasHash := digestHex(digest)
	// The digest as written ("sha256:…"), the form ECS keeps image
	// digests in (container.image.hash.all), and its bare hex, the form of
	// file.hash.* and of threat indicators: a search for either finds the
	// event.
	var hashes []string
	if hasHash {
		hashes = []string{digest, hash}
	}
	w.Related([]string{a.Username}, nil, hashes)
	w.Open("huaweicloud")
	w.Open("swr")
	w.String("instance_id", s.instance)
	w.String("audit_id", idStr)
	w.String("operation", op)
	w.StringIf("resource_type", a.ResourceType)
	w.StringIf("resource", a.Resource)
	w.StringIf("repository", repo)
	w.StringIf("tag", tag)
	w.StringIf("digest", digest)
	w.Close()
	w.Close()
	ev.Doc = w.Bytes()
	return nil
}

// splitResource splits "library/ubuntu:sha256:22eb…", "library/nginx:1.25"
// or "library/nginx@sha256:…" into repository, tag and digest.
func splitResource(res string) (repo, tag, digest string) {
	if res == "" {
		return "", "", ""
	}
	if at := strings.IndexByte(res, '@'); at >= 0 {
		return res[:at], "", res[at+1:]
	}
	slash := strings.LastIndexByte(res, '/')
	colon := strings.IndexByte(res[slash+1:], ':')
	if colon < 0 {
		return res, "", ""
	}
	colon += slash + 1
	ref := res[colon+1:]
	if strings.HasPrefix(ref, "sha256:") || strings.HasPrefix(ref, "sha512:") {
		return res[:colon], "", ref
	}
	return res[:colon], ref, ""
}

// digestHex returns the hex of a well-formed OCI digest, "sha256:" and 64
// lowercase hex digits or "sha512:" and 128; other text is not a hash to
// correlate on and stays only in huaweicloud.swr.digest.
func digestHex(digest string) (string, bool) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || !(alg == "sha256" && len(hex) == 64 || alg == "sha512" && len(hex) == 128) {
		return "", false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return hex, true
}

// parseTime reads op_time: RFC 3339 as documented ("2020-12-24T11:19:54.907Z").
// A value without a zone is taken as UTC, the zone the registry logs in.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if err == nil {
			break
		}
		t, err = time.Parse(layout, s)
	}
	// An offset can move a year-0000 or year-9999 time out of the four-digit
	// years that @timestamp (RFC 3339) can express.
	if t = t.UTC(); err != nil || t.Year() < 0 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}
