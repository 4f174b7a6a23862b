// The walkthrough tag keeps the Helm SDK and the Kubernetes API out of
// the package's other test builds, the fuzz targets' instrumented ones
// above all (their compile took five minutes); scripts/test.sh runs these
// tests with -tags walkthrough.

//go:build walkthrough

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/strvals"
)

// TestNotesPodIdentity renders NOTES.txt: its advice for CCE pod identity
// must match the README's and values.yaml's (an association, no
// ServiceAccount annotation), and name the ServiceAccount to bind.
func TestNotesPodIdentity(t *testing.T) {
	c, err := loader.Load(filepath.Join(repoRoot, chartPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  []string
		want []string // in NOTES; none: no pod identity advice at all
	}{
		{"no credentials", nil, []string{"pod identity association", "ServiceAccount audit-hwcaudit in namespace security", "HWCAUDIT_CREDENTIALS=pod-identity", "no ServiceAccount annotation is needed"}},
		{"named ServiceAccount", []string{"serviceAccount.name=hwcaudit-exporter"}, []string{"ServiceAccount hwcaudit-exporter in namespace security"}},
		{"pod identity set", []string{"config.HWCAUDIT_CREDENTIALS=pod-identity"}, nil},
		{"AK/SK given", []string{"credentials.accessKey=ak", "credentials.secretKey=sk"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := map[string]any{}
			// An install names a source (the chart refuses one without).
			for _, s := range append([]string{"config.HWCAUDIT_SWR_INSTANCES=swr-1"}, tc.set...) {
				if err := strvals.ParseInto(s, vals); err != nil {
					t.Fatal(err)
				}
			}
			rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: "audit", Namespace: "security", Revision: 1, IsInstall: true}, chartutil.DefaultCapabilities)
			if err != nil {
				t.Fatal(err)
			}
			files, err := engine.Engine{Strict: true}.Render(c, rv)
			if err != nil {
				t.Fatal(err)
			}
			notes := files[filepath.Join(c.Name(), "templates", "NOTES.txt")]
			if notes == "" {
				t.Fatalf("no NOTES.txt among %d rendered files", len(files))
			}
			flat := strings.Join(strings.Fields(notes), " ")
			if strings.Contains(flat, "serviceAccount.annotations") {
				t.Errorf("NOTES tells to set serviceAccount.annotations, which pod identity does not need:\n%s", notes)
			}
			if tc.want == nil && strings.Contains(flat, "pod identity") {
				t.Errorf("NOTES gives pod identity advice although credentials are configured:\n%s", notes)
			}
			for _, w := range tc.want {
				if !strings.Contains(flat, w) {
					t.Errorf("NOTES lacks %q:\n%s", w, notes)
				}
			}
		})
	}
}
