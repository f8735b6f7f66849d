package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"tidepool/internal/monitoring"
	"tidepool/internal/outpath"
)

// runMonitoring dispatches `tidepool monitoring render`.
func runMonitoring(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, "usage: tidepool monitoring render --profile seed|fast --out DIR [flags]")
		fmt.Fprintln(stderr, "\nRenders the Prometheus, Alertmanager and Grafana configuration; 'tidepool monitoring render -h' lists the flags.")
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "render":
		return runMonitoringRender(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "tidepool monitoring: unknown subcommand %q (want render)\n", args[0])
		return 2
	}
}

// listFlag is a comma-separated list of strings; repeating the flag appends.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func runMonitoringRender(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tidepool monitoring render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		p       monitoring.Params
		profile = fs.String("profile", "seed", "timing profile: seed (faithful: 60s tick, 1m windows) or fast (seconds, for demos and tests)")
		out     = fs.String("out", "", "output directory (required); created if missing, only tidepool's files are replaced")
	)
	fs.StringVar(&p.FileSDPath, "file-sd", monitoring.DefaultFileSDPath, "file_sd JSON written by tidepool discover (node and app jobs)")
	fs.IntVar(&p.NodePort, "node-port", monitoring.DefaultNodePort, "node-exporter port on pool members")
	fs.IntVar(&p.AppPort, "app-port", monitoring.DefaultAppPort, "app port on pool members")
	fs.StringVar(&p.AppMetricsPath, "app-metrics-path", monitoring.DefaultAppMetricsPath, "app metrics path")
	fs.StringVar(&p.AutoscalerURL, "autoscaler-url", monitoring.DefaultAutoscalerURL, "autoscaler base URL; webhooks go to /up and /down")
	fs.StringVar(&p.AutoscalerTokenFile, "autoscaler-token-file", monitoring.DefaultAutoscalerTokenFile, "file with the autoscaler's bearer token (its --auth-token), sent by Alertmanager; Grafana sends $"+monitoring.GrafanaTokenEnv+" from its environment")
	fs.Var((*listFlag)(&p.AutoscalerTargets), "autoscaler-metrics", "autoscaler metrics `targets` host:port, comma-separated (default: host:port of --autoscaler-url)")
	fs.Var((*listFlag)(&p.DiscoverTargets), "discover-metrics", "tidepool discover metrics `targets` host:port, comma-separated (default: none, no job)")
	fs.Var((*listFlag)(&p.CloudTargets), "cloud-metrics", "tidepool cloud metrics `targets` host:port, comma-separated (default: none, no job)")
	fs.StringVar(&p.AlertmanagerAddr, "alertmanager", monitoring.DefaultAlertmanagerAddr, "Alertmanager host:port Prometheus sends alerts to")
	fs.StringVar(&p.PrometheusURL, "prometheus-url", monitoring.DefaultPrometheusURL, "Prometheus URL for the Grafana datasource")
	fs.StringVar(&p.GrafanaDashboardDir, "grafana-dashboards-dir", monitoring.DefaultGrafanaDashboardDir, "directory Grafana loads the dashboard JSON from")
	fs.Float64Var(&p.ScaleUpAbove, "scale-up-above", monitoring.DefaultScaleUpAbove, "pool average CPU ratio above which to scale up")
	fs.Float64Var(&p.ScaleDownBelow, "scale-down-below", monitoring.DefaultScaleDownBelow, "pool average CPU ratio below which to scale down")

	env := map[string][]string{
		"profile":               {"TIDEPOOL_MONITORING_PROFILE"},
		"out":                   {"TIDEPOOL_MONITORING_OUT"},
		"file-sd":               {"TIDEPOOL_FILE_SD"},
		"node-port":             {"TIDEPOOL_NODE_PORT"},
		"app-port":              {"TIDEPOOL_APP_PORT"},
		"autoscaler-url":        {"TIDEPOOL_AUTOSCALER_URL"},
		"autoscaler-token-file": {"TIDEPOOL_AUTOSCALER_TOKEN_FILE"},
		"alertmanager":          {"TIDEPOOL_ALERTMANAGER"},
		"prometheus-url":        {"TIDEPOOL_PROMETHEUS_URL"},
		"autoscaler-metrics":    {"TIDEPOOL_AUTOSCALER_METRICS"},
		"discover-metrics":      {"TIDEPOOL_DISCOVER_METRICS"},
		"cloud-metrics":         {"TIDEPOOL_CLOUD_METRICS"},
	}
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	if *out == "" {
		return usageError(fs, errors.New("--out is required"))
	}
	// --out is where the files are written on this machine: relative is
	// fine. The paths inside them (--file-sd, --grafana-dashboards-dir) are
	// read on the monitoring host and must be absolute (Params.Validate).
	if _, err := outpath.Dir(*out); err != nil {
		return usageError(fs, fmt.Errorf("--out: %w", err))
	}
	prof, err := monitoring.ProfileByName(*profile)
	if err != nil {
		return usageError(fs, err)
	}
	if err := p.Validate(); err != nil {
		return usageError(fs, err)
	}
	if err := monitoring.Render(prof, p, *out); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	for _, name := range monitoring.FileNames() {
		fmt.Fprintln(stdout, strings.TrimSuffix(*out, "/")+"/"+name)
	}
	return 0
}
