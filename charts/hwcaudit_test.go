// Package charts tests the Helm chart in charts/hwcaudit: it renders the chart
// with the Helm SDK for every ci/*-values.yaml and decodes each manifest
// strictly into the Kubernetes API types, so that a misspelt field or a
// wrong type fails here rather than at kubectl apply. With the real helm
// binary (HWCAUDIT_TEST_HELM, installed by scripts/helm.sh) it also runs
// `helm lint --strict` and `helm template`.
package charts

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "hwcaudit"

// manifests holds the decoded objects of one rendering, by kind.
type manifests struct {
	cronJobs        []batchv1.CronJob
	jobs            []batchv1.Job
	configMaps      []corev1.ConfigMap
	secrets         []corev1.Secret
	serviceAccounts []corev1.ServiceAccount
	pvcs            []corev1.PersistentVolumeClaim
	pods            []corev1.Pod // helm test hooks
	networkPolicies []networkingv1.NetworkPolicy
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// renderValues merges vals over the chart's defaults and validates them
// against values.schema.json, as helm install does.
func renderValues(c *chart.Chart, vals map[string]any) (chartutil.Values, error) {
	opts := chartutil.ReleaseOptions{Name: "audit", Namespace: "security", Revision: 1, IsInstall: true}
	return chartutil.ToRenderValues(c, vals, opts, chartutil.DefaultCapabilities)
}

func render(t *testing.T, c *chart.Chart, vals map[string]any) (manifests, string) {
	t.Helper()
	rv, err := renderValues(c, withSource(vals))
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	// Strict: a reference to a missing value is an error, not "<no value>".
	out, err := engine.Engine{Strict: true}.Render(c, rv)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var m manifests
	var notes string
	for name, content := range out {
		if strings.HasSuffix(name, "NOTES.txt") {
			notes = content
			continue
		}
		for _, doc := range releaseutil.SplitManifests(content) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			if err := decode(&m, doc); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
		}
	}
	return m, notes
}

// decode unmarshals one manifest strictly: unknown or duplicate fields and
// wrong types are errors.
func decode(m *manifests, doc string) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		return err
	}
	strict := func(v any) error { return yaml.UnmarshalStrict([]byte(doc), v) }
	switch tm.APIVersion + "/" + tm.Kind {
	case "batch/v1/CronJob":
		var o batchv1.CronJob
		err := strict(&o)
		m.cronJobs = append(m.cronJobs, o)
		return err
	case "batch/v1/Job":
		var o batchv1.Job
		err := strict(&o)
		m.jobs = append(m.jobs, o)
		return err
	case "v1/ConfigMap":
		var o corev1.ConfigMap
		err := strict(&o)
		m.configMaps = append(m.configMaps, o)
		return err
	case "v1/Secret":
		var o corev1.Secret
		err := strict(&o)
		m.secrets = append(m.secrets, o)
		return err
	case "v1/ServiceAccount":
		var o corev1.ServiceAccount
		err := strict(&o)
		m.serviceAccounts = append(m.serviceAccounts, o)
		return err
	case "v1/Pod":
		var o corev1.Pod
		err := strict(&o)
		m.pods = append(m.pods, o)
		return err
	case "networking.k8s.io/v1/NetworkPolicy":
		var o networkingv1.NetworkPolicy
		err := strict(&o)
		m.networkPolicies = append(m.networkPolicies, o)
		return err
	case "v1/PersistentVolumeClaim":
		var o corev1.PersistentVolumeClaim
		err := strict(&o)
		m.pvcs = append(m.pvcs, o)
		return err
	}
	return fmt.Errorf("unexpected kind %s %s", tm.APIVersion, tm.Kind)
}

func ciValues(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci values files: %v", err)
	}
	byName := map[string]string{}
	for _, f := range files {
		byName[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = f
	}
	return byName
}

func TestDecodeIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: batch/v1\nkind: CronJob\nspec:\n  schedule: '* * * * *'\n  concurencyPolicy: Forbid\n",
		"wrong type":    "apiVersion: batch/v1\nkind: CronJob\nspec:\n  schedule: '* * * * *'\n  startingDeadlineSeconds: soon\n",
		"wrong nesting": "apiVersion: v1\nkind: ConfigMap\ndata:\n  A:\n    b: c\n",
	} {
		t.Run(name, func(t *testing.T) {
			if err := decode(&manifests{}, doc); err == nil {
				t.Errorf("decoded without error:\n%s", doc)
			}
		})
	}
}

