package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwcaudit/hwcaudit/pipeline"
	"github.com/hwcaudit/hwcaudit/sources/huaweiapi"
)

// listDoer serves an audit list newest first, paged by page_num and
// page_size as documented, from records given oldest first.
type listDoer struct{ recs []string }

func (d *listDoer) Do(_ context.Context, req huaweiapi.Request) ([]byte, error) {
	num, _ := strconv.Atoi(req.Query.Get("page_num"))
	size, _ := strconv.Atoi(req.Query.Get("page_size"))
	var page []string
	for i := (num - 1) * size; i < num*size && i < len(d.recs); i++ {
		page = append(page, d.recs[len(d.recs)-1-i])
	}
	return fmt.Appendf(nil, `{"status":"success","trace_id":"t","result":{"auditInfoList":[%s],"total":%d}}`, strings.Join(page, ","), len(d.recs)), nil
}

func TestOneNumericIDDoesNotWedgeTheStream(t *testing.T) {
	// 3,456 records, one of them with its id as a JSON number far above
	// its neighbours' digit strings. Before, its page failed the order
	// check with a permanent error, and every later run stopped at the
	// same offset: 2,598 records were never delivered. Now that record
	// is dead-lettered with the reason and every other one is delivered
	// once, over runs that resume from each other's checkpoints.
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	const n, oddAt = 3456, 858
	d := &listDoer{}
	for i := range n {
		id := strconv.Quote(strconv.Itoa(100000 + i))
		if i == oddAt {
			id = "99999999999"
		}
		d.recs = append(d.recs, fmt.Sprintf(`{"id":%s,"module":"file","operation":"upload","time":%q,"operator":"u"}`,
			id, base.Add(time.Duration(i)*time.Second).In(time.FixedZone("", 8*3600)).Format("2006/01/02 15:04:05")))
	}
	cfg := Config{TenantID: simTenant, Repos: []string{"file/" + simFile}, Endpoint: "https://artifact.example", Timezone: "+08:00", PageSize: 100}
	if err := cfg.Validate("cn-north-4"); err != nil {
		t.Fatal(err)
	}
	s := Streams(cfg, d, "cn-north-4", simProject, base, fixedNow)[0]
	delivered := map[string]int{}
	var refused []pipeline.Invalid
	var cursor []byte
	for run := range 3 {
		rd, err := s.Open(context.Background(), cursor)
		if err != nil {
			t.Fatal(err)
		}
		for {
			p, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
			for _, raw := range p.Records {
				var k struct{ ID string }
				if err := json.Unmarshal(raw, &k); err != nil {
					t.Fatalf("delivered %s: %v", raw, err)
				}
				delivered[k.ID]++
			}
			refused = append(refused, p.Invalid...)
			if p.Cursor != nil {
				cursor = p.Cursor
			}
		}
	}
	for i := range n {
		if id := strconv.Itoa(100000 + i); i != oddAt && delivered[id] != 1 {
			t.Fatalf("record %s delivered %d times (%d records delivered in all)", id, delivered[id], len(delivered))
		}
	}
	if len(refused) != 1 || !strings.Contains(refused[0].Reason, "id 99999999999 is a JSON number; the API documents a string") {
		t.Fatalf("refused %+v, want the numeric id once with its reason", refused)
	}
}
