// The walkthrough tag keeps the Helm SDK and the Kubernetes API out of
// the package's other test builds, the fuzz targets' instrumented ones
// above all (their compile took five minutes); scripts/test.sh runs these
// tests with -tags walkthrough.

//go:build walkthrough

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// The walkthrough's commands run from the repository root.
const (
	repoRoot       = "../.."
	walkthroughDoc = "README.md"
	walkthroughH2  = "## Deploying on Kubernetes"
	chartPath      = "charts/hwcaudit"
)

// TestReadmeWalkthrough checks every command of the README's "Deploying on
// Kubernetes" section, so that the walkthrough cannot drift from the chart,
// the exporter or its real output:
//
//   - helm install/upgrade/template: the values are merged as helm does
//     (-f, --set), validated against values.schema.json and rendered with
//     the Helm SDK; with HWCAUDIT_TEST_HELM (scripts/helm.sh) the same
//     command also runs as `helm template` with the pinned binary, which
//     must render the same objects. (helm install --dry-run=client still
//     asks a cluster for its version, so helm template stands in for it.)
//     Every --set path must exist in values.yaml, every pod's environment
//     (ConfigMap, Secret, env) must load as a valid exporter configuration,
//     and every exporter command line the chart renders must parse.
//   - kubectl: no cluster here, so each command's resource names, Secret
//     names and keys, and label selectors are checked against what the
//     chart renders with the values of the preceding helm commands.
//   - go run ./scripts/image and crane push: the flags are the builder's,
//     the layout pushed was built earlier, pushed as one index of every
//     platform (--index), tagged with the version it was built with, and
//     the pushed image is the one the chart runs.
//   - exporter: parsed against the real subcommands and flags.
//   - jq: the filter runs on the real log of `exporter demo`, and the
//     summary the README shows has the fields and counts of that log.
//   - every HWCAUDIT_* variable named exists in `exporter help`.
func TestReadmeWalkthrough(t *testing.T) {
	section := readWalkthrough(t)
	w := newWalk(t)
	if w.helm == "" {
		t.Log("HWCAUDIT_TEST_HELM unset: helm commands are rendered with the Helm SDK only; set it to the path printed by scripts/helm.sh to run them with the pinned helm too")
	}

	blocks := fencedBlocks(section)
	if len(blocks["sh"]) < 8 {
		t.Fatalf("found %d sh blocks in %q; is the extraction broken?", len(blocks["sh"]), walkthroughH2)
	}
	for _, block := range blocks["sh"] {
		for _, line := range logicalLines(block) {
			w.line(line)
		}
	}
	w.finish()

	for _, need := range []string{"helm install", "helm upgrade", "backfill.enabled=true", "shards=", "dashboard.enabled=true",
		"helm test", "create secret generic", "create job --from=cronjob/", "logs", "jq", "go run ./scripts/image", "crane push"} {
		if !slices.ContainsFunc(w.seen, func(s string) bool { return strings.Contains(s, need) }) {
			t.Errorf("the walkthrough has no command with %q", need)
		}
	}

	// The summary the README shows must be a real one: same fields, and the
	// same counts as `exporter demo` produces now.
	if len(blocks["json"]) != 1 {
		t.Fatalf("want one json block (the run summary) in the walkthrough, found %d", len(blocks["json"]))
	}
	shown := map[string]any{}
	if err := json.Unmarshal([]byte(strings.TrimSpace(blocks["json"][0])), &shown); err != nil {
		t.Fatalf("the summary in the README is not one JSON line: %v\n%s", err, blocks["json"][0])
	}
	real := w.demoSummary()
	if !slices.Equal(slices.Sorted(maps.Keys(shown)), slices.Sorted(maps.Keys(real))) {
		t.Errorf("the README's summary has the fields %v; exporter demo logs %v", slices.Sorted(maps.Keys(shown)), slices.Sorted(maps.Keys(real)))
	}
	for _, k := range []string{"msg", "level", "streams", "failed", "interrupted", "fetched", "written", "dead_lettered"} {
		if fmt.Sprint(shown[k]) != fmt.Sprint(real[k]) {
			t.Errorf("the README's summary has %s=%v; exporter demo logs %v (run it again and paste its line)", k, shown[k], real[k])
		}
	}

	// Inline `exporter …` commands must parse too.
	for _, m := range regexp.MustCompile("`(exporter [^`]+)`").FindAllStringSubmatch(section, -1) {
		args := strings.Fields(m[1])[1:]
		if err := validateExporterArgs(args); err != nil {
			t.Errorf("README: `%s`: %v", strings.Join(strings.Fields(m[1]), " "), err)
		}
	}

	// Every variable named in the walkthrough and its values files exists.
	texts := map[string]string{walkthroughDoc: section}
	examples, _ := filepath.Glob(filepath.Join(repoRoot, chartPath, "examples", "*.yaml"))
	if len(examples) == 0 {
		t.Error("no values files in charts/hwcaudit/examples")
	}
	for _, f := range examples {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = string(b)
		if !slices.Contains(w.valueFiles, filepath.Clean(f)) {
			t.Errorf("%s is not used by the walkthrough", f)
		}
	}
	for name, text := range texts {
		for _, v := range regexp.MustCompile(`\b(HWCAUDIT|HUAWEICLOUD_SDK)_[A-Z0-9_]*[A-Z0-9]`).FindAllString(text, -1) {
			if !knownVariable(v) {
				t.Errorf("%s names %s, which `exporter help` does not list", name, v)
			}
		}
	}
}

func readWalkthrough(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, walkthroughDoc))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+walkthroughH2+"\n")
	if i < 0 {
		t.Fatalf("%s has no section %q", walkthroughDoc, walkthroughH2)
	}
	s = s[i+1:]
	if j := strings.Index(s[len(walkthroughH2):], "\n## "); j >= 0 {
		s = s[:len(walkthroughH2)+j]
	}
	return s
}