func TestRenderCIValues(t *testing.T) {
	c := loadChart(t)
	files := ciValues(t)
	for _, want := range []string{"default", "s3-checkpoints-kafka", "existing-secret-pod-identity", "backfill-enabled"} {
		if files[want] == "" {
			t.Errorf("ci/%s-values.yaml missing", want)
		}
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			vals, err := chartutil.ReadValuesFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m, notes := render(t, c, vals)
			if len(m.cronJobs) != 1 {
				t.Fatalf("%d CronJobs, want 1", len(m.cronJobs))
			}
			cj := m.cronJobs[0]
			if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
			}
			if cj.Spec.Schedule != "*/5 * * * *" {
				t.Errorf("schedule %q", cj.Spec.Schedule)
			}
			if cj.Spec.StartingDeadlineSeconds == nil || cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds == nil ||
				cj.Spec.JobTemplate.Spec.BackoffLimit == nil || cj.Spec.SuccessfulJobsHistoryLimit == nil ||
				cj.Spec.FailedJobsHistoryLimit == nil {
				t.Errorf("deadlines, backoffLimit or history limits unset: %+v", cj.Spec)
			}
			checkPod(t, m, cj.Spec.JobTemplate.Spec.Template.Spec, []string{"run"})
			if !strings.Contains(notes, "kubectl -n security logs job/") || !strings.Contains(notes, "get cronjob audit-hwcaudit") {
				t.Errorf("NOTES.txt does not say how to see the last run:\n%s", notes)
			}

			switch name {
			case "default":
				if len(m.jobs) != 0 || len(m.pvcs) != 0 {
					t.Errorf("default renders %d Jobs and %d PVCs, want none", len(m.jobs), len(m.pvcs))
				}
				if !strings.Contains(notes, "WARNING: checkpoints") {
					t.Errorf("NOTES.txt does not warn about emptyDir checkpoints:\n%s", notes)
				}
			case "s3-checkpoints-kafka":
				cm := configMap(t, m, "audit-hwcaudit")
				if !strings.HasPrefix(cm.Data["HWCAUDIT_CHECKPOINT_URL"], "s3://") || cm.Data["HWCAUDIT_KAFKA_TLS"] != "true" ||
					cm.Data["HWCAUDIT_KAFKA_BATCH_SIZE"] != "500" {
					t.Errorf("ConfigMap data %v", cm.Data)
				}
				s := m.secrets[0]
				for k, v := range map[string]string{"HUAWEICLOUD_SDK_AK": "AKEXAMPLE", "HWCAUDIT_KAFKA_SASL_PASSWORD": "kafka-password", "AWS_SECRET_ACCESS_KEY": "OBSSKEXAMPLE"} {
					if string(s.Data[k]) != v {
						t.Errorf("Secret %s = %q, want %q", k, s.Data[k], v)
					}
				}
				if _, ok := s.Data["HWCAUDIT_ELASTICSEARCH_PASSWORD"]; ok {
					t.Error("Secret holds an empty password")
				}
				if strings.Contains(notes, "WARNING: checkpoints") {
					t.Errorf("NOTES.txt warns about checkpoints with S3 checkpoints:\n%s", notes)
				}
				if !strings.Contains(notes, "WARNING: dead letters") {
					t.Errorf("NOTES.txt does not warn that dead letters in an emptyDir are lost:\n%s", notes)
				}
			case "existing-secret-pod-identity":
				if len(m.secrets) != 0 {
					t.Errorf("%d Secrets rendered with existingSecret", len(m.secrets))
				}
				if len(m.serviceAccounts) != 1 || m.serviceAccounts[0].Name != "hwcaudit-exporter" ||
					m.serviceAccounts[0].Annotations["example.com/owner"] != "secops" {
					t.Errorf("ServiceAccounts %+v", m.serviceAccounts)
				}
				if got := cj.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName; got != "hwcaudit-exporter" {
					t.Errorf("serviceAccountName %q", got)
				}
				if len(m.pvcs) != 1 {
					t.Fatalf("%d PVCs, want 1", len(m.pvcs))
				}
				data := volume(t, cj.Spec.JobTemplate.Spec.Template.Spec, "data")
				if data.PersistentVolumeClaim == nil || data.PersistentVolumeClaim.ClaimName != m.pvcs[0].Name {
					t.Errorf("data volume %+v does not use the PVC %s", data, m.pvcs[0].Name)
				}
			case "backfill-enabled":
				checkBackfill(t, m)
			}
		})
	}
}

