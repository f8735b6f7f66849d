// Package monitoring renders tidepool's monitoring configuration: the
// Prometheus config and rules (with promtool unit tests), the Alertmanager
// config and the Grafana provisioning files (datasource, dashboard, unified
// alerting rules, contact points, notification policy).
//
// There is one source, the templates embedded from templates/, rendered with a
// Profile (timings: Seed or Fast) and Params (addresses, ports, thresholds).
// deploy/monitoring in the repository is the seed profile rendered with zero
// Params; a test keeps it in sync.
//
// It owns the monitoring configuration and the recording rules' names
// (RulePoolCPU, RuleInstanceCPU, RuleArrivalRate, RuleCostPerRequest), and must not import the agents, the cloud or
// anything that starts processes.
package monitoring

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"tidepool/internal/atomicfile"
)

//go:generate go run ../../cmd/tidepool monitoring render --profile seed --out ../../deploy/monitoring

//go:embed templates
var templateFS embed.FS

// Rendered file names, relative to the output directory. They are fixed: the
// Prometheus config refers to rules.yml by this relative name, and deployments
// copy the grafana/ tree as it is.
const (
	FilePrometheus               = "prometheus.yml"
	FileRules                    = "rules.yml"
	FileRulesTest                = "rules_test.yml"
	FileAlertmanager             = "alertmanager.yml"
	FileGrafanaDatasource        = "grafana/provisioning/datasources/tidepool.yml"
	FileGrafanaDashboardProvider = "grafana/provisioning/dashboards/tidepool.yml"
	FileGrafanaAlertRules        = "grafana/provisioning/alerting/rules.yml"
	FileGrafanaContactPoints     = "grafana/provisioning/alerting/contact-points.yml"
	FileGrafanaPolicies          = "grafana/provisioning/alerting/policies.yml"
	FileGrafanaDashboard         = "grafana/dashboards/tidepool.json"
)

// FileNames returns every file Render writes, relative to the output
// directory, sorted.
func FileNames() []string {
	names := []string{
		FilePrometheus, FileRules, FileRulesTest, FileAlertmanager,
		FileGrafanaDatasource, FileGrafanaDashboardProvider, FileGrafanaAlertRules,
		FileGrafanaContactPoints, FileGrafanaPolicies, FileGrafanaDashboard,
	}
	slices.Sort(names)
	return names
}

// Render renders every file of FileNames for profile p and params into outDir,
// creating directories as needed. All files are rendered and checked (YAML or
// JSON syntax) in memory first, so an invalid profile or params leave outDir
// untouched. Each file is then published with atomicfile.WriteIfChanged
// (temporary file in the same directory, fsync, rename), only if its content
// changed; a write error stops there, with every file either old or new, never
// partial. Files in outDir that Render does not own are left alone.
func Render(p Profile, params Params, outDir string) error {
	files, err := RenderFiles(p, params)
	if err != nil {
		return err
	}
	for _, name := range FileNames() {
		path := filepath.Join(outDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		if _, err := atomicfile.WriteIfChanged(path, files[name], 0o644); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
	}
	return nil
}

// RenderFiles is Render without the disk: it returns the content of every
// file of FileNames, keyed by name.
func RenderFiles(p Profile, params Params) (map[string][]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	data := newTemplateData(p, params.WithDefaults())
	files := make(map[string][]byte, len(FileNames()))
	for _, name := range FileNames() {
		out, err := renderOne(name, data)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		files[name] = out
	}
	return files, nil
}

func renderOne(name string, data templateData) ([]byte, error) {
	src, err := templateFS.ReadFile("templates/" + name)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	tmpl, err := template.New(name).Delims("{%", "%}").Funcs(templateFuncs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("execute template: %w", err)
	}
	out := buf.Bytes()
	var v any
	if strings.HasSuffix(name, ".json") {
		if err := json.Unmarshal(out, &v); err != nil {
			return nil, fmt.Errorf("rendered invalid JSON: %w", err)
		}
	} else if err := yaml.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("rendered invalid YAML: %w", err)
	}
	return out, nil
}

