package monitoring

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Defaults used by Params for zero fields.
const (
	DefaultFileSDPath          = "/srv/service-discovery/config.json"
	DefaultNodePort            = 9100
	DefaultAppPort             = 8080
	DefaultAppMetricsPath      = "/metrics"
	DefaultAutoscalerURL       = "http://127.0.0.1:8090"
	DefaultAutoscalerTokenFile = "/etc/tidepool/autoscaler-token"
	// GrafanaTokenEnv is the environment variable of the Grafana server
	// that holds the autoscaler's bearer token: the contact points send
	// "$TIDEPOOL_AUTOSCALER_AUTH_TOKEN", which Grafana expands when it
	// provisions them (the same variable configures the autoscaler).
	GrafanaTokenEnv            = "TIDEPOOL_AUTOSCALER_AUTH_TOKEN"
	DefaultAlertmanagerAddr    = "127.0.0.1:9093"
	DefaultPrometheusURL       = "http://127.0.0.1:9090"
	DefaultGrafanaDashboardDir = "/var/lib/grafana/dashboards"
	DefaultScaleUpAbove        = 0.8
	DefaultScaleDownBelow      = 0.2

	// DatasourceUID is the fixed uid of the provisioned Prometheus datasource;
	// every dashboard panel and Grafana alert query references it.
	DatasourceUID = "tidepool-prometheus"
)

// Recording rules of rules.yml, defined here once: the templates, the
// autoscaler's target tracking and predictive policy and the demo read these
// names.
const (
	// RuleInstanceCPU is each member's share of CPU time not idle over the
	// profile's rate window, 0..1 over all its CPUs, labelled by instance.
	RuleInstanceCPU = "instance:node_cpu_utilisation:ratio"
	// RulePoolCPU is the average of RuleInstanceCPU over the members, 0..1:
	// what the alerts and the autoscaler act on.
	RulePoolCPU = "pool:node_cpu_utilisation:avg"
	// RuleArrivalRate is the requests per second arriving at the pool's
	// apps (tidepool_app_arrivals_total of path "/", counted when a
	// request arrives, before it waits for CPU), summed over the members,
	// each between its last two samples within the profile's
	// ArrivalWindow (irate): the load signal that leads the CPU, which the
	// autoscaler's predictive policy acts on.
	RuleArrivalRate = "pool:tidepool_app_arrivals:rate"
	// RuleCostPerRequest is the member-seconds of CPU one answered request
	// costs: RuleInstanceCPU summed over the members, over the answered
	// requests per second of path "/" (RateWindow); 1/capacity of a member.
	// No value while nothing is answered.
	RuleCostPerRequest = "pool:tidepool_app_cost_per_request:ratio"
)

// Params are the deployment-specific inputs of Render. The zero value renders
// the seed deployment: every zero field takes the default named in its comment.
type Params struct {
	// FileSDPath is the file_sd JSON written by `tidepool discover`; both the
	// node and the app job read it. Default DefaultFileSDPath.
	FileSDPath string
	// NodePort is node-exporter's port; the node job rewrites each discovered
	// target's port to it. Default 9100 (what discover writes).
	NodePort int
	// AppPort is the app's port; the app job rewrites each discovered target's
	// port to it. Default 8080.
	AppPort int
	// AppMetricsPath is the app's metrics path. Default "/metrics".
	AppMetricsPath string
	// AutoscalerURL is the autoscaler's base URL; Alertmanager and Grafana post
	// to AutoscalerURL+"/up" and +"/down". Default DefaultAutoscalerURL.
	AutoscalerURL string
	// AutoscalerTokenFile is the file holding the bearer token the
	// autoscaler's webhooks require (its --auth-token): Alertmanager sends
	// "Authorization: Bearer <file content>" (credentials_file, read at
	// every notification, so it must be readable by Alertmanager's user).
	// Grafana sends the token from its environment (GrafanaTokenEnv).
	// Default DefaultAutoscalerTokenFile.
	AutoscalerTokenFile string
	// AutoscalerTargets are host:port targets of the autoscaler's /metrics.
	// Empty means the host:port of AutoscalerURL.
	AutoscalerTargets []string
	// DiscoverTargets and CloudTargets are host:port targets of `tidepool
	// discover` and `tidepool cloud` metrics. Empty means no such job.
	DiscoverTargets []string
	CloudTargets    []string
	// AlertmanagerAddr is the host:port Prometheus sends alerts to. Default
	// DefaultAlertmanagerAddr.
	AlertmanagerAddr string
	// PrometheusURL is the URL Grafana's datasource queries. Default
	// DefaultPrometheusURL.
	PrometheusURL string
	// GrafanaDashboardDir is where Grafana finds the dashboard JSON (the
	// provider's path); copy grafana/dashboards there. Default
	// DefaultGrafanaDashboardDir.
	GrafanaDashboardDir string
	// ScaleUpAbove and ScaleDownBelow are the pool average CPU ratios (0..1)
	// above/below which the scale-up/scale-down alerts fire. Defaults 0.8 and
	// 0.2.
	ScaleUpAbove   float64
	ScaleDownBelow float64
}