// checkPod asserts what every exporter pod needs: the hardened security
// context, writable /tmp and working directory, and its configuration.
func checkPod(t *testing.T, m manifests, pod corev1.PodSpec, args []string) {
	t.Helper()
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	if !slices.Equal(ctr.Args[:len(args)], args) {
		t.Errorf("args %q, want %q…", ctr.Args, args)
	}
	sc := ctr.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("runAsNonRoot not true")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
		t.Errorf("capabilities %+v, want drop ALL", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("seccompProfile %+v", sc.SeccompProfile)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("pod securityContext runAsNonRoot not true")
	}
	// The Go runtime collects garbage before the kernel kills the pod: a
	// soft limit at 80% of the container's memory limit.
	if lim, ok := ctr.Resources.Limits[corev1.ResourceMemory]; ok {
		want := fmt.Sprintf("%dMiB", lim.Value()*4/5>>20)
		got := ""
		for _, e := range ctr.Env {
			if e.Name == "GOMEMLIMIT" {
				got = e.Value
			}
		}
		if got != want {
			t.Errorf("GOMEMLIMIT %q with a memory limit of %s, want %q", got, lim.String(), want)
		}
	}

	mounts := map[string]string{}
	for _, vm := range ctr.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	if v := volume(t, pod, mounts["/tmp"]); v.EmptyDir == nil {
		t.Errorf("/tmp is not an emptyDir: %+v", v)
	}
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil && (v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.IsZero()) {
			t.Errorf("emptyDir volume %q has no sizeLimit", v.Name)
		}
	}
	if mounts[ctr.WorkingDir] == "" {
		t.Errorf("working directory %q is not a mounted volume", ctr.WorkingDir)
	}

	var cmName, secretName string
	for _, ef := range ctr.EnvFrom {
		if ef.ConfigMapRef != nil {
			cmName = ef.ConfigMapRef.Name
		}
		if ef.SecretRef != nil {
			secretName = ef.SecretRef.Name
		}
	}
	cm := configMap(t, m, cmName)
	for _, k := range []string{"HWCAUDIT_CHECKPOINT_URL", "HWCAUDIT_DEADLETTER"} {
		if u := cm.Data[k]; strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "file://"+ctr.WorkingDir) {
			t.Errorf("%s=%s is outside the writable %s", k, u, ctr.WorkingDir)
		}
	}
	if d := cm.Data["HWCAUDIT_FILE_DIR"]; d != "" && !strings.HasPrefix(d, ctr.WorkingDir) {
		t.Errorf("HWCAUDIT_FILE_DIR=%s is outside the writable %s", d, ctr.WorkingDir)
	}
	if secretName == "" {
		// Secrets mounted as files (credentials.mountAsFiles) instead.
		for _, v := range pod.Volumes {
			if v.Secret != nil && v.Name == "credentials" {
				secretName = v.Secret.SecretName
			}
		}
	}
	if secretName == "" {
		t.Error("no envFrom secretRef and no credentials volume")
	}
	if len(m.secrets) > 0 && secretName != m.secrets[0].Name {
		t.Errorf("envFrom secret %q, rendered Secret %q", secretName, m.secrets[0].Name)
	}
	if len(m.secrets) == 0 && secretName != "hwcaudit-credentials" {
		t.Errorf("envFrom secret %q, want the existing secret", secretName)
	}
}

func checkBackfill(t *testing.T, m manifests) {
	t.Helper()
	if len(m.jobs) != 1 {
		t.Fatalf("%d Jobs, want 1 backfill Job", len(m.jobs))
	}
	job := m.jobs[0]
	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode %v, want Indexed", job.Spec.CompletionMode)
	}
	if job.Spec.Completions == nil || *job.Spec.Completions != 8 || job.Spec.Parallelism == nil || *job.Spec.Parallelism != 4 {
		t.Errorf("completions %v parallelism %v, want 8 and 4", job.Spec.Completions, job.Spec.Parallelism)
	}
	pod := job.Spec.Template.Spec
	checkPod(t, m, pod, []string{"backfill", "--from", "2026-01-01T00:00:00Z", "--to", "2026-02-01T00:00:00Z"})
	env := pod.Containers[0].Env
	idx := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == "JOB_COMPLETION_INDEX" })
	shard := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == "HWCAUDIT_SHARD" })
	if shard < 0 || env[shard].Value != "$(JOB_COMPLETION_INDEX)/8" {
		t.Fatalf("env %+v has no HWCAUDIT_SHARD=$(JOB_COMPLETION_INDEX)/8", env)
	}
	// $(VAR) expands only for variables defined earlier in the list.
	if idx < 0 || idx > shard || env[idx].ValueFrom == nil || env[idx].ValueFrom.FieldRef == nil {
		t.Errorf("JOB_COMPLETION_INDEX not defined from the downward API before HWCAUDIT_SHARD: %+v", env)
	}
	cm := configMap(t, m, pod.Containers[0].EnvFrom[0].ConfigMapRef.Name)
	if !strings.Contains(cm.Data["HWCAUDIT_CHECKPOINT_URL"], "backfill-2026-01") || cm.Data["HWCAUDIT_SINKS"] != "stdout" {
		t.Errorf("backfill ConfigMap does not merge backfill.config over config: %v", cm.Data)
	}
	if r := pod.Containers[0].Resources.Requests.Cpu(); r.String() != "100m" {
		t.Errorf("backfill cpu request %s", r)
	}
}

