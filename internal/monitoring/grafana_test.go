package monitoring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// grafanaFiles is the parsed Grafana provisioning of one rendering.
type grafanaFiles struct {
	Datasources struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
			IsDefault            bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	Provider struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	Dashboard map[string]any
	Rules     struct {
		APIVersion int `yaml:"apiVersion"`
		Groups     []struct {
			Folder   string `yaml:"folder"`
			Interval string `yaml:"interval"`
			Rules    []struct {
				UID       string            `yaml:"uid"`
				Title     string            `yaml:"title"`
				Condition string            `yaml:"condition"`
				For       string            `yaml:"for"`
				NoData    string            `yaml:"noDataState"`
				ExecErr   string            `yaml:"execErrState"`
				Labels    map[string]string `yaml:"labels"`
				Data      []struct {
					RefID         string         `yaml:"refId"`
					DatasourceUID string         `yaml:"datasourceUid"`
					Model         map[string]any `yaml:"model"`
				} `yaml:"data"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	ContactPoints struct {
		APIVersion    int `yaml:"apiVersion"`
		ContactPoints []struct {
			Name      string `yaml:"name"`
			Receivers []struct {
				UID                   string            `yaml:"uid"`
				Type                  string            `yaml:"type"`
				DisableResolveMessage bool              `yaml:"disableResolveMessage"`
				Settings              map[string]string `yaml:"settings"`
			} `yaml:"receivers"`
		} `yaml:"contactPoints"`
	}
	Policies struct {
		APIVersion int `yaml:"apiVersion"`
		Policies   []struct {
			Receiver string `yaml:"receiver"`
			Routes   []struct {
				Receiver       string     `yaml:"receiver"`
				ObjectMatchers [][]string `yaml:"object_matchers"`
				GroupInterval  string     `yaml:"group_interval"`
				RepeatInterval string     `yaml:"repeat_interval"`
			} `yaml:"routes"`
		} `yaml:"policies"`
	}
}

func loadGrafana(t *testing.T, dir string) grafanaFiles {
	t.Helper()
	var g grafanaFiles
	unmarshalYAML(t, filepath.Join(dir, FileGrafanaDatasource), &g.Datasources)
	unmarshalYAML(t, filepath.Join(dir, FileGrafanaDashboardProvider), &g.Provider)
	unmarshalYAML(t, filepath.Join(dir, FileGrafanaAlertRules), &g.Rules)
	unmarshalYAML(t, filepath.Join(dir, FileGrafanaContactPoints), &g.ContactPoints)
	unmarshalYAML(t, filepath.Join(dir, FileGrafanaPolicies), &g.Policies)
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, FileGrafanaDashboard)), &g.Dashboard); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	return g
}

// datasourceUIDs collects the uid of every "datasource" object in v.
func datasourceUIDs(v any, into map[string]int) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if ds, ok := e.(map[string]any); ok && k == "datasource" {
				uid, _ := ds["uid"].(string)
				into[uid]++
			}
			datasourceUIDs(e, into)
		}
	case []any:
		for _, e := range v {
			datasourceUIDs(e, into)
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	const autoscaler = "http://10.9.8.7:18090"
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			params := Params{AutoscalerURL: autoscaler + "/", PrometheusURL: "http://10.9.8.6:19090", GrafanaDashboardDir: "/srv/dashboards"}
			dir := renderTo(t, p, params)
			g := loadGrafana(t, dir)

			for name, v := range map[string]int{"datasources": g.Datasources.APIVersion, "dashboard provider": g.Provider.APIVersion,
				"alert rules": g.Rules.APIVersion, "contact points": g.ContactPoints.APIVersion, "policies": g.Policies.APIVersion} {
				if v != 1 {
					t.Errorf("%s apiVersion = %d, want 1", name, v)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "grafana/provisioning/notifiers")); !os.IsNotExist(err) {
				t.Errorf("legacy notifiers provisioning present (Grafana 11 no longer loads it): %v", err)
			}

			// Datasource: one, fixed uid, the Prometheus URL.
			ds := g.Datasources.Datasources
			if len(ds) != 1 || ds[0].UID != DatasourceUID || ds[0].Type != "prometheus" || ds[0].URL != params.PrometheusURL {
				t.Errorf("datasources = %+v, want one prometheus %q at %q", ds, DatasourceUID, params.PrometheusURL)
			}
			if pr := g.Provider.Providers; len(pr) != 1 || pr[0].Type != "file" || pr[0].Options.Path != "/srv/dashboards" {
				t.Errorf("dashboard providers = %+v, want one file provider at /srv/dashboards", pr)
			}

			// Dashboard: every datasource reference is the provisioned uid.
			uids := map[string]int{}
			datasourceUIDs(g.Dashboard, uids)
			if len(uids) != 1 || uids[DatasourceUID] == 0 {
				t.Errorf("dashboard datasource uids = %v, want only %q", uids, DatasourceUID)
			}
			var titles []string
			for _, panel := range g.Dashboard["panels"].([]any) {
				titles = append(titles, panel.(map[string]any)["title"].(string))
			}
			wantTitles := []string{"Load: answered", "Pool size", "CPU utilisation", "Latency (at the app)", "Failed requests", "Alerts", "Scaling decisions"}
			if !reflect.DeepEqual(titles, wantTitles) {
				t.Errorf("panels %q, want %q", titles, wantTitles)
			}

			// Alert rules: queries on the datasource, expressions on __expr__,
			// scale labels, profile timings, no scaling on errors.
			scales := map[string]string{}
			for _, grp := range g.Rules.Groups {
				if grp.Interval != formatDuration(p.GrafanaEvalInterval) {
					t.Errorf("rule group interval %q, want %q", grp.Interval, formatDuration(p.GrafanaEvalInterval))
				}
				for _, r := range grp.Rules {
					scales[r.Title] = r.Labels["scale"]
					if r.For != formatDuration(p.GrafanaFor) {
						t.Errorf("%s for %q, want %q", r.Title, r.For, formatDuration(p.GrafanaFor))
					}
					if r.NoData != "OK" || r.ExecErr != "OK" {
						t.Errorf("%s noDataState/execErrState = %s/%s, want OK/OK", r.Title, r.NoData, r.ExecErr)
					}
					refs := map[string]string{}
					for _, d := range r.Data {
						refs[d.RefID], _ = d.Model["type"].(string)
						modelDS, _ := d.Model["datasource"].(map[string]any)
						switch d.DatasourceUID {
						case DatasourceUID:
							refs[d.RefID] = "query"
						case exprDatasourceUID:
						default:
							t.Errorf("%s %s: datasourceUid %q, want %q or %q", r.Title, d.RefID, d.DatasourceUID, DatasourceUID, exprDatasourceUID)
						}
						if modelDS["uid"] != d.DatasourceUID {
							t.Errorf("%s %s: model datasource uid %v, want %q", r.Title, d.RefID, modelDS["uid"], d.DatasourceUID)
						}
					}
					if want := map[string]string{"A": "query", "B": "reduce", "C": "threshold"}; !reflect.DeepEqual(refs, want) {
						t.Errorf("%s data %v, want %v", r.Title, refs, want)
					}
					if r.Condition != "C" {
						t.Errorf("%s condition %q, want C", r.Title, r.Condition)
					}
				}
			}
			if want := map[string]string{"TidepoolPoolCPUHigh": "up", "TidepoolPoolCPULow": "down"}; !reflect.DeepEqual(scales, want) {
				t.Errorf("rule scale labels %v, want %v", scales, want)
			}

			// Contact points: webhooks to /up and /down, no resolve messages,
			// the autoscaler's token from Grafana's environment.
			urls := map[string]string{}
			for _, cp := range g.ContactPoints.ContactPoints {
				for _, r := range cp.Receivers {
					if r.Type != "webhook" || !r.DisableResolveMessage {
						t.Errorf("contact point %s: type %q disableResolveMessage %v, want webhook true", cp.Name, r.Type, r.DisableResolveMessage)
					}
					if r.Settings["authorization_scheme"] != "Bearer" || r.Settings["authorization_credentials"] != "$"+GrafanaTokenEnv {
						t.Errorf("contact point %s: authorization %q %q, want Bearer $%s", cp.Name, r.Settings["authorization_scheme"], r.Settings["authorization_credentials"], GrafanaTokenEnv)
					}
					urls[cp.Name] = r.Settings["url"]
				}
			}
			wantURLs := map[string]string{"tidepool-autoscaler-up": autoscaler + "/up", "tidepool-autoscaler-down": autoscaler + "/down"}
			if !reflect.DeepEqual(urls, wantURLs) {
				t.Errorf("contact point URLs %v, want %v", urls, wantURLs)
			}

			// Policy: scale=X goes to the contact point posting to /X, repeating.
			if len(g.Policies.Policies) != 1 {
				t.Fatalf("%d policy trees, want 1", len(g.Policies.Policies))
			}
			routed := map[string]string{}
			for _, r := range g.Policies.Policies[0].Routes {
				if len(r.ObjectMatchers) != 1 || len(r.ObjectMatchers[0]) != 3 || r.ObjectMatchers[0][0] != "scale" || r.ObjectMatchers[0][1] != "=" {
					t.Errorf("route to %s: matchers %q, want one scale= matcher", r.Receiver, r.ObjectMatchers)
					continue
				}
				routed[r.ObjectMatchers[0][2]] = urls[r.Receiver]
				if r.RepeatInterval != formatDuration(p.GrafanaRepeatInterval) {
					t.Errorf("route to %s: repeat_interval %q, want %q", r.Receiver, r.RepeatInterval, formatDuration(p.GrafanaRepeatInterval))
				}
			}
			if want := map[string]string{"up": autoscaler + "/up", "down": autoscaler + "/down"}; !reflect.DeepEqual(routed, want) {
				t.Errorf("policy routes scale -> URL %v, want %v", routed, want)
			}
		})
	}
}

func TestSeedGrafanaRepeatsEveryFiveMinutes(t *testing.T) {
	g := loadGrafana(t, renderTo(t, Seed(), Params{}))
	for _, r := range g.Policies.Policies[0].Routes {
		if r.RepeatInterval != "5m" {
			t.Errorf("route to %s: repeat_interval %q, want 5m", r.Receiver, r.RepeatInterval)
		}
	}
}

func TestQueries(t *testing.T) {
	dir := renderTo(t, Fast(), Params{})
	qs, err := Queries(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range qs {
		got = append(got, q.Where+": "+q.Expr)
	}
	want := []string{
		`panel "Load: answered" target A: sum by (code) (rate(tidepool_app_requests_total[5s]))`,
		`panel "Pool size" target A: max(tidepool_autoscaler_pool_size)`,
		`panel "Pool size" target B: count(up{job="node"} == 1)`,
		`panel "Pool size" target C: clamp_min(max(tidepool_autoscaler_pool_size) - count(up{job="node"} == 1), 0)`,
		`panel "Pool size" target D: sum(tidepool_app_draining)`,
		`panel "CPU utilisation" target A: pool:node_cpu_utilisation:avg`,
		`panel "CPU utilisation" target B: instance:node_cpu_utilisation:ratio`,
		`panel "Latency (at the app)" target A: histogram_quantile(0.5, sum by (le) (rate(tidepool_app_request_duration_seconds_bucket[5s])))`,
		`panel "Latency (at the app)" target B: histogram_quantile(0.95, sum by (le) (rate(tidepool_app_request_duration_seconds_bucket[5s])))`,
		`panel "Latency (at the app)" target C: histogram_quantile(0.99, sum by (le) (rate(tidepool_app_request_duration_seconds_bucket[5s])))`,
		`panel "Failed requests" target A: sum(rate(tidepool_app_requests_total{code!~"2.."}[5s])) or vector(0)`,
		`panel "Alerts" target A: max by (alertname) ((ALERTS{alertname=~"TidepoolPoolCPUHigh|TidepoolPoolCPULow", alertstate="firing"} * 2) or ALERTS{alertname=~"TidepoolPoolCPUHigh|TidepoolPoolCPULow", alertstate="pending"} or label_replace(vector(0), "alertname", "TidepoolPoolCPUHigh", "", "") or label_replace(vector(0), "alertname", "TidepoolPoolCPULow", "", ""))`,
		`panel "Scaling decisions" target A: sum by (direction, result) (increase(tidepool_autoscaler_decisions_total[5s]))`,
		`rule TidepoolPoolCPUHigh query A: pool:node_cpu_utilisation:avg`,
		`rule TidepoolPoolCPULow query A: pool:node_cpu_utilisation:avg`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Queries() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, q := range qs {
		if q.File != FileGrafanaDashboard && q.File != FileGrafanaAlertRules {
			t.Errorf("%s: File %q", q.Where, q.File)
		}
	}
}

func TestQueriesRejectForeignDatasource(t *testing.T) {
	tests := []struct {
		name, file, old, new, want string
	}{
		{"dashboard", FileGrafanaDashboard, `"uid": "` + DatasourceUID + `"}, "expr"`, `"uid": "other"}, "expr"`, "is not"},
		{"alert rule", FileGrafanaAlertRules, "datasourceUid: " + DatasourceUID, "datasourceUid: other", "is not"},
		{"empty expr", FileGrafanaAlertRules, "expr: pool:node_cpu_utilisation:avg", "expr: ''", "empty expr"},
		{"missing file", FileGrafanaDashboard, "", "", "read dashboard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := renderTo(t, Seed(), Params{})
			path := filepath.Join(dir, tt.file)
			if tt.old == "" {
				os.Remove(path)
			} else {
				b := string(mustRead(t, path))
				if !strings.Contains(b, tt.old) {
					t.Fatalf("%s lacks %q", tt.file, tt.old)
				}
				if err := os.WriteFile(path, []byte(strings.Replace(b, tt.old, tt.new, 1)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Queries(dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Queries() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
