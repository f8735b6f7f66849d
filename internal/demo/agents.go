package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"tidepool/internal/autoscaler"
	"tidepool/internal/cloud"
	"tidepool/internal/discover"
	"tidepool/internal/monitoring"
)

// runDiscover is the discover phase: the agent keeping OutDir/file_sd/
// targets.json equal to the pool's members, with its HTTP endpoints
// (/targets, /metrics) on a 127.0.0.1 port for Prometheus to scrape.
func (s *session) runDiscover(ctx context.Context, ready func()) error {
	s.fileSD = filepath.Join(s.cfg.OutDir, "file_sd", "targets.json")
	agent, err := discover.New(discover.Config{
		Client: s.client, PoolID: string(s.poolID), Zone: cloud.DefaultZone, Port: int(s.addrs.metricsPort),
		Output: s.fileSD, Interval: discoverInterval(s.prof), Logger: s.log.With("component", "discover"),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: agent.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	s.discoverAddr = ln.Addr().String()
	ready()
	return ignoreCanceled(agent.Run(ctx))
}

// runAutoscaler is the autoscaler phase: the demo's policy on a 127.0.0.1
// port, reading the pool CPU (and for the predictive policy the arrival
// history, see loadQuery) from the monitoring phase's Prometheus (which
// starts after it: until then a metric-driven tick finds no data) and
// draining scale-in victims through the load balancer. Its webhooks need a
// random token, as in a deployment: Alertmanager reads it from
// OutDir/autoscaler-token, a file only this user can read.
func (s *session) runAutoscaler(ctx context.Context, ready func()) error {
	token := randomHex(24)
	tokenFile := filepath.Join(s.cfg.OutDir, "autoscaler-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.scaler, err = autoscaler.New(autoscaler.Config{
		Cloud:    s.client,
		PoolID:   string(s.poolID),
		Policy:   s.cfg.Policy,
		Metrics:  autoscaler.PrometheusMetrics{URL: "http://" + s.addrs.prom, Load: loadQuery(s.cfg.Policy, s.prof)},
		Listener: ln, Interval: AutoscalerTick(s.cfg.Policy, s.prof), AuthToken: token,
		NLBID: string(s.svc.NLBID), NLBServiceID: string(s.svc.ServiceID),
		DrainTimeout: 15 * time.Second, DrainGrace: time.Second,
		Logger: s.log.With("component", "autoscaler"),
	})
	if err != nil {
		ln.Close()
		return err
	}
	s.autoscalerAddr, s.autoscalerTokenFile = ln.Addr().String(), tokenFile
	ready()
	return ignoreCanceled(s.scaler.Run(ctx))
}

// discoverInterval refreshes targets a few times per autoscaler tick.
func discoverInterval(p monitoring.Profile) time.Duration {
	return min(max(p.AutoscalerTick/5, time.Second), 10*time.Second)
}

// ignoreCanceled treats the end of a component stopped by its context as
// success.
func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