func configMap(t *testing.T, m manifests, name string) corev1.ConfigMap {
	t.Helper()
	for _, cm := range m.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	t.Fatalf("no ConfigMap %q", name)
	return corev1.ConfigMap{}
}

func volume(t *testing.T, pod corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

func TestSecretFromValues(t *testing.T) {
	c := loadChart(t)
	m, _ := render(t, c, map[string]any{"credentials": map[string]any{
		"accessKey": "ak", "extra": map[string]any{"HUAWEICLOUD_SDK_SECURITY_TOKEN": "tok"},
	}})
	if len(m.secrets) != 1 {
		t.Fatalf("%d Secrets", len(m.secrets))
	}
	got := map[string]string{}
	for k, v := range m.secrets[0].Data {
		got[k] = string(v)
	}
	want := map[string]string{"HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SECURITY_TOKEN": "tok"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Secret data %v, want %v", got, want)
	}
}

func TestSchemaRejects(t *testing.T) {
	c := loadChart(t)
	for _, tc := range []struct {
		name string
		vals string
	}{
		{"schedule is a number", "schedule: 5"},
		{"unknown top-level key", "shedule: '*/5 * * * *'"},
		{"concurrencyPolicy outside enum", "concurrencyPolicy: Sometimes"},
		{"pullPolicy outside enum", "image: {pullPolicy: Sometimes}"},
		{"negative deadline", "startingDeadlineSeconds: -1"},
		{"config value is a map", "config: {HWCAUDIT_SINKS: {a: b}}"},
		{"config name is not an env var", "config: {'hwcaudit sinks': file}"},
		{"unknown credentials key", "credentials: {password: x}"},
		{"backfill without range", "backfill: {enabled: true}"},
		{"backfill zero completions", "backfill: {completions: 0}"},
		{"zero shards", "shards: 0"},
		{"unknown check key", "check: {enable: true}"},
		{"digest without algorithm", "image: {repository: r, pullPolicy: Always, digest: abc}"},
		{"digest too short", "image: {repository: r, pullPolicy: Always, digest: 'sha256:" + strings.Repeat("ab", 31) + "'}"},
		{"digest upper case", "image: {repository: r, pullPolicy: Always, digest: 'sha256:" + strings.Repeat("AB", 32) + "'}"},
		{"digest of another algorithm", "image: {repository: r, pullPolicy: Always, digest: 'sha512:" + strings.Repeat("ab", 64) + "'}"},
		{"digest with a tag", "image: {repository: r, pullPolicy: Always, digest: 'v1@sha256:" + strings.Repeat("ab", 32) + "'}"},
		{"unknown networkPolicy key", "networkPolicy: {enable: true}"},
		{"port out of range", "networkPolicy: {egressPorts: [{port: 70000}]}"},
		{"sizeLimit not a quantity", "emptyDir: {tmpSizeLimit: lots, dataSizeLimit: 1Gi}"},
		{"relative filesPath", "credentials: {filesPath: secrets}"},
		{"unknown DBSS stream kind", "config: {HWCAUDIT_DBSS_STREAMS: 'operation,audit'}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(tc.vals))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := renderValues(c, vals); err == nil {
				t.Errorf("values.schema.json accepts %s", tc.vals)
			}
		})
	}
}