// fencedBlocks returns the contents of the fenced code blocks by language.
func fencedBlocks(md string) map[string][]string {
	blocks := map[string][]string{}
	var lang string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.HasPrefix(line, "```"):
			in, lang, cur = true, strings.TrimSpace(strings.TrimPrefix(line, "```")), nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks[lang] = append(blocks[lang], strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// logicalLines joins backslash-continued lines and drops blank ones.
func logicalLines(block string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(block, "\n") {
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	return out
}

// shellLine is one command line split as a POSIX shell splits it, for the
// subset the README may use: words, quotes, $VAR, $(…), |, &&, ||, ;
// and comments. Redirections, backticks and background jobs are refused,
// which also catches <placeholders> that a shell would take for
// redirections.
type shellLine struct {
	cmds   [][]string // simple commands, in order
	ops    []string   // ops[i] joins cmds[i] and cmds[i+1]
	substs []string   // the command lines inside $(…)
}

// substituted stands for the output of a $(…).
const substituted = "$(…)"

func splitShell(s string, lookup func(string) string) (shellLine, error) {
	var l shellLine
	var argv []string
	var word strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			argv = append(argv, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCmd := func(op string) error {
		endWord()
		if len(argv) == 0 {
			return fmt.Errorf("empty command before %q", op)
		}
		l.cmds = append(l.cmds, argv)
		argv = nil
		if op != "" {
			l.ops = append(l.ops, op)
		}
		return nil
	}
	rs := []rune(s)
	// dollar expands $NAME, ${NAME} or $(…) at rs[i] ('$') and returns the
	// index of its last rune.
	dollar := func(i int) (int, error) {
		inWord = true
		switch {
		case i+1 < len(rs) && rs[i+1] == '(':
			depth, j := 0, i+1
			var q rune
			for ; j < len(rs); j++ {
				switch c := rs[j]; {
				case q != 0:
					if c == q {
						q = 0
					}
				case c == '\'' || c == '"':
					q = c
				case c == '(':
					depth++
				case c == ')':
					depth--
				}
				if depth == 0 {
					break
				}
			}
			if j == len(rs) {
				return 0, fmt.Errorf("unterminated $(")
			}
			l.substs = append(l.substs, string(rs[i+2:j]))
			word.WriteString(substituted)
			return j, nil
		case i+1 < len(rs) && rs[i+1] == '{':
			end := slices.Index(rs[i:], '}')
			if end < 0 {
				return 0, fmt.Errorf("unterminated ${")
			}
			word.WriteString(lookup(string(rs[i+2 : i+end])))
			return i + end, nil
		default:
			j := i + 1
			for j < len(rs) && (rs[j] == '_' || rs[j] >= 'A' && rs[j] <= 'Z' || rs[j] >= 'a' && rs[j] <= 'z' || rs[j] >= '0' && rs[j] <= '9') {
				j++
			}
			if j == i+1 {
				word.WriteRune('$')
				return i, nil
			}
			word.WriteString(lookup(string(rs[i+1 : j])))
			return j - 1, nil
		}
	}
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t':
			endWord()
		case c == '#' && !inWord:
			i = len(rs)
		case c == '\\' && i+1 < len(rs):
			i++
			word.WriteRune(rs[i])
			inWord = true
		case c == '\'':
			end := slices.Index(rs[i+1:], '\'')
			if end < 0 {
				return l, fmt.Errorf("unterminated single quote")
			}
			word.WriteString(string(rs[i+1 : i+1+end]))
			inWord = true
			i += end + 1
		case c == '"':
			inWord = true
			for i++; i < len(rs) && rs[i] != '"'; i++ {
				switch {
				case rs[i] == '\\' && i+1 < len(rs) && strings.ContainsRune("\"\\$`", rs[i+1]):
					i++
					word.WriteRune(rs[i])
				case rs[i] == '$':
					j, err := dollar(i)
					if err != nil {
						return l, err
					}
					i = j
				case rs[i] == '`':
					return l, fmt.Errorf("backticks: use $(…)")
				default:
					word.WriteRune(rs[i])
				}
			}
			if i == len(rs) {
				return l, fmt.Errorf("unterminated double quote")
			}
		case c == '$':
			j, err := dollar(i)
			if err != nil {
				return l, err
			}
			i = j
		case c == '|' || c == '&' || c == ';':
			op := string(c)
			if i+1 < len(rs) && rs[i+1] == c && c != ';' {
				op += string(c)
				i++
			}
			if op == "&" {
				return l, fmt.Errorf("background job (&)")
			}
			if err := endCmd(op); err != nil {
				return l, err
			}
		case c == '<' || c == '>' || c == '`':
			return l, fmt.Errorf("%q outside quotes: a redirection, or a <placeholder> the shell would take for one", c)
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	endWord()
	if len(argv) > 0 {
		l.cmds = append(l.cmds, argv)
	} else if len(l.ops) > 0 {
		return l, fmt.Errorf("line ends with %q", l.ops[len(l.ops)-1])
	}
	return l, nil
}

// TestWalkthroughCatchesDrift feeds the walkthrough checks commands that
// no longer match the chart or the exporter, and wants each refused for
// its reason.
func TestWalkthroughCatchesDrift(t *testing.T) {
	const install = "helm install audit charts/hwcaudit -n security --set config.HWCAUDIT_REGION=cn-north-4 --set config.HWCAUDIT_PROJECT_ID=0123456789abcdef0123456789abcdef --set config.HWCAUDIT_SWR_INSTANCES=swr-1"
	setup := []string{"kubectl create namespace security", install, "go run ./scripts/image -o out/built -version v0.1.0"}
	for _, tc := range []struct{ line, want string }{
		{"kubectl -n security get cronjob audit-hwcaudit-typo", "cronjob audit-hwcaudit-typo does not exist"},
		{"kubectl -n security create job --from=cronjob/audit audit-now", "cronjob audit does not exist"},
		{"kubectl -n security logs -l app.kubernetes.io/instance=audit,app.kubernetes.io/component=backfil", "no pod in namespace security has the labels"},
		{"kubectl -n security get jobs -l app.kubernetes.io/instance=audit,app.kubernetes.io/component=backfill", "no job in namespace security has the labels"},
		{"kubectl -n monitoring get cronjob audit-hwcaudit", "namespace monitoring was not created"},
		{"kubectl -n security logs job/audit-hwcaudit-first-run", "job audit-hwcaudit-first-run does not exist"},
		{install + " --set shedule=x", "values.yaml has no shedule"},
		{install + " --set config.HWCAUDIT_SINK=kafka", "HWCAUDIT_SINK is not a variable"},
		{install + " --set config.HWCAUDIT_SINKS=kafka", "HWCAUDIT_KAFKA_BROKERS"},
		{install + " --set schedule=5", "want string"},
		{install + " --set credentials.existingSecret=missing", "Secret missing is neither rendered"},
		{install + " --set config.HWCAUDIT_KAFKA_TLS_CA_FILE=/etc/kafka/ca.crt", "no volume is mounted there"},
		{install + " --set backfill.enabled=true --set backfill.from=2026-01-01T00:00:00Z --set backfill.to=2026-01-02T00:00:00Z --set backfill.extraArgs[0]=--form", "flag provided but not defined: -form"},
		{install + " --set image.repository=swr.example/hwcaudit", ""},
		{"helm install audit charts/hwcaudit -n elsewhere", "namespace elsewhere is neither created"},
		{"helm install audit charts/other -n security", "the walkthrough installs charts/hwcaudit"},
		{"helm upgrade audit charts/hwcaudit -n security --reuse-values", "--reuse-values"},
		{"helm upgrade audit charts/hwcaudit -n security --frobnicate", "flag --frobnicate"},
		{"helm upgrade other charts/hwcaudit -n security", "no earlier helm install"},
		{"helm test other -n security", "release other is not installed"},
		{"exporter backfill --form 2026-01-01T00:00:00Z", "-form"},
		{"exporter chek", `unknown command "chek"`},
		{"helm install audit <chart>", "placeholder"},
		{"kubectl -n security logs job/audit-hwcaudit-manual | jq .", "on the log of exporter demo"},
		{"frobnicate --now", "a command this test does not know"},
		{"crane push out/image swr.example/hwcaudit:0.1.0", "without --index"},
		{"crane push --index out/other swr.example/hwcaudit:0.1.0", "not built earlier"},
		{"crane push --index out/built swr.example/hwcaudit:v0.1.0", "tag it 0.1.0"},
		{"crane push --index out/built swr.example:5000/hwcaudit", "tag it 0.1.0"},
		{"go run ./scripts/image -o out/image -version v0.1.0 -platform linux/arm64", "flag -platform"},
		{"go run ./scripts/image -o out/image -version v0.1.0 -platforms linux/arm64", "need linux/amd64"},
		{"go build ./cmd/exporter", "the walkthrough runs only go run ./scripts/image"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			w := newWalk(t)
			var errs []string
			w.errorf = func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
			for _, line := range setup {
				w.line(line)
			}
			if tc.want == "" {
				// Renders, but runs an image the walkthrough never pushed.
				w.line("go run ./scripts/image -o out/image -version v1")
				w.line("crane push --index out/image swr.example/hwcaudit:1")
				tc.want = "which the walkthrough does not push"
			}
			if len(errs) > 0 {
				t.Fatalf("setup refused: %v", errs)
			}
			w.line("kubectl -n security create job --from=cronjob/audit-hwcaudit audit-hwcaudit-manual")
			w.line(tc.line)
			w.finish()
			if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
				t.Errorf("%s: want an error about %q, got %q", tc.line, tc.want, errs)
			}
		})
	}
}

func TestSplitShell(t *testing.T) {
	env := func(name string) string { return "<" + name + ">" }
	for _, tc := range []struct {
		in   string
		want string
	}{
		{`helm install a b --set x="$AK" --set 'y=$z' # comment`, `[[helm install a b --set x=<AK> --set y=$z]]`},
		{`job=$(kubectl get jobs -o name | tail -n 1)`, `[[job=$(…)]] subst [kubectl get jobs -o name | tail -n 1]`},
		{`kubectl logs "$job" | jq -cR 'fromjson? | select(.msg == "x")'`, `[[kubectl logs <job>] [jq -cR fromjson? | select(.msg == "x")]]`},
		{`a "b\"c" ${D}e && f`, `[[a b"c <D>e] [f]]`},
	} {
		l, err := splitShell(tc.in, env)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		got := fmt.Sprint(l.cmds)
		if len(l.substs) > 0 {
			got += fmt.Sprint(" subst ", l.substs)
		}
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{`helm install audit <chart>`, "echo `date`", `a > b`, `a &`, `a "b`, `a |`} {
		if _, err := splitShell(bad, env); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// knownVariable reports whether the exporter, the Huawei Cloud SDK or the
// AWS SDK (the S3 sink and checkpoints) reads name.
func knownVariable(name string) bool {
	for _, v := range slices.Concat(variables, sdkVariables, awsVariables) {
		if v.name == name {
			return true
		}
	}
	// The AWS SDK's region, and the Go runtime's soft memory limit that the
	// chart sets from the container's memory limit.
	return name == "AWS_REGION" || name == "GOMEMLIMIT"
}

// validateExporterArgs parses an exporter command line (without the
// program name) as the exporter does, without running it.
func validateExporterArgs(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no command")
	}
	rest := args[1:]
	switch args[0] {
	case "run":
		_, err := runArgs(rest)
		return err
	case "backfill":
		_, err := parseBackfillArgs(rest, time.Now(), io.Discard)
		return err
	case "check", "help", "version":
		if len(rest) > 0 {
			return fmt.Errorf("%s takes no arguments, got %q", args[0], rest)
		}
	case "checkpoints":
		_, err := parseCheckpoints(rest)
		return err
	case "demo":
		fl := demoFlags(io.Discard)
		if err := parseFlags(fl, rest); err != nil {
			return err
		}
		if fl.NArg() > 0 {
			return fmt.Errorf("demo: unexpected argument %q", fl.Arg(0))
		}
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}

// objects are the manifests of one rendering.
type objects struct {
	cronJobs        []batchv1.CronJob
	jobs            []batchv1.Job
	pods            []corev1.Pod
	configMaps      []corev1.ConfigMap
	secrets         []corev1.Secret
	serviceAccounts []corev1.ServiceAccount
	pvcs            []corev1.PersistentVolumeClaim
	ids             []string // kind/name, sorted
}

func decodeManifests(files map[string]string) (objects, error) {
	var o objects
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for _, doc := range releaseutil.SplitManifests(content) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			if err := o.add(doc); err != nil {
				return o, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	slices.Sort(o.ids)
	return o, nil
}

// add decodes one manifest strictly into its Kubernetes type.
func (o *objects) add(doc string) error {
	var tm struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		return err
	}
	o.ids = append(o.ids, tm.Kind+"/"+tm.Metadata.Name)
	strict := func(v any) error { return yaml.UnmarshalStrict([]byte(doc), v) }
	var err error
	switch tm.APIVersion + "/" + tm.Kind {
	case "batch/v1/CronJob":
		var v batchv1.CronJob
		err = strict(&v)
		o.cronJobs = append(o.cronJobs, v)
	case "batch/v1/Job":
		var v batchv1.Job
		err = strict(&v)
		o.jobs = append(o.jobs, v)
	case "v1/Pod":
		var v corev1.Pod
		err = strict(&v)
		o.pods = append(o.pods, v)
	case "v1/ConfigMap":
		var v corev1.ConfigMap
		err = strict(&v)
		o.configMaps = append(o.configMaps, v)
	case "v1/Secret":
		var v corev1.Secret
		err = strict(&v)
		o.secrets = append(o.secrets, v)
	case "v1/ServiceAccount":
		var v corev1.ServiceAccount
		err = strict(&v)
		o.serviceAccounts = append(o.serviceAccounts, v)
	case "v1/PersistentVolumeClaim":
		var v corev1.PersistentVolumeClaim
		err = strict(&v)
		o.pvcs = append(o.pvcs, v)
	default:
		err = fmt.Errorf("unexpected kind %s %s", tm.APIVersion, tm.Kind)
	}
	return err
}

// podSpecs are the exporter pods of a rendering, by a name for messages.
func (o objects) podSpecs() map[string]corev1.PodSpec {
	specs := map[string]corev1.PodSpec{}
	for _, cj := range o.cronJobs {
		specs["CronJob "+cj.Name] = cj.Spec.JobTemplate.Spec.Template.Spec
	}
	for _, j := range o.jobs {
		specs["Job "+j.Name] = j.Spec.Template.Spec
	}
	for _, p := range o.pods {
		specs["Pod "+p.Name] = p.Spec
	}
	return specs
}

// release is the last rendering of one Helm release.
type release struct {
	name, ns string
	objs     objects
}

// walk follows the walkthrough's commands in order, keeping what they
// created.
type walk struct {
	t          *testing.T
	errorf     func(format string, args ...any) // t.Errorf, or a collector
	chart      *chart.Chart
	schema     map[string]any
	helm       string
	releases   map[string]*release          // by namespace/name
	namespaces map[string]bool              // created with kubectl
	secrets    map[string]map[string]bool   // namespace/name: keys, created with kubectl
	jobs       map[string]map[string]string // namespace/name: labels, created with kubectl
	vars       map[string]string            // shell variables assigned by the walkthrough
	built      map[string]string            // OCI layouts scripts/image wrote: the version stamped
	pushed     map[string]bool              // image references pushed
	images     map[string]string            // image: where the chart runs it
	valueFiles []string
	seen       []string // every command line, as written
	demoLog    string
}

func newWalk(t *testing.T) *walk {
	c, err := loader.Load(filepath.Join(repoRoot, chartPath))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	var schema map[string]any
	if err := json.Unmarshal(c.Schema, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	w := &walk{
		t: t, errorf: t.Errorf, chart: c, schema: schema,
		releases: map[string]*release{}, namespaces: map[string]bool{"default": true},
		secrets: map[string]map[string]bool{}, jobs: map[string]map[string]string{}, vars: map[string]string{},
		built: map[string]string{}, pushed: map[string]bool{}, images: map[string]string{},
	}
	w.helm = os.Getenv("HWCAUDIT_TEST_HELM")
	if w.helm == "" {
		if os.Getenv("HWCAUDIT_TEST_HELM_REQUIRED") == "1" {
			t.Fatal("HWCAUDIT_TEST_HELM_REQUIRED=1 but HWCAUDIT_TEST_HELM is unset; run HWCAUDIT_TEST_HELM=$(scripts/helm.sh)")
		}
	}
	return w
}

// lookup gives the shell variables the reader exports (credentials) an
// example value, and those the walkthrough assigns their stand-in.
func (w *walk) lookup(name string) string {
	if v, ok := w.vars[name]; ok {
		return v
	}
	if strings.ToUpper(name) != name {
		w.errorf("shell variable $%s is used before the walkthrough assigns it", name)
	}
	return exampleValue(name, "example-"+strings.ToLower(name))
}

// exampleValue is def, or for a project id one of the documented shape (32
// letters or digits), which the exporter checks.
func exampleValue(name, def string) string {
	if strings.HasSuffix(name, "PROJECT_ID") {
		return "0123456789abcdef0123456789abcdef"
	}
	return def
}

func (w *walk) line(line string) {
	w.t.Helper()
	w.seen = append(w.seen, line)
	l, err := splitShell(line, w.lookup)
	if err != nil {
		w.errorf("README: %s\n  cannot be run as written: %v", line, err)
		return
	}
	for _, sub := range l.substs {
		w.line(sub)
	}
	for i, argv := range l.cmds {
		var prev []string
		if i > 0 {
			if l.ops[i-1] == "|" {
				prev = l.cmds[i-1]
			}
		}
		if err := w.command(argv, prev); err != nil {
			w.errorf("README: %s\n  %v", line, err)
		}
	}
}

// command checks one simple command; prev is the command piping into it.
func (w *walk) command(argv, prev []string) error {
	if name, val, ok := strings.Cut(argv[0], "="); ok && len(argv) == 1 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(name) {
		w.vars[name] = val
		return nil
	}
	switch filepath.Base(argv[0]) {
	case "helm":
		return w.helmCmd(argv[1:])
	case "kubectl":
		return w.kubectl(argv[1:])
	case "go":
		return w.goRun(argv[1:])
	case "crane":
		return w.crane(argv[1:])
	case "exporter":
		return validateExporterArgs(argv[1:])
	case "jq":
		return w.jq(argv[1:], prev)
	case "tail", "head", "grep":
		if prev == nil {
			return fmt.Errorf("%s reads no pipe", argv[0])
		}
		return nil
	}
	return fmt.Errorf("%s: a command this test does not know; teach TestReadmeWalkthrough how to check it", argv[0])
}

// flags splits args into positional arguments and flags. valued lists the
// flags that take a value (as --f=v or --f v); any other flag must be in
// boolean.
func flags(args []string, valued, boolean []string) (pos []string, fl map[string][]string, err error) {
	fl = map[string][]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case slices.Contains(valued, name):
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, fmt.Errorf("%s needs a value", name)
				}
				i++
				val = args[i]
			}
			fl[name] = append(fl[name], val)
		case slices.Contains(boolean, name) && !hasVal:
			fl[name] = append(fl[name], "true")
		default:
			return nil, nil, fmt.Errorf("flag %s: not one this test knows; teach TestReadmeWalkthrough how to check it", a)
		}
	}
	return pos, fl, nil
}

func (w *walk) helmCmd(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("helm without a command")
	}
	switch args[0] {
	case "install", "upgrade", "template":
		return w.helmRender(args[0], args[1:])
	case "test":
		pos, fl, err := flags(args[1:], []string{"-n", "--namespace", "--timeout"}, []string{"--logs"})
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("helm test RELEASE, got %q", pos)
		}
		r := w.releases[namespace(fl)+"/"+pos[0]]
		if r == nil {
			return fmt.Errorf("helm test: release %s is not installed in namespace %s", pos[0], namespace(fl))
		}
		for _, p := range r.objs.pods {
			if p.Annotations["helm.sh/hook"] == "test" {
				return nil
			}
		}
		return fmt.Errorf("helm test: the chart renders no test hook with these values")
	}
	return fmt.Errorf("helm %s: not a command this test knows", args[0])
}

