package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// CodeArts Artifact: "query repository or file audit logs" (查询仓库或文件的审计日志信息),
//
//	GET /cloudartifact/v5/{tenant_id}/{project_id}/{module}/{repo}/audit?page_num=&page_size=
//
// tenant_id is 8 to 32 letters or digits; module is file or repository;
// page_num is 1..2147483647 (default 1), page_size 1..100 (default 10). The
// answer is {"status":"success","trace_id":…,"result":{"auditInfoList":[…],
// "total":n}}, newest first. Records carry id as a digit string and time
// as "2006/01/02 15:04:05" in UTC+08:00 without a zone, so several records
// can share one second.
//
// The API reference documents no error body; errors here answer
// {"status":"error","trace_id":…,"error_code":…,"error_msg":…}: the
// documented envelope with Huawei Cloud's usual error members. The codes
// are NOT documented stand-ins.

// ArtifactConfig describes the generated CodeArts Artifact audit dataset.
type ArtifactConfig struct {
	// TenantID is the one tenant that exists; another valid tenant id gets
	// 403.
	TenantID string
	// Repos are the repositories that exist; other module/repo pairs get
	// 404.
	Repos []ArtifactRepo
	// RecordsPerRepo is how many records each repository starts with.
	RecordsPerRepo int
	// Start is the time of each repository's first record. Default
	// 2024-01-01T00:00:00Z.
	Start time.Time
	// Interval is the spacing of consecutive records before truncation to
	// the second. Default 10s; below a second, records share seconds.
	Interval time.Duration
}

// ArtifactRepo names one repository (module "repository") or file store
// (module "file").
type ArtifactRepo struct {
	Module string
	Repo   string
}

// ArtifactRecord is one audit record, as served.
type ArtifactRecord struct {
	ID                 string
	Time               time.Time // whole seconds
	Module             string
	Operation          string
	Info               string
	Data               string
	Reason             string // "" is served as null
	UserAgent          string
	Operator           string
	OperatorNickName   string
	OperatorTenantName string
	IPSource           string
	// Malformed is "" or the Malformed* kind the record is served with
	// (see Faults.MalformedRate): MalformedIDNumber, MalformedNoID or
	// MalformedTime.
	Malformed string
	// Odd is "" or the Odd* kind a well-formed record is served with; the
	// fields above are then the odd values, "" for a member served null.
	Odd string
	// Raw is the record's JSON exactly as it is served now.
	Raw string
}

// artifactZone is the zone of the served times.
var artifactZone = time.FixedZone("CST", 8*3600)

const (
	artifactTimeLayout = "2006/01/02 15:04:05"

	codeArtifactInvalidParam = "CLOUDARTIFACT.00010001" // NOT documented
	codeArtifactForbidden    = "CLOUDARTIFACT.00010003" // NOT documented
	codeArtifactNotFound     = "CLOUDARTIFACT.00010004" // NOT documented
	codeArtifactInternal     = "CLOUDARTIFACT.00010500" // NOT documented
)

var artifactTenantRE = regexp.MustCompile(`^[A-Za-z0-9]{8,32}$`)

type artifactAPI struct {
	s        *Server
	seed     int64
	tenant   string
	perRepo  int64
	start    time.Time
	interval time.Duration
	repos    map[ArtifactRepo]*artifactRepo
}

// artifactRepo holds what cannot be computed: how many records were added.
type artifactRepo struct {
	module string
	hash   uint64
	idBase int64

	mu    sync.Mutex
	total int64
}