// templateData is what every template sees.
type templateData struct {
	P             Profile
	Params        Params
	Header        string // comment line opening every YAML file
	HeaderText    string // the same without "# ", for JSON descriptions
	DatasourceUID string
	// GrafanaTokenEnv names the Grafana server's variable with the
	// autoscaler token.
	GrafanaTokenEnv string
	Rules           ruleNames
	Components      []scrapeJob
	GrafanaRules    []grafanaRule
	Test            ruleTest
}

// ruleNames are the recording rules' names (RuleInstanceCPU, RulePoolCPU,
// RuleArrivalRate, RuleCostPerRequest).
type ruleNames struct {
	InstanceCPU, PoolCPU, ArrivalRate, CostPerRequest string
}

// grafanaRule is one of the two Grafana alert rules and its contact point.
type grafanaRule struct {
	UID, Title string
	Scale      string // "up" or "down": label value and endpoint path
	Op, Word   string // threshold evaluator ("gt"/"lt") and its wording
	Threshold  float64
}

// ruleTest holds the timings of rules_test.yml.
type ruleTest struct {
	Interval time.Duration // input series sample interval (= scrape interval)
	// PendingAt is an evaluation time at which the alerts are active but
	// have not lasted AlertFor yet, so none may fire.
	PendingAt time.Duration
	// FiringAt is an evaluation time well past rate window plus AlertFor.
	FiringAt time.Duration
	Steps    int // samples after the first, reaching FiringAt
}

// Ramp is a promtool series of a CPU-seconds counter that grows by share
// seconds per second: "0+INCxSTEPS".
func (t ruleTest) Ramp(share float64) string {
	return fmt.Sprintf("0+%sx%d", formatNumber(share*t.Interval.Seconds()), t.Steps)
}

func newTemplateData(p Profile, params Params) templateData {
	header := fmt.Sprintf("Rendered by `tidepool monitoring render --profile %s` from internal/monitoring/templates: edit those, not this file.", p.Name)
	// The first evaluation with two samples in the rate window is at one
	// scrape interval; the alert fires AlertFor later.
	pendingAt := p.ScrapeInterval + p.AlertFor - p.EvaluationInterval
	firingAt := 2 * (p.RateWindow + p.AlertFor)
	return templateData{
		P:               p,
		Params:          params,
		Header:          "# " + header,
		HeaderText:      header,
		DatasourceUID:   DatasourceUID,
		GrafanaTokenEnv: GrafanaTokenEnv,
		Rules: ruleNames{InstanceCPU: RuleInstanceCPU, PoolCPU: RulePoolCPU,
			ArrivalRate: RuleArrivalRate, CostPerRequest: RuleCostPerRequest},
		Components: params.components(),
		GrafanaRules: []grafanaRule{
			{UID: "tidepool-pool-cpu-high", Title: "TidepoolPoolCPUHigh", Scale: "up", Op: "gt", Word: "above", Threshold: params.ScaleUpAbove},
			{UID: "tidepool-pool-cpu-low", Title: "TidepoolPoolCPULow", Scale: "down", Op: "lt", Word: "below", Threshold: params.ScaleDownBelow},
		},
		Test: ruleTest{
			Interval:  p.ScrapeInterval,
			PendingAt: pendingAt,
			FiringAt:  firingAt,
			Steps:     int(firingAt / p.ScrapeInterval),
		},
	}
}

var templateFuncs = template.FuncMap{
	// dur formats a duration for Prometheus, Alertmanager and Grafana.
	"dur": formatDuration,
	// ms is a duration in whole milliseconds.
	"ms": func(d time.Duration) int64 { return d.Milliseconds() },
	// q quotes a string; a JSON string is also a YAML double-quoted scalar.
	"q": quote,
	// qlist quotes each string, comma-separated (for a YAML/JSON flow list).
	"qlist": func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = quote(s)
		}
		return strings.Join(q, ", ")
	},
	// num formats a float without noise ("0.8", "12.15").
	"num": formatNumber,
	// pct formats a ratio as a percentage ("80%").
	"pct": func(v float64) string { return formatNumber(v*100) + "%" },
}

func quote(s string) string {
	b, err := json.Marshal(s)
	if err != nil { // a Go string always marshals
		panic(err)
	}
	return string(b)
}

// formatNumber rounds v to 9 decimals (hiding float noise such as
// 0.81*15 = 12.150000000000002) and formats it in the shortest form.
func formatNumber(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e9)/1e9, 'g', -1, 64)
}