func namespace(fl map[string][]string) string {
	if ns := slices.Concat(fl["-n"], fl["--namespace"]); len(ns) > 0 {
		return ns[len(ns)-1]
	}
	return "default"
}

func (w *walk) helmRender(cmd string, args []string) error {
	// Flags that mean something to helm install/upgrade but not to helm
	// template are dropped for the pinned binary.
	upgradeOnly := []string{"--install", "-i"}
	pos, fl, err := flags(args,
		[]string{"-n", "--namespace", "-f", "--values", "--set", "--set-string", "--timeout"},
		[]string{"--create-namespace", "--wait", "--atomic", "--install", "-i", "--reuse-values"})
	if err != nil {
		return err
	}
	if fl["--reuse-values"] != nil {
		return fmt.Errorf("--reuse-values: pass the values files and --set flags again, so that the command shows every value (and can be checked)")
	}
	if len(pos) != 2 {
		return fmt.Errorf("helm %s RELEASE CHART, got %q", cmd, pos)
	}
	name, chartArg := pos[0], pos[1]
	if filepath.Clean(chartArg) != chartPath {
		return fmt.Errorf("chart %s: the walkthrough installs %s", chartArg, chartPath)
	}
	ns := namespace(fl)
	if cmd != "template" && !w.namespaces[ns] && fl["--create-namespace"] == nil {
		return fmt.Errorf("namespace %s is neither created earlier (kubectl create namespace) nor by --create-namespace", ns)
	}
	if cmd == "upgrade" && fl["--install"] == nil && fl["-i"] == nil && w.releases[ns+"/"+name] == nil {
		return fmt.Errorf("helm upgrade %s: no earlier helm install of that release in %s", name, ns)
	}

	// Merged as helm merges them (pkg/cli/values, which this test does not
	// import for its registry dependencies): files in order, each deep-merged
	// over the previous ones, then --set, then --set-string.
	vals := map[string]any{}
	for _, f := range slices.Concat(fl["-f"], fl["--values"]) {
		p := filepath.Clean(filepath.Join(repoRoot, f))
		w.valueFiles = append(w.valueFiles, p)
		fv, err := chartutil.ReadValuesFile(p)
		if err != nil {
			return fmt.Errorf("-f %s: %w", f, err)
		}
		vals = mergeValues(vals, fv)
	}
	for _, s := range fl["--set"] {
		if err := w.checkSetPaths(s); err != nil {
			return err
		}
		if err := strvals.ParseInto(s, vals); err != nil {
			return fmt.Errorf("--set %s: %w", s, err)
		}
	}
	for _, s := range fl["--set-string"] {
		if err := w.checkSetPaths(s); err != nil {
			return err
		}
		if err := strvals.ParseIntoString(s, vals); err != nil {
			return fmt.Errorf("--set-string %s: %w", s, err)
		}
	}
	rv, err := chartutil.ToRenderValues(w.chart, vals,
		chartutil.ReleaseOptions{Name: name, Namespace: ns, Revision: 1, IsInstall: cmd != "upgrade", IsUpgrade: cmd == "upgrade"},
		chartutil.DefaultCapabilities)
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	files, err := engine.Engine{Strict: true}.Render(w.chart, rv)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	objs, err := decodeManifests(files)
	if err != nil {
		return err
	}

	if w.helm != "" {
		targs := []string{"template"} // args hold RELEASE CHART where the README has them
		for i := 0; i < len(args); i++ {
			if slices.Contains(upgradeOnly, args[i]) {
				continue
			}
			targs = append(targs, args[i])
		}
		got, err := w.helmTemplate(targs)
		if err != nil {
			return err
		}
		if !slices.Equal(got.ids, objs.ids) {
			return fmt.Errorf("helm %s renders %v; the Helm SDK rendered %v", strings.Join(targs, " "), got.ids, objs.ids)
		}
	}

	r := &release{name: name, ns: ns, objs: objs}
	if cmd != "template" {
		w.releases[ns+"/"+name] = r
	}
	return w.checkRelease(r)
}

