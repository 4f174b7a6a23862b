package charts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
)

func TestDashboardConfigMap(t *testing.T) {
	c := loadChart(t)
	m, _ := render(t, c, nil)
	for _, cm := range m.configMaps {
		if _, ok := cm.Data["hwcaudit.json"]; ok {
			t.Errorf("dashboard ConfigMap %s rendered by default; dashboard.enabled is false", cm.Name)
		}
	}

	m, _ = render(t, c, map[string]any{"dashboard": map[string]any{
		"enabled":     true,
		"labels":      map[string]any{"team": "secops"},
		"annotations": map[string]any{"grafana_folder": "Security"},
	}})
	cm := configMap(t, m, "audit-hwcaudit-dashboard")
	if cm.Labels["grafana_dashboard"] != "1" || cm.Labels["team"] != "secops" {
		t.Errorf("dashboard labels %v: want grafana_dashboard=1 and team=secops", cm.Labels)
	}
	if cm.Annotations["grafana_folder"] != "Security" {
		t.Errorf("dashboard annotations %v", cm.Annotations)
	}
	want, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "hwcaudit.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := cm.Data["hwcaudit.json"]
	if !json.Valid([]byte(got)) {
		t.Fatalf("dashboard in the ConfigMap is not valid JSON:\n%.500s", got)
	}
	var a, b any
	json.Unmarshal(want, &a)
	json.Unmarshal([]byte(got), &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Error("dashboard in the ConfigMap differs from dashboards/hwcaudit.json")
	}
}

func TestDashboardSchemaRejects(t *testing.T) {
	c := loadChart(t)
	for _, v := range []string{
		"dashboard: {enabled: 'yes'}",
		"dashboard: {enabeld: true}",
		"dashboard: {labels: {a: {b: c}}}",
	} {
		vals, err := chartutil.ReadValues([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := renderValues(c, vals); err == nil {
			t.Errorf("values.schema.json accepts %s", v)
		}
	}
}
