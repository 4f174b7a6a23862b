package swr

// decodePage is splitPage with the records as raw bytes, as the tests
// compare them: it splits a 200 response body into its records, which stay
// slices of body, and returns its total, -1 when it has none.
func decodePage(body []byte) (logs [][]byte, total int64, err error) {
	vals, total, err := splitPage(body)
	for _, v := range vals {
		logs = append(logs, v.Raw)
	}
	return logs, total, err
}