// mergeValues deep-merges b over a, as helm merges values files.
func mergeValues(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	for k, v := range b {
		if vm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// helmTemplate runs the pinned helm, kept away from the user's
// repositories, cache and kubeconfig.
func (w *walk) helmTemplate(args []string) (objects, error) {
	cmd := exec.Command(w.helm, args...)
	cmd.Dir = repoRoot
	dir := w.t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+dir, "HELM_CONFIG_HOME="+dir, "HELM_DATA_HOME="+dir, "KUBECONFIG="+filepath.Join(dir, "kubeconfig"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return objects{}, fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return decodeManifests(map[string]string{"helm template": string(out)})
}

// checkSetPaths checks that every key a --set sets is a key of values.yaml,
// or a key of a map the schema leaves open (config, annotations, …), and
// that config keys are variables the exporter reads.
func (w *walk) checkSetPaths(expr string) error {
	set, err := strvals.Parse(expr)
	if err != nil {
		return fmt.Errorf("--set %s: %w", expr, err)
	}
	var walkMap func(path string, set map[string]any, defaults map[string]any, schema map[string]any) error
	walkMap = func(path string, set, defaults, schema map[string]any) error {
		props, closed := schema["properties"].(map[string]any)
		envMap := schema["$ref"] == "#/definitions/envMap"
		for k, v := range set {
			p := strings.TrimPrefix(path+"."+k, ".")
			def, inDefaults := defaults[k]
			if !inDefaults && closed {
				return fmt.Errorf("--set %s: values.yaml has no %s", expr, p)
			}
			if envMap && !knownVariable(k) {
				return fmt.Errorf("--set %s: %s is not a variable the exporter reads", expr, k)
			}
			sub, isMap := v.(map[string]any)
			if !isMap {
				continue
			}
			defMap, _ := def.(map[string]any)
			var subSchema map[string]any
			if props != nil {
				subSchema, _ = props[k].(map[string]any)
			}
			if err := walkMap(p, sub, defMap, subSchema); err != nil {
				return err
			}
		}
		return nil
	}
	return walkMap("", set, w.chart.Values, w.schema)
}

// checkRelease checks what each exporter pod of a rendering would run:
// its image, arguments, ConfigMap and Secrets, mounted files and the
// configuration the exporter would load from its environment.
func (w *walk) checkRelease(r *release) error {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	for what, pod := range r.objs.podSpecs() {
		ctr := pod.Containers[0]
		w.images[ctr.Image] = what
		if err := validateExporterArgs(ctr.Args); err != nil {
			fail("%s runs exporter %q: %v", what, ctr.Args, err)
		}
		if sa := pod.ServiceAccountName; sa != "default" && !slices.ContainsFunc(r.objs.serviceAccounts, func(s corev1.ServiceAccount) bool { return s.Name == sa }) {
			fail("%s uses ServiceAccount %s, which the chart does not render", what, sa)
		}
		env := map[string]string{}
		for _, ef := range ctr.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				i := slices.IndexFunc(r.objs.configMaps, func(c corev1.ConfigMap) bool { return c.Name == ef.ConfigMapRef.Name })
				if i < 0 {
					fail("%s reads ConfigMap %s, which the chart does not render", what, ef.ConfigMapRef.Name)
					continue
				}
				maps.Copy(env, r.objs.configMaps[i].Data)
			case ef.SecretRef != nil:
				keys, err := w.secretKeys(r, ef.SecretRef.Name)
				if err != nil {
					fail("%s: %v", what, err)
				}
				for k, v := range keys {
					env[k] = v
				}
			}
		}
		for _, e := range ctr.Env {
			v := e.Value
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && strings.Contains(e.ValueFrom.FieldRef.FieldPath, "job-completion-index") {
				v = "0"
			}
			for k, kv := range env {
				v = strings.ReplaceAll(v, "$("+k+")", kv)
			}
			env[e.Name] = v
		}
		for k := range env {
			if !knownVariable(k) && k != "JOB_COMPLETION_INDEX" {
				fail("%s sets %s, which the exporter does not read", what, k)
			}
		}
		if _, err := loadConfig(context.Background(), envconfig.MapLookuper(env), time.Now()); err != nil {
			fail("%s: the exporter would refuse its configuration: %v", what, err)
		}
		// Files the configuration names must be mounted from a Secret that
		// holds them.
		for k, path := range env {
			if !strings.HasSuffix(k, "_FILE") || path == "" {
				continue
			}
			if err := w.mountedFile(r, pod, path); err != nil {
				fail("%s: %s=%s: %v", what, k, path, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("with these values:\n    %s", strings.Join(errs, "\n    "))
	}
	return nil
}

// secretKeys returns the keys of a Secret the chart renders or the
// walkthrough created, with a value each.
func (w *walk) secretKeys(r *release, name string) (map[string]string, error) {
	for _, s := range r.objs.secrets {
		if s.Name == name {
			m := map[string]string{}
			for k, v := range s.Data {
				m[k] = string(v)
			}
			return m, nil
		}
	}
	keys, ok := w.secrets[r.ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("Secret %s is neither rendered by the chart nor created by the walkthrough in namespace %s", name, r.ns)
	}
	m := map[string]string{}
	for k := range keys {
		m[k] = exampleValue(k, "example")
	}
	return m, nil
}

func (w *walk) mountedFile(r *release, pod corev1.PodSpec, path string) error {
	for _, vm := range pod.Containers[0].VolumeMounts {
		rel, err := filepath.Rel(vm.MountPath, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 || pod.Volumes[i].Secret == nil {
			return fmt.Errorf("mounted from volume %s, which is not a Secret", vm.Name)
		}
		keys, err := w.secretKeys(r, pod.Volumes[i].Secret.SecretName)
		if err != nil {
			return err
		}
		if _, ok := keys[rel]; !ok {
			return fmt.Errorf("Secret %s has no key %s", pod.Volumes[i].Secret.SecretName, rel)
		}
		return nil
	}
	return fmt.Errorf("no volume is mounted there")
}

// labelSelector parses the equality-based selectors the walkthrough uses.
func labelSelector(s string) (map[string]string, error) {
	sel := map[string]string{}
	for _, term := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(term, "=")
		if !ok || strings.ContainsAny(k, "!") {
			return nil, fmt.Errorf("selector %s: only key=value terms are checked", s)
		}
		sel[k] = v
	}
	return sel, nil
}

func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// named is a kind of object in a namespace, by name and labels.
type named struct {
	name   string
	labels map[string]string
}

// objectsOf lists what the releases in ns render (and kubectl created) of
// a kind: "cronjob", "job" (Jobs and the Jobs CronJobs make), "pod" (the
// pods of Jobs), "configmap", "secret".
func (w *walk) objectsOf(ns, kind string) []named {
	var out []named
	for _, r := range w.releases {
		if r.ns != ns {
			continue
		}
		o := r.objs
		switch kind {
		case "cronjob":
			for _, cj := range o.cronJobs {
				out = append(out, named{cj.Name, cj.Labels})
			}
		case "job":
			for _, j := range o.jobs {
				out = append(out, named{j.Name, j.Labels})
			}
			for _, cj := range o.cronJobs {
				out = append(out, named{"", cj.Spec.JobTemplate.Labels})
			}
		case "pod":
			for _, j := range o.jobs {
				out = append(out, named{"", j.Spec.Template.Labels})
			}
			for _, cj := range o.cronJobs {
				out = append(out, named{"", cj.Spec.JobTemplate.Spec.Template.Labels})
			}
		case "configmap":
			for _, c := range o.configMaps {
				out = append(out, named{c.Name, c.Labels})
			}
		case "secret":
			for _, s := range o.secrets {
				out = append(out, named{s.Name, s.Labels})
			}
		}
	}
	for key, labels := range w.jobs {
		if jns, name, _ := strings.Cut(key, "/"); jns == ns && kind == "job" {
			out = append(out, named{name, labels})
		}
	}
	for key := range w.secrets {
		if sns, name, _ := strings.Cut(key, "/"); sns == ns && kind == "secret" {
			out = append(out, named{name, nil})
		}
	}
	return out
}

var resourceKinds = map[string]string{
	"cronjob": "cronjob", "cronjobs": "cronjob", "cj": "cronjob",
	"job": "job", "jobs": "job",
	"configmap": "configmap", "configmaps": "configmap", "cm": "configmap",
	"secret": "secret", "secrets": "secret",
	"pod": "pod", "pods": "pod",
}

// resource checks TYPE NAME, TYPE/NAME or TYPE with a selector against what
// exists in ns.
func (w *walk) resource(ns string, pos []string, selector []string) error {
	if len(pos) == 0 {
		return fmt.Errorf("no resource")
	}
	typ, name, slash := strings.Cut(pos[0], "/")
	if !slash && len(pos) > 1 {
		name = pos[1]
	}
	if pos[0] == substituted {
		return nil // a name a previous kubectl command printed
	}
	kind, ok := resourceKinds[typ]
	if !ok {
		return fmt.Errorf("resource type %s: not one this test knows", typ)
	}
	have := w.objectsOf(ns, kind)
	if name != "" {
		if !slices.ContainsFunc(have, func(o named) bool { return o.name == name }) {
			var names []string
			for _, o := range have {
				if o.name != "" {
					names = append(names, o.name)
				}
			}
			return fmt.Errorf("%s %s does not exist in namespace %s (there: %v)", kind, name, ns, names)
		}
	}
	for _, s := range selector {
		sel, err := labelSelector(s)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(have, func(o named) bool { return matches(sel, o.labels) }) {
			return fmt.Errorf("no %s in namespace %s has the labels %s", kind, ns, s)
		}
	}
	return nil
}

func (w *walk) kubectl(args []string) error {
	pos, fl, err := flags(args,
		[]string{"-n", "--namespace", "-l", "--selector", "-o", "--output", "--sort-by", "--tail", "--for", "--timeout", "--from", "--from-literal", "--from-file"},
		[]string{"--prefix"})
	if err != nil {
		return err
	}
	ns := namespace(fl)
	selector := slices.Concat(fl["-l"], fl["--selector"])
	if len(pos) == 0 {
		return fmt.Errorf("kubectl without a command")
	}
	if pos[0] != "create" || len(pos) < 2 || pos[1] != "namespace" {
		if !w.namespaces[ns] {
			return fmt.Errorf("namespace %s was not created earlier in the walkthrough", ns)
		}
	}
	switch pos[0] {
	case "create":
		if len(pos) < 3 {
			return fmt.Errorf("kubectl create %q", pos[1:])
		}
		switch pos[1] {
		case "namespace", "ns":
			w.namespaces[pos[2]] = true
			return nil
		case "secret":
			if len(pos) != 4 || pos[2] != "generic" {
				return fmt.Errorf("kubectl create secret generic NAME, got %q", pos[1:])
			}
			keys := map[string]bool{}
			for _, kv := range fl["--from-literal"] {
				k, _, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--from-literal=%s: want KEY=VALUE", kv)
				}
				keys[k] = true
			}
			for _, f := range fl["--from-file"] {
				k, path, ok := strings.Cut(f, "=")
				if !ok {
					k, path = filepath.Base(f), f
				}
				_ = path
				keys[k] = true
			}
			for k := range keys {
				if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
					return fmt.Errorf("secret key %s: %v", k, errs)
				}
			}
			w.secrets[ns+"/"+pos[3]] = keys
			return nil
		case "job":
			from := fl["--from"]
			if len(from) != 1 || !strings.HasPrefix(from[0], "cronjob/") {
				return fmt.Errorf("kubectl create job NAME --from=cronjob/CRONJOB, got --from %v", from)
			}
			cjName := strings.TrimPrefix(from[0], "cronjob/")
			var labels map[string]string
			for _, r := range w.releases {
				for _, cj := range r.objs.cronJobs {
					if r.ns == ns && cj.Name == cjName {
						labels = cj.Spec.JobTemplate.Labels
					}
				}
			}
			if labels == nil {
				return w.resource(ns, []string{"cronjob", cjName}, nil)
			}
			if errs := validation.IsDNS1123Label(pos[2]); len(errs) > 0 {
				return fmt.Errorf("job name %s: %v", pos[2], errs)
			}
			// kubectl copies the CronJob's jobTemplate labels to the Job.
			w.jobs[ns+"/"+pos[2]] = labels
			return nil
		}
		return fmt.Errorf("kubectl create %s: not one this test knows", pos[1])
	case "get", "wait":
		return w.resource(ns, pos[1:], selector)
	case "logs":
		if len(pos) == 1 {
			return w.resource(ns, []string{"pod"}, selector)
		}
		return w.resource(ns, pos[1:], selector)
	}
	return fmt.Errorf("kubectl %s: not a command this test knows", pos[0])
}

// goRun checks `go run ./scripts/image`, the one go command the
// walkthrough runs, against the builder's flags, and records the layout it
// writes with the version it stamps.
func (w *walk) goRun(args []string) error {
	if len(args) < 2 || args[0] != "run" || filepath.Clean(args[1]) != filepath.Clean("scripts/image") {
		return fmt.Errorf("go %s: the walkthrough runs only go run ./scripts/image", strings.Join(args, " "))
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "scripts", "image", "main.go")); err != nil {
		return err
	}
	pos, fl, err := flags(args[2:], []string{"-o", "-version", "-platforms"}, nil)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("go run ./scripts/image takes no arguments, got %q", pos)
	}
	out, version := "out/image", "dev"
	if v := fl["-o"]; len(v) > 0 {
		out = v[len(v)-1]
	}
	if v := fl["-version"]; len(v) > 0 {
		version = v[len(v)-1]
	}
	for _, p := range fl["-platforms"] {
		if !slices.Contains(strings.Split(p, ","), "linux/amd64") {
			return fmt.Errorf("-platforms %s: the nodes of a CCE cluster need linux/amd64 (or leave -platforms out)", p)
		}
	}
	w.built[filepath.Clean(out)] = version
	return nil
}

