package simulator

import (
	"encoding/json"
	"strings"
	"time"
)

// Hostile mode: everything a real audit API does to a client at once.
//
// HostileFaults turns on every fault; Hostile adds the dataset options that
// make records awkward to page: runs of records sharing one SWR op_time (to
// the millisecond), CodeArts Artifact records several to a second, and
// DBSS and TaurusDB seconds holding more records than a page. Records stay
// pure functions of the seed, so a test compares what a client stored
// against SWRRecords, ArtifactRecords, DBSSRecords and TaurusDBRecords,
// whose Malformed, Odd and Raw fields say how each record was served.

// HostileFaults is every fault at once, at rates a client must ride out
// without failing a run: latency, throttling with and without Retry-After,
// 503s, records inserted at the head of the offset-paged lists while a
// client pages, malformed and odd records, and slow pages.
func HostileFaults() Faults {
	return Faults{
		Latency:           2 * time.Millisecond,
		ThrottleRate:      0.08,
		RetryAfter:        time.Second,
		NoRetryAfterRate:  0.5,
		ServerErrorRate:   0.05,
		ServerErrorStatus: 503,
		DriftPerPage:      1,
		MalformedRate:     0.03,
		OddRate:           0.15,
		SlowPageEvery:     17,
		SlowPageDelay:     250 * time.Millisecond,
	}
}

// Hostile returns cfg with HostileFaults and the hostile dataset options:
// SWR records in runs of 37 events (about 12 per operation) sharing one
// op_time, runs 2ms apart, so hundreds share a second and runs straddle
// page edges; Artifact records 4 to a second; DBSS and TaurusDB records in
// runs of 25 sharing one second, more than a page when a client asks for
// pages of 20 or fewer. Instances, record counts and Start are kept.
func Hostile(cfg Config) Config {
	cfg.Faults = HostileFaults()
	cfg.SWR.Interval = 2 * time.Millisecond
	cfg.SWR.SameTime = 37
	cfg.Artifact.Interval = 250 * time.Millisecond
	cfg.DBSS.SameSecond = 25
	cfg.TaurusDB.SameSecond = 25
	return cfg
}

// Salts of hostile mode, apart from gen.go's and taurusdb.go's.
const (
	saltOdd uint64 = 0x0dd0_0001 + iota
	saltOddKind
	saltNoRetryAfter
)

// Ways a DBSS, TaurusDB or CodeArts Artifact record can be served
// malformed, besides MalformedNoID and MalformedIDString.
const (
	MalformedIDBool = "id-bool" // "id":true
	// MalformedIDNumber is a CodeArts Artifact id served as a JSON number
	// far above its neighbours' digit strings (the documents say string):
	// one such record once stopped a whole stream for good.
	MalformedIDNumber = "id-number"
	MalformedTime     = "time" // the record's time member(s) not a time
)

// Ways a record can be served odd but valid (see Faults.OddRate).
const (
	OddUnicode = "unicode" // emoji, astral and combining characters appended to text members
	OddEscapes = "escapes" // quotes, backslashes, control characters, U+2028, <>& in text members
	OddLong    = "long"    // a text member about 10 KB long
	OddEmpty   = "empty"   // optional text members empty
	OddNull    = "null"    // optional members null
	OddExtra   = "extra"   // unknown members before and after the documented ones
)

var oddKinds = [...]string{OddUnicode, OddEscapes, OddLong, OddEmpty, OddNull, OddExtra}

// oddKind decides whether, and how, the record identified by key of the
// list identified by list is served odd.
func oddKind(seed int64, list, key uint64, rate float64) string {
	if rate <= 0 {
		return ""
	}
	if unitFloat(hashOf(seed, saltOdd, list, key)) >= rate {
		return ""
	}
	return oddKinds[hashOf(seed, saltOddKind, list, key)%uint64(len(oddKinds))]
}

// malformedKind decides whether, and how, a record is served malformed:
// one of three kinds, which each API names after its own fields.
func malformedKind(seed int64, list, key uint64, rate float64, kinds [3]string) string {
	if rate <= 0 {
		return ""
	}
	h := hashOf(seed, saltMalformed, list, key)
	if unitFloat(h) >= rate {
		return ""
	}
	return kinds[mix64(h)%3]
}

// recordKinds decides how the record with string id of the list hashed
// list is served under f: malformed (one of kinds) or else perhaps odd.
func recordKinds(seed int64, list uint64, id string, f *Faults, kinds [3]string) (malformed, odd string) {
	key := hashString(id)
	malformed = malformedKind(seed, list, key, f.MalformedRate, kinds)
	if malformed == "" {
		odd = oddKind(seed, list, key, f.OddRate)
	}
	return malformed, odd
}

// oddText is s as an odd record of kind serves a text member; empty and
// null serve "" (null is written by the caller).
func oddText(kind, s string) string {
	switch kind {
	case OddUnicode:
		return s + " 🚀👩‍💻 日本語 ünïcödé 𝔘𝔫𝔦 e\u0301"
	case OddEscapes:
		return s + " \"quoted\" back\\slash\ttab\nnewline\r\u0001\u001f \u2028\u2029 </script>&amp;"
	case OddLong:
		return s + "/" + strings.Repeat("a-very-long-path-segment/", 400)
	case OddEmpty, OddNull:
		return ""
	}
	return s
}

// oddExtraHead and oddExtraTail are the unknown members of an OddExtra
// record, without braces: the head ends and the tail starts with a comma.
const (
	oddExtraHead = `"x_schema":{"v":2,"tags":["ü",null,true,1.5e3,{}]},`
	oddExtraTail = `,"x_trace":null,"x_empty":"","x_nested":{"a":{"b":[[],{"c":"\u00e9\"\\"}]}}`
)

// appendJSONString appends s as a JSON string; unlike the generators'
// fixed vocabulary, odd text needs escaping.
func appendJSONString(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always encodes
	}
	return append(dst, b...)
}