// helmBinary is the real helm (HWCAUDIT_TEST_HELM, from scripts/helm.sh);
// without it the test skips, unless HWCAUDIT_TEST_HELM_REQUIRED=1.
func helmBinary(t *testing.T) string {
	t.Helper()
	helm := os.Getenv("HWCAUDIT_TEST_HELM")
	if helm == "" {
		if os.Getenv("HWCAUDIT_TEST_HELM_REQUIRED") == "1" {
			t.Fatal("HWCAUDIT_TEST_HELM_REQUIRED=1 but HWCAUDIT_TEST_HELM is unset; run HWCAUDIT_TEST_HELM=$(scripts/helm.sh)")
		}
		t.Skip("HWCAUDIT_TEST_HELM unset: skipping the helm CLI checks; set it to the path printed by scripts/helm.sh")
	}
	return helm
}

// runHelm runs helm with args, away from the user's repositories, cache
// and kubeconfig, and returns its standard output.
func runHelm(t *testing.T, helm string, args ...string) string {
	t.Helper()
	cmd := exec.Command(helm, args...)
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+dir, "HELM_CONFIG_HOME="+dir, "HELM_DATA_HOME="+dir, "KUBECONFIG="+filepath.Join(dir, "kubeconfig"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestHelmCLI runs the real helm binary, as CI and users do.
func TestHelmCLI(t *testing.T) {
	helm := helmBinary(t)
	run := func(t *testing.T, args ...string) { t.Helper(); runHelm(t, helm, args...) }
	t.Run("lint", func(t *testing.T) { run(t, "lint", "--strict", chartDir) })
	for name, file := range ciValues(t) {
		t.Run("lint/"+name, func(t *testing.T) { run(t, "lint", "--strict", chartDir, "-f", file) })
		t.Run("template/"+name, func(t *testing.T) { run(t, "template", "audit", chartDir, "-f", file) })
	}
}

// TestHelmPackage packages the chart as the release does (scripts/release.sh:
// helm package --version V --app-version V), lints the archive, pushes it to
// an OCI registry on loopback and pulls it back (release.yml's helm push),
// and renders it with helm template: every pod runs the image the release
// workflow pushes (its IMAGE) tagged with that appVersion, or
// repository@digest when image.digest is set.
func TestHelmPackage(t *testing.T) {
	helm := helmBinary(t)
	const version = "1.2.3-rc.1"
	dir := t.TempDir()
	runHelm(t, helm, "package", chartDir, "--version", version, "--app-version", version, "-d", dir)
	pkg := filepath.Join(dir, "hwcaudit-"+version+".tgz")
	if _, err := os.Stat(pkg); err != nil {
		t.Fatalf("helm package wrote no %s: %v", filepath.Base(pkg), err)
	}
	runHelm(t, helm, "lint", "--strict", pkg, "--set", "config.HWCAUDIT_SWR_INSTANCES=swr-1")

	// Pushed as the release pushes it (helm push to an OCI repository), to a
	// registry on loopback, it is the chart helm template pulls back.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/charts"
	runHelm(t, helm, "push", pkg, repo, "--plain-http")
	pulled := t.TempDir()
	runHelm(t, helm, "pull", repo+"/hwcaudit", "--version", version, "--plain-http", "-d", pulled)
	a, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(pulled, filepath.Base(pkg))); err != nil || !bytes.Equal(a, b) {
		t.Fatalf("helm pull %s/hwcaudit --version %s: %v; want the pushed package back", repo, version, err)
	}

	// The repository the release pushes the image to is the chart's default.
	workflow, err := os.ReadFile("../.github/workflows/release.yml")
	if err != nil {
		t.Fatal(err)
	}
	var release struct {
		Env map[string]string `json:"env"`
	}
	if err := yaml.Unmarshal(workflow, &release); err != nil || release.Env["IMAGE"] == "" {
		t.Fatalf("release.yml: no env IMAGE (%v)", err)
	}
	image := release.Env["IMAGE"]

	images := func(args ...string) []string {
		t.Helper()
		out := runHelm(t, helm, append([]string{"template", "audit", pkg, "-n", "security", "--set", "config.HWCAUDIT_SWR_INSTANCES=swr-1", "--set", "backfill.enabled=true",
			"--set", "backfill.from=2026-01-01T00:00:00Z", "--set", "backfill.to=2026-01-02T00:00:00Z"}, args...)...)
		var m manifests
		for _, doc := range releaseutil.SplitManifests(out) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			if err := decode(&m, doc); err != nil {
				t.Fatalf("%v\n%s", err, doc)
			}
		}
		if len(m.cronJobs) != 1 || len(m.jobs) != 1 || len(m.pods) != 1 {
			t.Fatalf("rendered %d CronJobs, %d Jobs, %d Pods; want the CronJob, the backfill Job and the check Pod", len(m.cronJobs), len(m.jobs), len(m.pods))
		}
		var refs []string
		for _, p := range []corev1.PodSpec{m.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec, m.jobs[0].Spec.Template.Spec, m.pods[0].Spec} {
			for _, c := range slices.Concat(p.InitContainers, p.Containers) {
				refs = append(refs, c.Image)
			}
		}
		return refs
	}
	for _, got := range images() {
		if want := image + ":" + version; got != want {
			t.Errorf("the packaged chart runs %s, want %s (release.yml's IMAGE and the appVersion)", got, want)
		}
	}
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	for _, got := range images("--set", "image.digest="+digest) {
		if want := image + "@" + digest; got != want {
			t.Errorf("with image.digest the packaged chart runs %s, want %s", got, want)
		}
	}
}

