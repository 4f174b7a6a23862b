package simulator

import "encoding/hex"

// Every generated value and every probabilistic fault is a pure function of
// Config.Seed, a purpose salt and a counter or index, so two servers with the
// same Config produce identical data and identical fault patterns. No shared
// math/rand state is used: a value can be computed for any index in any
// order, which is what lets pages be built in O(limit) without materialising
// the dataset.

// Salts keep the hash streams for different purposes independent.
const (
	saltRequestID uint64 = iota + 1
	saltThrottle
	saltServerError
	saltMalformed
	saltInstance
	saltPermutation
	saltRecord
	saltRecordExtra
	saltDigest
	saltJitter
)

// mix64 is the splitmix64 finaliser: a fast bijective scrambler.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashOf returns a well-mixed 64-bit hash of seed and parts.
func hashOf(seed int64, parts ...uint64) uint64 {
	const golden = 0x9e3779b97f4a7c15
	h := mix64(uint64(seed) + golden)
	for _, p := range parts {
		h = mix64(h ^ (p + golden))
	}
	return h
}

// hashString is FNV-1a, used to turn identifiers into hash inputs.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// unitFloat maps h onto [0, 1).
func unitFloat(h uint64) float64 {
	return float64(h>>11) / (1 << 53)
}

// chance reports whether the event numbered n of the stream salt happens,
// given probability p.
func chance(seed int64, salt uint64, n int64, p float64) bool {
	return p > 0 && unitFloat(hashOf(seed, salt, uint64(n))) < p
}

// every reports whether n (1-based) is a multiple of k; k <= 0 never fires.
func every(n int64, k int) bool {
	return k > 0 && n%int64(k) == 0
}

// appendHex appends the 16 hex digits of each word in words.
func appendHex(dst []byte, words ...uint64) []byte {
	var b [8]byte
	for _, w := range words {
		for i := range b {
			b[i] = byte(w >> (56 - 8*i))
		}
		dst = hex.AppendEncode(dst, b[:])
	}
	return dst
}

// appendUUID appends a version-4-shaped UUID built from h1 and h2.
func appendUUID(dst []byte, h1, h2 uint64) []byte {
	raw := appendHex(make([]byte, 0, 32), h1, h2)
	raw[12] = '4'
	raw[16] = "89ab"[h2&3]
	dst = append(dst, raw[0:8]...)
	dst = append(dst, '-')
	dst = append(dst, raw[8:12]...)
	dst = append(dst, '-')
	dst = append(dst, raw[12:16]...)
	dst = append(dst, '-')
	dst = append(dst, raw[16:20]...)
	dst = append(dst, '-')
	return append(dst, raw[20:32]...)
}
