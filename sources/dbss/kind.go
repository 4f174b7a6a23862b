package dbss

import (
	"encoding/json"
	"net/url"
	"time"

	"github.com/hwcaudit/hwcaudit/sources/window"
)

// Kind is a kind of DBSS log, one stream per instance and kind.
type Kind string

// The kinds of DBSS log HWCAUDIT_DBSS_STREAMS names.
const (
	// Operation is the users' operation logs (ListAuditOperateLogsNew,
	// ListAuditOperateLogs).
	Operation Kind = "operation"
	// SQL is the audited SQL statements (ListAuditSqlsNew, ListAuditSqls).
	SQL Kind = "sql"
	// Alarm is the alarm logs (ListAuditAlarmLogNew, ListAuditAlarmLog).
	Alarm Kind = "alarm"
)

var allKinds = []Kind{Operation, SQL, Alarm}

// Datasets of the SQL audit and alarm streams (Dataset is the operation
// logs').
const (
	DatasetSQL   = "huaweicloud.dbss_sql"
	DatasetAlarm = "huaweicloud.dbss_alarm"
)

// key is the checkpoint key of instance's stream of kind k. The operation
// stream keeps the key it had before the other kinds existed.
func (k Kind) key(instance string) string {
	if k == Operation {
		return "dbss/" + instance
	}
	return "dbss/" + instance + "/" + string(k)
}

// dataset is the event.dataset of k's events.
func (k Kind) dataset() string {
	switch k {
	case SQL:
		return DatasetSQL
	case Alarm:
		return DatasetAlarm
	}
	return Dataset
}

// paths returns the newer path and the older one k is read from.
func (k Kind) paths(project, instance string) (current, legacy string) {
	p, i := url.PathEscape(project), url.PathEscape(instance)
	switch k {
	case SQL:
		return "/v2/" + p + "/audit/" + i + "/sqls", "/v1/" + p + "/" + i + "/audit/sqls"
	case Alarm:
		return "/v2/" + p + "/audit/" + i + "/alarm-log", "/v1/" + p + "/" + i + "/audit/alarm-log"
	}
	return "/v1/" + p + "/audit/" + i + "/operation-log", "/v1/" + p + "/" + i + "/dbss/audit/operate-log"
}

// sqlRequest is AuditSqlRequest: page and size are numbers, and
// time_order, which the SDK always sends, asks for oldest first (the
// reader sorts each window anyway).
type sqlRequest struct {
	Time      timeRange `json:"time"`
	Page      int       `json:"page"`
	Size      int       `json:"size"`
	TimeOrder string    `json:"time_order"`
}

// alarmRequest is AlarmLogRequest: page and size are numbers.
type alarmRequest struct {
	Time timeRange `json:"time"`
	Page int       `json:"page"`
	Size int       `json:"size"`
}

// body is the request body of k for the records of [from, to], page page
// of size.
func (k Kind) body(from, to time.Time, page, size int) ([]byte, error) {
	tr := timeRange{StartTime: from.UTC().Format(bodyLayout), EndTime: to.UTC().Format(bodyLayout)}
	switch k {
	case SQL:
		return json.Marshal(sqlRequest{Time: tr, Page: page, Size: size, TimeOrder: "ASC"})
	case Alarm:
		return json.Marshal(alarmRequest{Time: tr, Page: page, Size: size})
	}
	return json.Marshal(request{Time: tr, Page: itoa(page), Size: itoa(size)})
}

// decoder is k's page decoder.
func (k Kind) decoder() func(body []byte, instance string, offset, limit int) ([]window.Record, int64, error) {
	switch k {
	case SQL:
		return decodeSQLPage
	case Alarm:
		return decodeAlarmPage
	}
	return decodePage
}