// TestShards renders one CronJob per shard, each exporting its own share of
// the streams, all with the same configuration.
func TestShards(t *testing.T) {
	c := loadChart(t)
	m, notes := render(t, c, map[string]any{"shards": 3})
	if len(m.cronJobs) != 3 {
		t.Fatalf("%d CronJobs, want 3", len(m.cronJobs))
	}
	// SplitManifests returns the documents of a file in no order.
	slices.SortFunc(m.cronJobs, func(a, b batchv1.CronJob) int { return strings.Compare(a.Name, b.Name) })
	for i, cj := range m.cronJobs {
		if want := fmt.Sprintf("audit-hwcaudit-shard-%d", i); cj.Name != want {
			t.Errorf("CronJob %d is %s, want %s", i, cj.Name, want)
		}
		if l := cj.Spec.JobTemplate.Labels["app.kubernetes.io/component"]; l != "exporter" {
			t.Errorf("%s: Jobs labelled component=%q, want exporter", cj.Name, l)
		}
		pod := cj.Spec.JobTemplate.Spec.Template.Spec
		checkPod(t, m, pod, []string{"run"})
		env := withoutGoMemLimit(pod.Containers[0].Env)
		if want := fmt.Sprintf("%d/3", i); len(env) != 1 || env[0].Name != "HWCAUDIT_SHARD" || env[0].Value != want {
			t.Errorf("%s: env %+v, want HWCAUDIT_SHARD=%s", cj.Name, env, want)
		}
	}
	if !strings.Contains(notes, "get cronjobs -l app.kubernetes.io/instance=audit,app.kubernetes.io/component=exporter") {
		t.Errorf("NOTES.txt does not list the shards' CronJobs:\n%s", notes)
	}

	m, _ = render(t, c, nil)
	if len(m.cronJobs) != 1 || m.cronJobs[0].Name != "audit-hwcaudit" || len(withoutGoMemLimit(m.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec.Containers[0].Env)) != 0 {
		t.Errorf("default: want one CronJob audit-hwcaudit without HWCAUDIT_SHARD, got %+v", m.cronJobs)
	}
	m, _ = render(t, c, map[string]any{"shards": 2, "fullnameOverride": strings.Repeat("x", 60)})
	for _, cj := range m.cronJobs {
		if len(cj.Name) > 52 {
			t.Errorf("CronJob name %s is longer than 52 characters", cj.Name)
		}
	}
}

// TestCheckPod: `helm test` runs `exporter check` with the CronJob's
// configuration, credentials and ServiceAccount, as a test hook only.
func TestCheckPod(t *testing.T) {
	c := loadChart(t)
	m, notes := render(t, c, nil)
	if len(m.pods) != 1 {
		t.Fatalf("%d Pods, want the check Pod", len(m.pods))
	}
	p := m.pods[0]
	if p.Name != "audit-hwcaudit-check" || p.Annotations["helm.sh/hook"] != "test" {
		t.Errorf("check Pod %s with annotations %v, want audit-hwcaudit-check with helm.sh/hook=test", p.Name, p.Annotations)
	}
	checkPod(t, m, p.Spec, []string{"check"})
	if len(p.Spec.Containers[0].Args) != 1 {
		t.Errorf("check args %q", p.Spec.Containers[0].Args)
	}
	cj := m.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec
	if p.Spec.ServiceAccountName != cj.ServiceAccountName || fmt.Sprint(p.Spec.Containers[0].EnvFrom) != fmt.Sprint(cj.Containers[0].EnvFrom) {
		t.Errorf("check Pod does not use the CronJob's ServiceAccount and environment")
	}
	if !strings.Contains(notes, "helm test audit -n security --logs") {
		t.Errorf("NOTES.txt does not mention helm test:\n%s", notes)
	}
	m, _ = render(t, c, map[string]any{"check": map[string]any{"enabled": false}})
	if len(m.pods) != 0 {
		t.Errorf("check.enabled=false renders %d Pods", len(m.pods))
	}
}

