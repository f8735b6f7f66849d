package simulate

import (
	"math"
	"time"

	"tidepool/internal/autoscaler/policy"
)

// arrivalSignal models the arrival-rate pipeline of Pipeline.ArrivalWindow,
// as Prometheus computes tidepool's pool arrival rate: every member's
// arrivals counter (tidepool_app_arrivals_total, counted when a request
// reaches the member) is scraped with the CPU counters; at each evaluation
// a member's rate is its counter's increase between its last two samples
// within the arrival window (irate), and the pool's is the sum over the
// members with a rate (none: unknown). The policy gets the rates of the
// last Pipeline.History, one per evaluation.
type arrivalSignal struct {
	on    bool
	ring  []float64 // workload.arrived at scrape k is ring[k%len(ring)]
	rates []float64 // pool arrival rate at every evaluation, NaN: unknown
	last  time.Duration
}

func (a *arrivalSignal) init(p Pipeline) {
	if p.ArrivalWindow <= 0 {
		return
	}
	a.on = true
	a.ring = make([]float64, int(max(p.Window, p.ArrivalWindow)/p.Scrape)+3)
}

func (a *arrivalSignal) scrape(k int, arrived float64) {
	if a.on {
		a.ring[k%len(a.ring)] = arrived
	}
}

// evaluateArrivals records the pool arrival rate at evaluation time t.
func (s *sim) evaluateArrivals(t time.Duration) {
	a := &s.arrivals
	if !a.on {
		return
	}
	total, n := 0.0, 0
	for _, ms := range [][]member{s.departed, s.members} {
		for i := range ms {
			if r, ok := s.memberArrivals(&ms[i], t); ok {
				total += r
				n++
			}
		}
	}
	rate := math.NaN()
	if n > 0 {
		rate = total
	}
	a.rates = append(a.rates, rate)
	a.last = t
}

// memberArrivals is m's arrival rate over its last two samples within the
// arrival window ending at t; ok is false with fewer than two.
func (s *sim) memberArrivals(m *member, t time.Duration) (float64, bool) {
	p := s.setup.Metrics
	if m.ready == never || m.ready > t {
		return 0, false
	}
	from := max(t-p.ArrivalWindow, m.ready+p.Discovery)
	to := t
	if m.gone != never {
		to = min(to, m.gone-1)
	}
	if to < from {
		return 0, false
	}
	k1 := ceilDiv(from-p.Offset, p.Scrape)
	k2 := min(floorDiv(to-p.Offset, p.Scrape), s.scrapeK-1)
	k1 = max(k1, k2-1, 0, s.scrapeK-len(s.arrivals.ring))
	if k2 <= k1 {
		return 0, false
	}
	g1, g2 := p.Offset+time.Duration(k1)*p.Scrape, p.Offset+time.Duration(k2)*p.Scrape
	c := func(k int, g time.Duration) float64 {
		if g >= m.leave {
			return m.arrLeave - m.arrReady
		}
		return s.arrivals.ring[k%len(s.arrivals.ring)] - m.arrReady
	}
	return (c(k2, g2) - c(k1, g1)) / (g2 - g1).Seconds(), true
}

// load is what the policy sees of the arrival signal at a tick: the rates
// of the last Pipeline.History (all of them when 0), and the cost per
// request, known (exactly 1/capacity in the fluid model) whenever the pool
// CPU is known and not zero, as the ratio of CPU to answered requests is.
func (s *sim) load() policy.Load {
	a := &s.arrivals
	if !a.on || len(a.rates) == 0 {
		return policy.Load{}
	}
	p := s.setup.Metrics
	rates := a.rates
	if p.History > 0 {
		rates = rates[max(0, len(rates)-int(p.History/p.Eval)-1):]
	}
	l := policy.Load{Rates: rates, End: epoch.Add(a.last), Step: p.Eval, Window: p.Scrape}
	if s.metric.Valid && s.metric.CPU > 0 {
		l.CostPerRequest = s.w.perReq
	}
	return l
}
