package ecsdoc

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendTimeMatchesAppendFormat(t *testing.T) {
	const layout = "2006-01-02T15:04:05.000Z07:00"
	times := []time.Time{
		time.Date(2025, 6, 1, 7, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2024, 2, 29, 12, 30, 45, 123_456_789, time.FixedZone("+08:00", 8*3600)),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		{},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(rng.Int64N(400_000_000_000)-100_000_000_000, rng.Int64N(1e9)))
	}
	for _, tm := range times {
		want := tm.UTC().AppendFormat(nil, layout)
		if got := appendTime(nil, tm); string(got) != string(want) {
			t.Fatalf("appendTime(%v) = %s, AppendFormat gives %s", tm, got, want)
		}
	}
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(253402300799), int64(999999999))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		want := tm.UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z07:00")
		if got := appendTime(nil, tm); string(got) != string(want) {
			t.Fatalf("appendTime(%v) = %s, AppendFormat gives %s", tm, got, want)
		}
	})
}

func TestRelated(t *testing.T) {
	for _, tc := range []struct {
		users, ips, hashes []string
		want               string
	}{
		{nil, nil, nil, `{"a":1}`},
		{[]string{""}, []string{""}, nil, `{"a":1}`},
		{[]string{"u"}, nil, nil, `{"a":1,"related":{"user":["u"]}}`},
		{[]string{"", "x"}, []string{"10.0.0.1", "10.0.0.1"}, nil, `{"a":1,"related":{"user":["x"],"ip":["10.0.0.1"]}}`},
		{[]string{"u", "v", "u"}, []string{"10.0.0.1", "", "10.0.0.2"}, []string{"sha256:ab", "ab"}, `{"a":1,"related":{"user":["u","v"],"ip":["10.0.0.1","10.0.0.2"],"hash":["sha256:ab","ab"]}}`},
	} {
		var w Writer
		w.Reset(nil)
		w.Int("a", 1)
		w.Related(tc.users, tc.ips, tc.hashes)
		if got := string(w.Bytes()); got != tc.want {
			t.Errorf("Related(%q, %q, %q) = %s, want %s", tc.users, tc.ips, tc.hashes, got, tc.want)
		}
	}
}