func TestImageDigest(t *testing.T) {
	c := loadChart(t)
	m, _ := render(t, c, map[string]any{"image": map[string]any{"repository": "swr.example/org/hwcaudit", "tag": "v1",
		"digest": "sha256:" + strings.Repeat("ab", 32)}})
	want := "swr.example/org/hwcaudit@sha256:" + strings.Repeat("ab", 32)
	pods := []corev1.PodSpec{m.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec, m.pods[0].Spec}
	for _, p := range pods {
		if got := p.Containers[0].Image; got != want {
			t.Errorf("image %q, want %q", got, want)
		}
	}
	m, _ = render(t, c, map[string]any{"image": map[string]any{"repository": "r", "tag": "v1"}})
	if got := m.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image; got != "r:v1" {
		t.Errorf("without a digest the image is %q, want r:v1", got)
	}
}

func TestEmptyDirSizeLimits(t *testing.T) {
	c := loadChart(t)
	m, _ := render(t, c, map[string]any{"emptyDir": map[string]any{"tmpSizeLimit": "10Mi", "dataSizeLimit": "2Gi"}})
	pod := m.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec
	for name, want := range map[string]string{"tmp": "10Mi", "data": "2Gi"} {
		v := volume(t, pod, name)
		if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.String() != want {
			t.Errorf("volume %s = %+v, want an emptyDir of at most %s", name, v.VolumeSource, want)
		}
	}
}

func TestNetworkPolicy(t *testing.T) {
	c := loadChart(t)
	m, _ := render(t, c, nil)
	if len(m.networkPolicies) != 0 {
		t.Fatalf("%d NetworkPolicies by default, want none", len(m.networkPolicies))
	}
	m, _ = render(t, c, map[string]any{"networkPolicy": map[string]any{
		"enabled":     true,
		"egressPorts": []any{map[string]any{"port": 443}, map[string]any{"port": 9093, "protocol": "TCP"}},
		"egressTo":    []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.0.0.0/8"}}},
	}})
	if len(m.networkPolicies) != 1 {
		t.Fatalf("%d NetworkPolicies, want 1", len(m.networkPolicies))
	}
	np := m.networkPolicies[0].Spec
	pod := m.cronJobs[0].Spec.JobTemplate.Spec.Template
	for k, v := range np.PodSelector.MatchLabels {
		if pod.Labels[k] != v || m.pods[0].Labels[k] != v {
			t.Errorf("the policy selects %s=%s, which the exporter pods do not carry", k, v)
		}
	}
	if !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeEgress) || !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeIngress) || len(np.Ingress) != 0 {
		t.Errorf("policy types %v with %d ingress rules, want both types and no ingress", np.PolicyTypes, len(np.Ingress))
	}
	var ports []string
	for _, r := range np.Egress {
		for _, p := range r.Ports {
			ports = append(ports, fmt.Sprintf("%s/%s", p.Port, *p.Protocol))
		}
		if len(r.Ports) == 0 {
			t.Errorf("egress rule %+v allows every port", r)
		}
	}
	if fmt.Sprint(ports) != "[53/UDP 53/TCP 443/TCP 9093/TCP]" {
		t.Errorf("egress ports %v, want DNS and the configured ports only", ports)
	}
	if len(np.Egress) != 2 || len(np.Egress[1].To) != 1 || np.Egress[1].To[0].IPBlock == nil || np.Egress[1].To[0].IPBlock.CIDR != "10.0.0.0/8" {
		t.Errorf("egress %+v, want the configured ports limited to 10.0.0.0/8", np.Egress)
	}
}

