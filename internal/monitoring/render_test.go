package monitoring

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// listFiles returns every regular file under dir, relative, slash-separated, sorted.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		names = append(names, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestFileNamesAreTheTemplates(t *testing.T) {
	var tmpls []string
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			tmpls = append(tmpls, strings.TrimPrefix(path, "templates/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tmpls)
	if !reflect.DeepEqual(tmpls, FileNames()) {
		t.Errorf("embedded templates %q\nFileNames() %q", tmpls, FileNames())
	}
}

func TestRenderBothProfiles(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			dir := renderTo(t, p, Params{})
			if got := listFiles(t, dir); !reflect.DeepEqual(got, FileNames()) {
				t.Fatalf("rendered files %q, want %q", got, FileNames())
			}
			for _, name := range FileNames() {
				b := mustRead(t, filepath.Join(dir, name))
				if bytes.Contains(b, []byte("{%")) || bytes.Contains(b, []byte("%}")) {
					t.Errorf("%s: unexpanded template delimiter", name)
				}
				if bytes.Contains(b, []byte("<no value>")) {
					t.Errorf("%s: <no value> in output", name)
				}
			}

			var prom struct {
				Global struct {
					ScrapeInterval     string `yaml:"scrape_interval"`
					EvaluationInterval string `yaml:"evaluation_interval"`
				} `yaml:"global"`
			}
			unmarshalYAML(t, filepath.Join(dir, FilePrometheus), &prom)
			if got, want := prom.Global.ScrapeInterval, formatDuration(p.ScrapeInterval); got != want {
				t.Errorf("scrape_interval = %q, want %q", got, want)
			}
			if got, want := prom.Global.EvaluationInterval, formatDuration(p.EvaluationInterval); got != want {
				t.Errorf("evaluation_interval = %q, want %q", got, want)
			}

			var am struct {
				Route struct {
					GroupWait      string `yaml:"group_wait"`
					GroupInterval  string `yaml:"group_interval"`
					RepeatInterval string `yaml:"repeat_interval"`
				} `yaml:"route"`
			}
			unmarshalYAML(t, filepath.Join(dir, FileAlertmanager), &am)
			wantAM := [3]string{formatDuration(p.AlertmanagerGroupWait), formatDuration(p.AutoscalerTick), formatDuration(p.AlertmanagerRepeatInterval)}
			if got := [3]string{am.Route.GroupWait, am.Route.GroupInterval, am.Route.RepeatInterval}; got != wantAM {
				t.Errorf("alertmanager wait/interval/repeat = %q, want %q", got, wantAM)
			}
		})
	}
}

func unmarshalYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(mustRead(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promRules is the part of a Prometheus rules file the tests look at.
type promRules struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Record string            `yaml:"record"`
			Alert  string            `yaml:"alert"`
			Expr   string            `yaml:"expr"`
			For    string            `yaml:"for"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestRulesUseCourseExpression(t *testing.T) {
	tests := []struct {
		profile                Profile
		cpu                    string
		forDur                 string
		arrivalWin, rateWindow string
	}{
		{Seed(), `sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[1m])) / sum by (instance) (rate(node_cpu_seconds_total[1m]))`, "1m", "45s", "1m"},
		{Fast(), `sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5s])) / sum by (instance) (rate(node_cpu_seconds_total[5s]))`, "3s", "3s", "5s"},
	}
	for _, tt := range tests {
		t.Run(tt.profile.Name, func(t *testing.T) {
			var rules promRules
			unmarshalYAML(t, filepath.Join(renderTo(t, tt.profile, Params{}), FileRules), &rules)
			got := map[string]string{}
			labels := map[string]map[string]string{}
			for _, g := range rules.Groups {
				for _, r := range g.Rules {
					name := r.Record + r.Alert
					got[name] = r.Expr
					labels[name] = r.Labels
					if r.Alert != "" && r.For != tt.forDur {
						t.Errorf("%s for = %q, want %q", r.Alert, r.For, tt.forDur)
					}
				}
			}
			want := map[string]string{
				"instance:node_cpu_utilisation:ratio": tt.cpu,
				"pool:node_cpu_utilisation:avg":       "avg(instance:node_cpu_utilisation:ratio)",
				"TidepoolPoolCPUHigh":                 "pool:node_cpu_utilisation:avg > 0.8",
				"TidepoolPoolCPULow":                  "pool:node_cpu_utilisation:avg < 0.2",
				RuleArrivalRate:                       `sum(irate(tidepool_app_arrivals_total{job="app",path="/"}[` + tt.arrivalWin + `]))`,
				RuleCostPerRequest: `sum(instance:node_cpu_utilisation:ratio) / (sum(rate(tidepool_app_requests_total{job="app",path="/"}[` +
					tt.rateWindow + `])) > 0)`,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rules\n%q\nwant\n%q", got, want)
			}
			if labels["TidepoolPoolCPUHigh"]["scale"] != "up" || labels["TidepoolPoolCPULow"]["scale"] != "down" {
				t.Errorf("alert labels %v, want scale=up on High and scale=down on Low", labels)
			}
		})
	}
}

func TestPrometheusJobsShareOneFileSD(t *testing.T) {
	params := Params{FileSDPath: "/run/sd/pool.json", NodePort: 19100, AppPort: 18080,
		DiscoverTargets: []string{"127.0.0.1:9201"}, CloudTargets: []string{"127.0.0.1:9202", "127.0.0.1:9203"}}
	var prom struct {
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			MetricsPath string `yaml:"metrics_path"`
			FileSD      []struct {
				Files []string `yaml:"files"`
			} `yaml:"file_sd_configs"`
			Relabel []struct {
				Replacement string `yaml:"replacement"`
			} `yaml:"relabel_configs"`
			Static []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	unmarshalYAML(t, filepath.Join(renderTo(t, Seed(), params), FilePrometheus), &prom)
	got := map[string]string{}
	for _, sc := range prom.ScrapeConfigs {
		var desc []string
		for _, f := range sc.FileSD {
			desc = append(desc, "file_sd="+strings.Join(f.Files, ","))
		}
		for _, r := range sc.Relabel {
			desc = append(desc, "port="+r.Replacement)
		}
		for _, s := range sc.Static {
			desc = append(desc, "static="+strings.Join(s.Targets, ","))
		}
		got[sc.JobName] = strings.Join(desc, " ")
	}
	want := map[string]string{
		"node":       "file_sd=/run/sd/pool.json port=${1}:19100",
		"app":        "file_sd=/run/sd/pool.json port=${1}:18080",
		"autoscaler": "static=127.0.0.1:8090",
		"discover":   "static=127.0.0.1:9201",
		"cloud":      "static=127.0.0.1:9202,127.0.0.1:9203",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scrape jobs\n%q\nwant\n%q", got, want)
	}
}

func TestRenderUnchangedFilesNotRewritten(t *testing.T) {
	dir := renderTo(t, Seed(), Params{})
	before := map[string]os.FileInfo{}
	for _, name := range FileNames() {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		before[name] = st
	}
	// The autoscaler URL appears in alertmanager.yml, the Grafana contact
	// points and (as the default autoscaler metrics target) prometheus.yml.
	if err := Render(Seed(), Params{AutoscalerURL: "http://127.0.0.1:8091"}, dir); err != nil {
		t.Fatal(err)
	}
	changed := map[string]bool{FileAlertmanager: true, FileGrafanaContactPoints: true, FilePrometheus: true}
	for _, name := range FileNames() {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if same := os.SameFile(before[name], st); same == changed[name] {
			t.Errorf("%s: replaced = %v, want %v", name, !same, changed[name])
		}
	}
	if got := listFiles(t, dir); !reflect.DeepEqual(got, FileNames()) {
		t.Errorf("files after re-render %q (temporary files left?), want %q", got, FileNames())
	}
	if !bytes.Contains(mustRead(t, filepath.Join(dir, FileAlertmanager)), []byte(`"http://127.0.0.1:8091/up"`)) {
		t.Errorf("alertmanager.yml does not post to the new autoscaler URL")
	}
}

func TestRenderErrorWritesNothing(t *testing.T) {
	tests := []struct {
		name    string
		profile Profile
		params  Params
	}{
		{"bad params", Seed(), Params{AppPort: 99999}},
		{"bad profile", Profile{Name: "broken"}, Params{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Render(tt.profile, tt.params, dir); err == nil {
				t.Fatal("Render succeeded, want error")
			}
			if got := listFiles(t, dir); len(got) != 0 {
				t.Errorf("files written despite error: %q", got)
			}
		})
	}
}

// TestDeployMonitoringIsSeed keeps deploy/monitoring, the checked-in seed
// configuration, identical to what the templates render.
func TestDeployMonitoringIsSeed(t *testing.T) {
	const deployDir = "../../deploy/monitoring"
	const regenerate = "regenerate with: go run ./cmd/tidepool monitoring render --profile seed --out deploy/monitoring"
	want, err := RenderFiles(Seed(), Params{})
	if err != nil {
		t.Fatal(err)
	}
	if got := listFiles(t, deployDir); !reflect.DeepEqual(got, FileNames()) {
		t.Errorf("deploy/monitoring holds %q, want %q; %s", got, FileNames(), regenerate)
	}
	for _, name := range FileNames() {
		got, err := os.ReadFile(filepath.Join(deployDir, name))
		if err != nil {
			t.Errorf("%v; %s", err, regenerate)
			continue
		}
		if !bytes.Equal(got, want[name]) {
			t.Errorf("deploy/monitoring/%s differs from the seed rendering; %s", name, regenerate)
		}
	}
}