// WithDefaults returns p with every zero field set to its default.
func (p Params) WithDefaults() Params {
	if p.FileSDPath == "" {
		p.FileSDPath = DefaultFileSDPath
	}
	if p.NodePort == 0 {
		p.NodePort = DefaultNodePort
	}
	if p.AppPort == 0 {
		p.AppPort = DefaultAppPort
	}
	if p.AppMetricsPath == "" {
		p.AppMetricsPath = DefaultAppMetricsPath
	}
	if p.AutoscalerURL == "" {
		p.AutoscalerURL = DefaultAutoscalerURL
	}
	p.AutoscalerURL = strings.TrimRight(p.AutoscalerURL, "/")
	if p.AutoscalerTokenFile == "" {
		p.AutoscalerTokenFile = DefaultAutoscalerTokenFile
	}
	if len(p.AutoscalerTargets) == 0 {
		if u, err := url.Parse(p.AutoscalerURL); err == nil && u.Host != "" {
			p.AutoscalerTargets = []string{hostPort(u)}
		}
	}
	if p.AlertmanagerAddr == "" {
		p.AlertmanagerAddr = DefaultAlertmanagerAddr
	}
	if p.PrometheusURL == "" {
		p.PrometheusURL = DefaultPrometheusURL
	}
	if p.GrafanaDashboardDir == "" {
		p.GrafanaDashboardDir = DefaultGrafanaDashboardDir
	}
	if p.ScaleUpAbove == 0 {
		p.ScaleUpAbove = DefaultScaleUpAbove
	}
	if p.ScaleDownBelow == 0 {
		p.ScaleDownBelow = DefaultScaleDownBelow
	}
	return p
}

// hostPort is u's host:port with the scheme's default port filled in.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Validate reports the first invalid field of p (after defaults apply).
func (p Params) Validate() error {
	p = p.WithDefaults()
	if !strings.HasPrefix(p.FileSDPath, "/") {
		return fmt.Errorf("file_sd path %q: must be absolute: Prometheus resolves a relative path against the directory of prometheus.yml on the monitoring host, not where tidepool discover writes the file", p.FileSDPath)
	}
	for _, port := range []struct {
		name string
		v    int
	}{{"node port", p.NodePort}, {"app port", p.AppPort}} {
		if port.v < 1 || port.v > 65535 {
			return fmt.Errorf("%s %d: out of range 1-65535", port.name, port.v)
		}
	}
	if !strings.HasPrefix(p.AutoscalerTokenFile, "/") {
		return fmt.Errorf("autoscaler token file %q: must be absolute", p.AutoscalerTokenFile)
	}
	if !strings.HasPrefix(p.AppMetricsPath, "/") {
		return fmt.Errorf("app metrics path %q: must start with /", p.AppMetricsPath)
	}
	for _, u := range []struct{ name, v string }{{"autoscaler URL", p.AutoscalerURL}, {"Prometheus URL", p.PrometheusURL}} {
		if err := checkHTTPURL(u.v); err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
	}
	if err := checkHostPort(p.AlertmanagerAddr); err != nil {
		return fmt.Errorf("alertmanager address: %w", err)
	}
	for _, job := range p.components() {
		for _, t := range job.Targets {
			if err := checkHostPort(t); err != nil {
				return fmt.Errorf("%s target: %w", job.Job, err)
			}
		}
	}
	if !strings.HasPrefix(p.GrafanaDashboardDir, "/") {
		return fmt.Errorf("grafana dashboard dir %q: must be absolute: Grafana reads it on the monitoring host, from its own working directory", p.GrafanaDashboardDir)
	}
	if !(0 < p.ScaleDownBelow && p.ScaleDownBelow < p.ScaleUpAbove && p.ScaleUpAbove < 1) {
		return fmt.Errorf("thresholds: want 0 < scale-down %v < scale-up %v < 1", p.ScaleDownBelow, p.ScaleUpAbove)
	}
	return nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("parse %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: no query or fragment allowed", s)
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if host == "" {
		return fmt.Errorf("%q: empty host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port out of range 1-65535", s)
	}
	return nil
}

// scrapeJob is one static scrape job of a tidepool component.
type scrapeJob struct {
	Job     string
	Targets []string
}

// components lists the static component jobs of p (defaults applied), in a
// fixed order, leaving out those without targets.
func (p Params) components() []scrapeJob {
	var jobs []scrapeJob
	for _, j := range []scrapeJob{
		{"autoscaler", p.AutoscalerTargets},
		{"discover", p.DiscoverTargets},
		{"cloud", p.CloudTargets},
	} {
		if len(j.Targets) > 0 {
			jobs = append(jobs, j)
		}
	}
	return jobs
}