func TestSecretsAsFiles(t *testing.T) {
	c := loadChart(t)
	m, _ := render(t, c, map[string]any{"credentials": map[string]any{
		"mountAsFiles": true, "accessKey": "ak", "secretKey": "sk", "extra": map[string]any{"HUAWEICLOUD_SDK_SECURITY_TOKEN": "tok"},
	}})
	for _, pod := range []corev1.PodSpec{m.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec, m.pods[0].Spec} {
		ctr := pod.Containers[0]
		for _, ef := range ctr.EnvFrom {
			if ef.SecretRef != nil {
				t.Errorf("the Secret is still loaded as environment variables: %+v", ef)
			}
		}
		env := map[string]string{}
		for _, e := range ctr.Env {
			env[e.Name] = e.Value
		}
		for _, k := range []string{"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN"} {
			if env[k+"_FILE"] != "/var/run/secrets/hwcaudit/"+k {
				t.Errorf("%s_FILE = %q", k, env[k+"_FILE"])
			}
		}
		if _, ok := env["HWCAUDIT_KAFKA_SASL_PASSWORD_FILE"]; ok {
			t.Error("a _FILE variable for a key the Secret does not hold")
		}
		v := volume(t, pod, "credentials")
		if v.Secret == nil || v.Secret.SecretName != m.secrets[0].Name || v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
			t.Errorf("credentials volume %+v", v.VolumeSource)
		}
		var mounted bool
		for _, vm := range ctr.VolumeMounts {
			mounted = mounted || (vm.Name == "credentials" && vm.ReadOnly && vm.MountPath == "/var/run/secrets/hwcaudit")
		}
		if !mounted {
			t.Errorf("credentials not mounted read-only: %+v", ctr.VolumeMounts)
		}
	}
	// An existing Secret: the keys come from existingSecretKeys.
	m, _ = render(t, c, map[string]any{"credentials": map[string]any{
		"mountAsFiles": true, "existingSecret": "mine", "existingSecretKeys": []any{"HWCAUDIT_ELASTICSEARCH_API_KEY"},
	}})
	ctr := m.cronJobs[0].Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if len(ctr.Env) == 0 || ctr.Env[0].Name != "HWCAUDIT_ELASTICSEARCH_API_KEY_FILE" {
		t.Errorf("env %+v", ctr.Env)
	}
}

// withoutGoMemLimit is env less the GOMEMLIMIT every pod gets (see checkPod).
func withoutGoMemLimit(env []corev1.EnvVar) []corev1.EnvVar {
	return slices.DeleteFunc(slices.Clone(env), func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
}

// withSource is vals with an SWR instance to read when they name no
// source and leave validateConfig on: an install without a source is
// refused (TestRefusesInstallsThatCannotRun), and the other tests are
// about other things.
func withSource(vals map[string]any) map[string]any {
	if v, ok := vals["validateConfig"].(bool); ok && !v {
		return vals
	}
	out := maps.Clone(vals)
	if out == nil {
		out = map[string]any{}
	}
	cfg, _ := out["config"].(map[string]any)
	cfg = maps.Clone(cfg)
	if cfg == nil {
		cfg = map[string]any{}
	}
	for _, k := range []string{"HWCAUDIT_SWR_INSTANCES", "HWCAUDIT_ARTIFACT_REPOS", "HWCAUDIT_GAUSSDB_INSTANCES", "HWCAUDIT_DBSS_INSTANCES"} {
		if cfg[k] != nil {
			return vals
		}
	}
	cfg["HWCAUDIT_SWR_INSTANCES"] = "5d1f0c2e-7a43-4b8e-9f10-2c3d4e5f6a7b"
	out["config"] = cfg
	return out
}

// An install with which every run would exit 2 is refused by helm
// install/template, saying what to set; before, the chart installed a
// CronJob that could never succeed.
func TestRefusesInstallsThatCannotRun(t *testing.T) {
	c := loadChart(t)
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no source", map[string]any{}, "no audit source is configured: set at least one of config.HWCAUDIT_SWR_INSTANCES"},
		{"kafka without brokers", map[string]any{"config": map[string]any{"HWCAUDIT_SWR_INSTANCES": "a", "HWCAUDIT_SINKS": "file,kafka"}}, "sink kafka needs config.HWCAUDIT_KAFKA_BROKERS"},
		{"elasticsearch without a URL", map[string]any{"config": map[string]any{"HWCAUDIT_DBSS_INSTANCES": "a", "HWCAUDIT_SINKS": "elasticsearch"}}, "sink elasticsearch needs config.ELASTICSEARCH_URL"},
		{"s3 without a bucket", map[string]any{"config": map[string]any{"HWCAUDIT_ARTIFACT_REPOS": "file/r", "HWCAUDIT_SINKS": "s3"}}, "sink s3 needs config.HWCAUDIT_S3_BUCKET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv, err := renderValues(c, tc.vals)
			if err == nil {
				_, err = engine.Engine{Strict: true}.Render(c, rv)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render error %v, want one saying %q", err, tc.want)
			}
		})
	}
	// The check can be turned off for settings given another way.
	rv, err := renderValues(c, map[string]any{"validateConfig": false})
	if err == nil {
		_, err = engine.Engine{Strict: true}.Render(c, rv)
	}
	if err != nil {
		t.Fatalf("validateConfig=false: %v", err)
	}
}