// crane checks `crane push --index LAYOUT REF`: the layout was built
// earlier, pushed as one index (without --index crane refuses a layout of
// several platforms), and REF's tag is the version the layout was built
// with, without its v, as the chart's appVersion is.
func (w *walk) crane(args []string) error {
	if len(args) == 0 || args[0] != "push" {
		return fmt.Errorf("crane %s: not a command this test knows", strings.Join(args, " "))
	}
	pos, fl, err := flags(args[1:], nil, []string{"--index"})
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("crane push LAYOUT IMAGE, got %q", pos)
	}
	if fl["--index"] == nil {
		return fmt.Errorf("crane push without --index: crane refuses a layout of several platforms")
	}
	version, ok := w.built[filepath.Clean(pos[0])]
	if !ok {
		return fmt.Errorf("crane push %s: not built earlier by go run ./scripts/image", pos[0])
	}
	ref := pos[1]
	if i := strings.LastIndex(ref, ":"); i < 0 || strings.Contains(ref[i:], "/") || ref[i+1:] != strings.TrimPrefix(version, "v") {
		return fmt.Errorf("crane push %s: tag it %s, the version the image was built with (-version %s) without its v", ref, strings.TrimPrefix(version, "v"), version)
	}
	w.pushed[ref] = true
	return nil
}

