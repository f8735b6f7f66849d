package autoscaler

import (
	"context"
	"fmt"
	"math"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/monitoring"
	"tidepool/internal/promquery"
)

// Defaults of LoadQuery's zero fields.
const (
	// DefaultLoadStep is the seed profile's rule evaluation (and scrape)
	// interval.
	DefaultLoadStep = 15 * time.Second
	// MaxLoadPoints is the most arrival rates one read returns; Prometheus
	// refuses range queries of more than 11,000 points.
	MaxLoadPoints = 10000
)

// LoadQuery reads the pool's load for policy.Predictive from Prometheus:
// the arrival rate recorded by monitoring.RuleArrivalRate over the last
// History (a range query, so the history survives a restart of the
// autoscaler), and the cost per request recorded by
// monitoring.RuleCostPerRequest (an instant query of its average over
// CostWindow, or of its last value in the past hour when nothing was
// answered lately).
type LoadQuery struct {
	// History is how far back the arrival rates are read: the seasonal
	// forecast needs at least two periods of them; 0 reads nothing.
	History time.Duration
	// Step is the interval of the rates: the recording rules' evaluation
	// interval, which is also the scrape interval in tidepool's profiles
	// (the span each rate averages over); 0 means DefaultLoadStep. A
	// History longer than MaxLoadPoints steps is read at a longer step.
	Step time.Duration
	// CostWindow is the span the cost per request is averaged over; 0
	// means the rate over the last sample only (an instant query).
	CostWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// read returns the pool's load: rates on a regular grid ending now, NaN
// where Prometheus has no value. No data at all is the zero policy.Load
// (unknown), not an error.
func (q LoadQuery) read(ctx context.Context, url string) (policy.Load, error) {
	base := q.Step
	if base <= 0 {
		base = DefaultLoadStep
	}
	now := time.Now
	if q.Now != nil {
		now = q.Now
	}
	step := max(base, q.History/(MaxLoadPoints-1))
	step = step.Truncate(time.Millisecond)
	end := now().Truncate(time.Millisecond)
	n := int(q.History/step) + 1
	start := end.Add(-time.Duration(n-1) * step)
	series, err := promquery.Range(ctx, url, monitoring.RuleArrivalRate, start, end, step)
	if err != nil {
		return policy.Load{}, err
	}
	switch {
	case len(series) == 0:
		return policy.Load{}, nil
	case len(series) > 1:
		return policy.Load{}, fmt.Errorf("%s returned %d series, want 1", monitoring.RuleArrivalRate, len(series))
	}
	l := policy.Load{Rates: make([]float64, n), End: end, Step: step, Window: base}
	for i := range l.Rates {
		l.Rates[i] = math.NaN()
	}
	for _, p := range series[0].Points {
		i := int(math.Round(float64(p.T.Sub(start)) / float64(step)))
		if i >= 0 && i < n && !math.IsInf(p.V, 0) && p.V >= 0 {
			l.Rates[i] = p.V
		}
	}
	costQ := monitoring.RuleCostPerRequest
	if q.CostWindow > 0 {
		costQ = fmt.Sprintf("avg_over_time(%s[%dms])", costQ, q.CostWindow.Milliseconds())
	}
	// Nothing answered lately (no value): the last cost of the past hour.
	costQ = fmt.Sprintf("%s or last_over_time(%s[1h])", costQ, monitoring.RuleCostPerRequest)
	v, err := promquery.Instant(ctx, url, costQ)
	if err != nil {
		return l, err
	}
	if len(v) == 1 && v[0].Value > 0 && !math.IsInf(v[0].Value, 0) {
		l.CostPerRequest = v[0].Value
	}
	return l, nil
}
