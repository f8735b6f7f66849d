package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"tidepool/internal/monitoring"
	"tidepool/internal/promquery"
	"tidepool/internal/promrun"
)

// runMonitoring is the monitoring phase: the configuration rendered into
// OutDir/monitoring for this run's addresses, then real Alertmanager and
// Prometheus with fresh data directories and their output in
// OutDir/monitoring.log; the live page links to them. A process that exits
// on its own stops the demo.
func (s *session) runMonitoring(ctx context.Context, ready func()) error {
	out := s.cfg.OutDir
	s.monDir = filepath.Join(out, "monitoring")
	if err := monitoring.Render(s.prof, monitoring.Params{
		FileSDPath:          s.fileSD,
		NodePort:            int(s.addrs.metricsPort),
		AppPort:             int(s.addrs.appPort),
		AutoscalerURL:       "http://" + s.autoscalerAddr,
		AutoscalerTokenFile: s.autoscalerTokenFile,
		DiscoverTargets:     []string{s.discoverAddr},
		AlertmanagerAddr:    s.addrs.alertmanager,
		PrometheusURL:       "http://" + s.addrs.prom,
		AutoscalerTargets:   []string{s.autoscalerAddr},
	}, s.monDir); err != nil {
		return fmt.Errorf("render configuration: %w", err)
	}
	procLog, err := os.Create(filepath.Join(out, "monitoring.log"))
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	defer procLog.Close()
	for _, d := range []string{"alertmanager-data", "prometheus-data"} {
		// Data of an earlier demo would mix into this run's report.
		if err := os.RemoveAll(filepath.Join(out, d)); err != nil {
			return fmt.Errorf("remove old %s: %w", d, err)
		}
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	am, err := promrun.StartAlertmanager(setupCtx, promrun.Config{
		ConfigFile: filepath.Join(s.monDir, monitoring.FileAlertmanager),
		DataDir:    filepath.Join(out, "alertmanager-data"),
		Listen:     s.addrs.alertmanager, Output: procLog,
	})
	if err != nil {
		return fmt.Errorf("alertmanager: %w", err)
	}
	defer am.Stop()
	prom, err := promrun.StartPrometheus(setupCtx, promrun.Config{
		ConfigFile: filepath.Join(s.monDir, monitoring.FilePrometheus),
		DataDir:    filepath.Join(out, "prometheus-data"),
		Listen:     s.addrs.prom, Output: procLog,
	})
	if err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	defer prom.Stop()
	s.promURL = prom.URL
	s.say("prometheus %s, alertmanager http://%s, autoscaler http://%s", prom.URL, s.addrs.alertmanager, s.autoscalerAddr)
	s.linkLive(prom.URL)
	ready()
	select {
	case <-ctx.Done():
		return nil
	case <-prom.Done():
		return errors.New("prometheus exited (see monitoring.log)")
	case <-am.Done():
		return errors.New("alertmanager exited (see monitoring.log)")
	}
}

// checkQueries runs every Grafana dashboard and alert rule expression of the
// rendered configuration against the live Prometheus.
func checkQueries(ctx context.Context, monDir, promURL string) []QueryCheck {
	qs, err := monitoring.Queries(monDir)
	if err != nil {
		return []QueryCheck{{Where: "rendered Grafana files", Err: err.Error()}}
	}
	out := make([]QueryCheck, 0, len(qs))
	for _, q := range qs {
		c := QueryCheck{Where: q.File + ": " + q.Where, Expr: q.Expr}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := promquery.Instant(qctx, promURL, q.Expr)
		cancel()
		if err != nil {
			c.Err = err.Error()
		}
		c.Series = len(v)
		out = append(out, c)
	}
	return out
}