// finish checks what only the whole walkthrough shows.
func (w *walk) finish() {
	if len(w.pushed) == 0 {
		return
	}
	for image, what := range w.images {
		if !w.pushed[image] {
			w.errorf("%s runs image %s, which the walkthrough does not push (it pushes %v)", what, image, slices.Sorted(maps.Keys(w.pushed)))
		}
	}
}

// demoLogs is what `kubectl logs` shows of a run: stdout and stderr of
// `exporter demo` with the chart's JSON logs.
func (w *walk) demoLogs() string {
	if w.demoLog == "" {
		r := startExporter(w.t, w.t.TempDir(), map[string]string{"HWCAUDIT_LOG_FORMAT": "json"}, "demo").wait(w.t, 2*time.Minute)
		if r.code != exitOK {
			w.t.Fatalf("exporter demo: %v", r)
		}
		w.demoLog = r.stderr + r.stdout
	}
	return w.demoLog
}

// demoSummary is the run summary line of `exporter demo`.
func (w *walk) demoSummary() map[string]any {
	for _, line := range strings.Split(w.demoLogs(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "run summary" {
			return m
		}
	}
	w.t.Fatalf("exporter demo logged no run summary:\n%s", w.demoLogs())
	return nil
}

// jq runs the README's filter on the log of a real run, as it would run on
// kubectl logs, and wants exactly the run summary line back.
func (w *walk) jq(args, prev []string) error {
	if len(prev) < 2 || filepath.Base(prev[0]) != "kubectl" || !slices.Contains(prev, "logs") {
		return fmt.Errorf("jq: the walkthrough pipes kubectl logs into jq, not %q", prev)
	}
	jq, err := exec.LookPath("jq")
	if err != nil {
		w.t.Logf("jq is not installed: not running jq %q", args)
		return nil
	}
	cmd := exec.Command(jq, args...)
	cmd.Stdin = strings.NewReader(w.demoLogs())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("jq %q on the log of exporter demo: %v\n%s", args, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got map[string]any
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &got) != nil || got["msg"] != "run summary" {
		return fmt.Errorf("jq %q on the log of exporter demo printed %q, want the one run summary line", args, out)
	}
	return nil
}
