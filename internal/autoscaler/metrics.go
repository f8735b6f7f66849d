package autoscaler

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"tidepool/internal/autoscaler/policy"
)

// Decision results, the "result" label of tidepool_autoscaler_decisions_total.
const (
	resultScaled  = "scaled"  // the pool size was changed
	resultNoop    = "noop"    // nothing to do (no signal, at min, at max)
	resultHeld    = "held"    // a change was held (pool busy, cooldown, warmup, no victim)
	resultDryRun  = "dry_run" // a change was decided but --dry-run is set
	resultError   = "error"   // observing or changing the pool failed
	resultAborted = "aborted" // shutdown interrupted the change
)

// Webhook results, the "result" label of tidepool_autoscaler_webhooks_total.
const (
	hookRecorded     = "recorded"
	hookIgnored      = "ignored"
	hookUnauthorized = "unauthorized"
	hookTooLarge     = "too_large"
	hookBusy         = "busy" // too many bodies being read at once (503)
	hookMalformed    = "malformed"
	hookBadMethod    = "bad_method"
)

// metrics are the autoscaler's Prometheus series, in a registry of their own
// so that several autoscalers (tests) do not collide.
type metrics struct {
	reg         *prometheus.Registry
	poolSize    prometheus.Gauge
	pending     *prometheus.GaugeVec
	decisions   *prometheus.CounterVec
	webhooks    *prometheus.CounterVec
	cloudErrors *prometheus.CounterVec
	lastScale   prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		poolSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tidepool_autoscaler_pool_size", Help: "Instance pool size last observed.",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tidepool_autoscaler_pending_signals", Help: "Scaling signals received since the last tick, by direction.",
		}, []string{"direction"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidepool_autoscaler_decisions_total",
			Help: "Scaling decisions by requested direction (up, down, none) and result (scaled, noop, held, dry_run, error, aborted).",
		}, []string{"direction", "result"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidepool_autoscaler_webhooks_total",
			Help: "Webhook requests by endpoint and result (recorded, ignored, unauthorized, too_large, malformed, bad_method).",
		}, []string{"endpoint", "result"}),
		cloudErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidepool_autoscaler_cloud_errors_total", Help: "Failed Exoscale API calls by operation.",
		}, []string{"operation"}),
		lastScale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tidepool_autoscaler_last_scale_timestamp_seconds", Help: "Unix time of the last pool size change; 0 if never.",
		}),
	}
	m.reg.MustRegister(m.poolSize, m.pending, m.decisions, m.webhooks, m.cloudErrors, m.lastScale,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, dir := range []string{"up", "down", "none"} {
		for _, res := range []string{resultScaled, resultNoop, resultHeld, resultDryRun, resultError} {
			m.decisions.WithLabelValues(dir, res)
		}
	}
	for _, op := range []string{opGetPool, opListInstances, opGetInstance, opScale, opEvict, opGetOperation, opGetNLBService} {
		m.cloudErrors.WithLabelValues(op)
	}
	m.setPending(policy.Pending{})
	return m
}

func (m *metrics) setPending(p policy.Pending) {
	m.pending.WithLabelValues("up").Set(float64(p.Up))
	m.pending.WithLabelValues("down").Set(float64(p.Down))
}

// directionLabel maps a requested direction to the metric label value.
func directionLabel(d policy.Direction) string {
	if d == policy.None {
		return "none"
	}
	return string(d)
}