// artifactErrorBody is what errors answer with; see the comment above.
type artifactErrorBody struct {
	Status    string `json:"status"`
	TraceID   string `json:"trace_id"`
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

func newArtifactAPI(s *Server, cfg ArtifactConfig) *artifactAPI {
	a := &artifactAPI{
		s:        s,
		seed:     s.cfg.Seed,
		tenant:   cfg.TenantID,
		perRepo:  int64(max(cfg.RecordsPerRepo, 0)),
		start:    cfg.Start,
		interval: cfg.Interval,
		repos:    make(map[ArtifactRepo]*artifactRepo),
	}
	if a.start.IsZero() {
		a.start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if a.interval <= 0 {
		a.interval = 10 * time.Second
	}
	for _, r := range cfg.Repos {
		if _, dup := a.repos[r]; dup {
			continue
		}
		h := hashString(r.Module + "/" + r.Repo)
		a.repos[r] = &artifactRepo{
			module: r.Module,
			hash:   h,
			idBase: 2_000_000 + int64(hashOf(a.seed, saltInstance, h)%1_000_000),
			total:  a.perRepo,
		}
	}
	s.handle("GET /cloudartifact/v5/{tenant_id}/{project_id}/{module}/{repo}/audit",
		serviceErrorBody{codeArtifactInternal, "internal server error"}, a.handleAudit)
	return a
}

func (a *artifactAPI) fail(w http.ResponseWriter, status int, code, msg string) {
	a.s.writeError(w, status, artifactErrorBody{"error", a.traceID(w), code, msg})
}

// traceID is "digits-digits-digits" like the documented example.
func (a *artifactAPI) traceID(w http.ResponseWriter) string {
	h := hashString(w.Header().Get(headerRequestID))
	return fmt.Sprintf("143002-%d-%d", 1_700_000_000_000+int64(h%100_000_000_000), h>>54)
}

func (a *artifactAPI) handleAudit(w http.ResponseWriter, r *http.Request) {
	s := a.s
	tenant, module := r.PathValue("tenant_id"), r.PathValue("module")
	if !artifactTenantRE.MatchString(tenant) {
		a.fail(w, http.StatusBadRequest, codeArtifactInvalidParam, "tenant_id must be 8 to 32 letters or digits")
		return
	}
	if module != "file" && module != "repository" {
		a.fail(w, http.StatusBadRequest, codeArtifactInvalidParam, "module must be file or repository")
		return
	}
	pageNum, pageSize, err := parseArtifactQuery(r)
	if err != nil {
		a.fail(w, http.StatusBadRequest, codeArtifactInvalidParam, err.Error())
		return
	}
	if tenant != a.tenant || r.PathValue("project_id") != s.cfg.ProjectID {
		a.fail(w, http.StatusForbidden, codeArtifactForbidden, "no permission for this tenant or project")
		return
	}
	repo := a.repos[ArtifactRepo{module, r.PathValue("repo")}]
	if repo == nil {
		a.fail(w, http.StatusNotFound, codeArtifactNotFound, "repository "+r.PathValue("repo")+" not found")
		return
	}

	// Cut the page under the lock, then drift: the page is what the list
	// held before the insertion.
	f := s.faults.Load()
	repo.mu.Lock()
	total := repo.total
	if f.DriftPerPage > 0 {
		repo.total += int64(f.DriftPerPage)
	}
	repo.mu.Unlock()

	if !s.slowPage(r) {
		return
	}
	offset := (pageNum - 1) * pageSize
	list := []json.RawMessage{}
	for i := offset; i < total && i < offset+pageSize; i++ {
		list = append(list, a.served(repo, total-1-i, f).raw())
	}
	body, _ := json.Marshal(map[string]any{
		"status":   "success",
		"trace_id": a.traceID(w),
		"result":   map[string]any{"auditInfoList": list, "total": total},
	})
	s.stats.pages.Add(1)
	s.stats.records.Add(int64(len(list)))
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(body)
}

// parseArtifactQuery validates page_num and page_size. An empty value
// counts as absent.
func parseArtifactQuery(r *http.Request) (pageNum, pageSize int64, err error) {
	q := r.URL.Query()
	pageNum, pageSize = 1, 10
	if v := q.Get("page_num"); v != "" {
		pageNum, err = strconv.ParseInt(v, 10, 64)
		if err != nil || pageNum < 1 || pageNum > 2147483647 {
			return 0, 0, fmt.Errorf("page_num %q must be an integer from 1 to 2147483647", v)
		}
	}
	if v := q.Get("page_size"); v != "" {
		pageSize, err = strconv.ParseInt(v, 10, 64)
		if err != nil || pageSize < 1 || pageSize > 100 {
			return 0, 0, fmt.Errorf("page_size %q must be an integer from 1 to 100", v)
		}
	}
	return pageNum, pageSize, nil
}

// Vocabulary of generated records.
var (
	artifactFileOps = []string{"upload", "upload", "download", "download", "download", "delete", "move"}
	artifactRepoOps = []string{"create", "modify", "modify", "delete", "addPermission"}
	artifactUsers   = []string{"devcloud_devcloud_y00226182_01", "zhangsan", "张三", "王芳", "jürgen.müller", "ci-bot", "田中太郎", "ops_oncall"}
	artifactNicks   = []string{"", "Zhang San", "张三", "王芳", "Jürgen Müller", ""}
	artifactAgents  = []string{"Apache-HttpClient/4.5.13 (Java/1.8.0_232)", "Apache-Maven/3.9.6 (Java 17.0.9; Linux 5.15.0)",
		"npm/10.2.4 node/v20.11.0 linux x64 workspaces/false", "pip/23.3.1 {\"python\":\"3.11.7\"}", "Go-http-client/1.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", ""}
	artifactPaths = []string{"1/1/1/1-1-1.jar", "com/example/app/2.3.1/app-2.3.1.pom", "release/v1.0/产品包.zip",
		"lodash/-/lodash-4.17.21.tgz", "pkgs/requests-2.31.0-py3-none-any.whl", "a b/c d.txt"}
	artifactReasons = []string{"", "", "", "cleanup policy", "误上传", ""}
)

// record returns the record at ascending position e of repo.
func (a *artifactAPI) record(repo *artifactRepo, e int64) ArtifactRecord {
	h := hashOf(a.seed, saltRecord, repo.hash, uint64(e))
	h2 := hashOf(a.seed, saltRecordExtra, repo.hash, uint64(e))
	t := a.start.Add(time.Duration(e) * a.interval).Truncate(time.Second)
	rec := ArtifactRecord{
		ID:        strconv.FormatInt(repo.idBase+3*e+int64(h%3), 10), // sparse, increasing
		Time:      t.In(artifactZone),
		Module:    repo.module,
		Operator:  artifactUsers[h%uint64(len(artifactUsers))],
		UserAgent: artifactAgents[(h>>8)%uint64(len(artifactAgents))],
		IPSource:  fmt.Sprintf("10.%d.%d.%d", (h2>>8)%256, (h2>>16)%256, 1+(h2>>24)%254),
		Reason:    artifactReasons[(h>>16)%uint64(len(artifactReasons))],
	}
	rec.OperatorNickName = artifactNicks[(h>>24)%uint64(len(artifactNicks))]
	if repo.module == "file" {
		rec.Operation = artifactFileOps[(h>>32)%uint64(len(artifactFileOps))]
		rec.Info = "repo_" + strconv.FormatUint(repo.hash%1_000_000, 10)
		rec.Data = artifactPaths[(h>>40)%uint64(len(artifactPaths))]
	} else {
		rec.Operation = artifactRepoOps[(h>>32)%uint64(len(artifactRepoOps))]
		rec.Info = "repository setting"
	}
	return rec
}

// artifactMalformed names the members a malformed record breaks.
var artifactMalformed = [3]string{MalformedIDNumber, MalformedNoID, MalformedTime}

// served returns the record at ascending position e of repo as it is
// served under f, with Malformed, Odd and Raw set.
func (a *artifactAPI) served(repo *artifactRepo, e int64, f *Faults) ArtifactRecord {
	r := a.record(repo, e)
	r.Malformed, r.Odd = recordKinds(a.seed, repo.hash, r.ID, f, artifactMalformed)
	switch r.Odd {
	case OddUnicode, OddEscapes:
		r.Operator, r.OperatorNickName, r.Data = oddText(r.Odd, r.Operator), oddText(r.Odd, r.OperatorNickName), oddText(r.Odd, r.Data)
	case OddLong:
		r.UserAgent = oddText(r.Odd, r.UserAgent)
	case OddEmpty, OddNull:
		r.Info, r.UserAgent, r.OperatorNickName, r.Reason = "", "", "", ""
	}
	r.Raw = string(r.raw())
	return r
}

// raw is the JSON form, members in the documented example's order.
func (r ArtifactRecord) raw() []byte {
	opt := func(s string) *string { // "" is served as null
		if s == "" {
			return nil
		}
		return &s
	}
	var id any = r.ID
	switch r.Malformed {
	case MalformedIDString:
		id = "not-a-number"
	case MalformedIDNumber:
		id = json.Number("99999999999" + r.ID)
	case MalformedNoID:
		id = nil
	}
	ts := r.Time.Format(artifactTimeLayout)
	if r.Malformed == MalformedTime {
		ts = r.Time.Format("02/01/2006 15h04")
	}
	info, agent := &r.Info, &r.UserAgent
	if r.Odd == OddNull {
		info, agent = nil, nil
	}
	b, err := json.Marshal(struct {
		ID                 any     `json:"id,omitempty"`
		Module             string  `json:"module"`
		Operation          string  `json:"operation"`
		Time               string  `json:"time"`
		Info               *string `json:"info"`
		Data               string  `json:"data"`
		Reason             *string `json:"reason"`
		UserAgent          *string `json:"userAgent"`
		Operator           string  `json:"operator"`
		OperatorNickName   string  `json:"operatorNickName,omitempty"`
		OperatorTenantName string  `json:"operatorTenantName,omitempty"`
		IPSource           string  `json:"ipSource"`
	}{id, r.Module, r.Operation, ts, info, r.Data, opt(r.Reason), agent, r.Operator, r.OperatorNickName, r.OperatorTenantName, r.IPSource})
	if err != nil {
		panic(err) // strings always encode
	}
	if r.Odd == OddExtra {
		b = append(append([]byte("{"+oddExtraHead), b[1:len(b)-1]...), oddExtraTail+"}"...)
	}
	return b
}

// InsertArtifact adds n new records at the newest end of a repository's
// list, as if they had just happened.
func (s *Server) InsertArtifact(module, repo string, n int) error {
	r := s.artifact.repos[ArtifactRepo{module, repo}]
	if r == nil {
		return fmt.Errorf("simulator: no Artifact repository %s/%s", module, repo)
	}
	r.mu.Lock()
	r.total += int64(n)
	r.mu.Unlock()
	return nil
}

// ArtifactRecords returns every record of a repository, oldest first (the
// record at index i is served at position len-1-i of the newest-first
// list), as it is served under the faults in force now, or nil for an
// unknown repository.
func (s *Server) ArtifactRecords(module, repo string) []ArtifactRecord {
	a := s.artifact
	r := a.repos[ArtifactRepo{module, repo}]
	if r == nil {
		return nil
	}
	r.mu.Lock()
	total := r.total
	r.mu.Unlock()
	f := s.faults.Load()
	out := make([]ArtifactRecord, total)
	for e := range total {
		out[e] = a.served(r, e, f)
	}
	return out
}
