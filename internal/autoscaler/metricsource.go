package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/monitoring"
	"tidepool/internal/promquery"
)

// MetricSource reads the pool's load for metric-driven policies
// (policy.TargetTracking, policy.Predictive). PoolMetrics returns the zero
// policy.Metrics (unknown) with a nil error when there is no data yet, and
// an error when the source cannot be read, with the part it could read (the
// zero policy.Metrics if none); it blocks at most until ctx ends.
type MetricSource interface {
	PoolMetrics(ctx context.Context) (policy.Metrics, error)
}

// Queries PrometheusMetrics runs by default: the recording rules of
// internal/monitoring.
const (
	DefaultCPUQuery     = monitoring.RulePoolCPU
	DefaultMembersQuery = "count(" + monitoring.RuleInstanceCPU + ")"
	DefaultQueryTimeout = 5 * time.Second
)

// PrometheusMetrics reads the pool's average CPU utilisation and the number
// of members it covers from Prometheus' HTTP API (instant queries).
type PrometheusMetrics struct {
	// URL is Prometheus' base URL, e.g. http://127.0.0.1:9090 (required).
	URL string
	// CPUQuery returns one sample, the average utilisation 0..1; ""
	// means DefaultCPUQuery.
	CPUQuery string
	// MembersQuery returns one sample, the number of members averaged; ""
	// means DefaultMembersQuery. A failure of this query only loses the
	// count (Metrics.Members 0: all members).
	MembersQuery string
	// Timeout bounds the queries; 0 means DefaultQueryTimeout.
	Timeout time.Duration
	// Load, if its History is set, also reads the pool's arrival rate and
	// cost per request into Metrics.Load (policy.Predictive needs them);
	// the zero value reads neither.
	Load LoadQuery
}

var _ MetricSource = PrometheusMetrics{}

// PoolMetrics implements MetricSource. An empty result or a NaN value (no
// member scraped yet) is unknown, not an error.
func (p PrometheusMetrics) PoolMetrics(ctx context.Context) (policy.Metrics, error) {
	if p.URL == "" {
		return policy.Metrics{}, errors.New("prometheus metrics: no URL")
	}
	cpuQ, membersQ, timeout := p.CPUQuery, p.MembersQuery, p.Timeout
	if cpuQ == "" {
		cpuQ = DefaultCPUQuery
	}
	if membersQ == "" {
		membersQ = DefaultMembersQuery
	}
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := p.poolCPU(ctx, cpuQ, membersQ)
	if err != nil || p.Load.History <= 0 {
		return m, err
	}
	if m.Load, err = p.Load.read(ctx, p.URL); err != nil {
		return m, fmt.Errorf("read pool load: %w", err)
	}
	return m, nil
}

// poolCPU reads the CPU part of PoolMetrics.
func (p PrometheusMetrics) poolCPU(ctx context.Context, cpuQ, membersQ string) (policy.Metrics, error) {
	v, err := promquery.Instant(ctx, p.URL, cpuQ)
	if err != nil {
		return policy.Metrics{}, fmt.Errorf("read pool cpu: %w", err)
	}
	switch {
	case len(v) == 0:
		return policy.Metrics{}, nil
	case len(v) > 1:
		return policy.Metrics{}, fmt.Errorf("read pool cpu: %q returned %d series, want 1", cpuQ, len(v))
	case math.IsNaN(v[0].Value):
		return policy.Metrics{}, nil
	case math.IsInf(v[0].Value, 0) || v[0].Value < 0:
		return policy.Metrics{}, fmt.Errorf("read pool cpu: %q returned %v", cpuQ, v[0].Value)
	}
	m := policy.Metrics{CPU: v[0].Value, Valid: true}
	if n, err := promquery.Instant(ctx, p.URL, membersQ); err == nil && len(n) == 1 && n[0].Value >= 1 && n[0].Value < 1e6 {
		m.Members = int(n[0].Value)
	}
	return m, nil
}
