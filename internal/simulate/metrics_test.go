package simulate

import (
	"math"
	"strings"
	"testing"
	"time"
)

func series(points ...any) Series {
	var s Series
	for i := 0; i < len(points); i += 2 {
		s.set(points[i].(time.Duration), points[i+1].(int))
	}
	return s
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

// TestMeasureClosedForm checks the metric formulas on step functions whose
// integrals are known.
func TestMeasureClosedForm(t *testing.T) {
	sec := time.Second
	tests := []struct {
		name           string
		demand, supply Series
		end            time.Duration
		want           Elasticity
	}{
		{
			// Demand steps 2 -> 4 at 100 s; the supply follows 30 s later.
			// Under-provisioned by 2 members for 30 of 300 s.
			name:   "step 2 to 4, 30 s catch-up",
			demand: series(0*sec, 2, 100*sec, 4), supply: series(0*sec, 2, 130*sec, 4), end: 300 * sec,
			want: Elasticity{ThetaU: 2.0 * 30 / 300, TauU: 100 * 30.0 / 300, Jitter: 0, Adaptations: 1},
		},
		{
			// The same step, overshooting to 6 for 60 s before settling.
			name:   "step with overshoot",
			demand: series(0*sec, 2, 100*sec, 4), supply: series(0*sec, 2, 130*sec, 6, 190*sec, 4), end: 300 * sec,
			want: Elasticity{ThetaU: 2.0 * 30 / 300, ThetaO: 2.0 * 60 / 300, TauU: 10, TauO: 20, Jitter: (2 - 1) / 5.0, Adaptations: 2},
		},
		{
			// Constant over-provisioning by 1 while the demand moves twice.
			name:   "inert supply",
			demand: series(0*sec, 1, 60*sec, 2, 120*sec, 1), supply: series(0*sec, 2), end: 180 * sec,
			want: Elasticity{ThetaO: 1.0 * 120 / 180, TauO: 100 * 120.0 / 180, Jitter: -2 / 3.0},
		},
		{
			name:   "perfect",
			demand: series(0*sec, 3, 50*sec, 5), supply: series(0*sec, 3, 50*sec, 5), end: 100 * sec,
			want: Elasticity{Adaptations: 1},
		},
		{
			// Changes at or after the end do not count.
			name:   "changes after the end",
			demand: series(0*sec, 3, 100*sec, 5), supply: series(0*sec, 3, 100*sec, 5), end: 100 * sec,
			want: Elasticity{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Measure(tt.demand, tt.supply, tt.end)
			if !near(got.ThetaU, tt.want.ThetaU) || !near(got.ThetaO, tt.want.ThetaO) || !near(got.TauU, tt.want.TauU) ||
				!near(got.TauO, tt.want.TauO) || !near(got.Jitter, tt.want.Jitter) || got.Adaptations != tt.want.Adaptations {
				t.Errorf("Measure = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSeries(t *testing.T) {
	var s Series
	s.set(0, 1)
	s.set(0, 2) // replaces
	s.set(5*time.Second, 2)
	s.set(10*time.Second, 4)
	s.set(10*time.Second, 2) // back to the previous value: the change vanishes
	s.set(20*time.Second, 3)
	if len(s.T) != 2 || s.V[0] != 2 || s.V[1] != 3 || s.T[1] != 20*time.Second {
		t.Fatalf("series = %+v, want 2 from 0, 3 from 20s", s)
	}
	if got := s.At(19 * time.Second); got != 2 {
		t.Errorf("At(19s) = %d, want 2", got)
	}
	if got := s.Integral(30 * time.Second); got != 2*20+3*10 {
		t.Errorf("Integral = %v, want 70", got)
	}
	if got := s.Integral(10 * time.Second); got != 20 {
		t.Errorf("Integral(10s) = %v, want 20", got)
	}
}

// TestWorkload checks the fluid model against hand-computed cases.
func TestWorkload(t *testing.T) {
	sec := time.Second
	// 2 members, 1 instance-second per request: 1 req/s is 50 %.
	w := workload{perReq: 1, slo: 0.8, timeout: 10}
	w.rate = 1
	w.advance(10*sec, 2)
	if !near(w.busy, 5) || w.violated != 0 || w.backlog != 0 {
		t.Fatalf("at 50%%: busy %v violated %v backlog %v, want 5, 0, 0", w.busy, w.violated, w.backlog)
	}
	// 3 req/s on 2 members: saturated, the queue grows by 1/s up to
	// timeout×members = 20, then drops 1 req/s.
	w.rate = 3
	w.advance(40*sec, 2)
	if !near(w.busy, 5+30) || !near(w.violated, 30) || !near(w.backlog, 20) || !near(w.dropped, 10) {
		t.Fatalf("saturated: busy %v violated %v backlog %v dropped %v, want 35, 30, 20, 10", w.busy, w.violated, w.backlog, w.dropped)
	}
	// Back to 1 req/s on 4 members: the queue drains at 3/s (6.67 s at
	// 100 %), then 25 %.
	w.rate = 1
	w.advance(50*sec, 4)
	if !near(w.backlog, 0) || !near(w.busy, 35+20.0/3+(10-20.0/3)*0.25) || !near(w.violated, 30+20.0/3) {
		t.Fatalf("draining: busy %v violated %v backlog %v", w.busy, w.violated, w.backlog)
	}
	// Scale-in to 1 member with a queue: the excess over its 10 s is dropped.
	w.backlog = 15
	w.rate = 0
	w.advance(51*sec, 1)
	if !near(w.dropped, 10+5) || !near(w.backlog, 9) {
		t.Fatalf("scale-in: dropped %v backlog %v, want 15, 9", w.dropped, w.backlog)
	}
	if !near(w.requests, 10+90+10) {
		t.Errorf("requests %v, want 110", w.requests)
	}
}

func TestSummarize(t *testing.T) {
	r1 := Result{Runs: []Run{{Setup: "a"}, {Setup: OracleName}}, Metrics: []Elasticity{{ThetaU: 1, Dropped: 2, InstanceHours: 3}, {InstanceHours: 2}}}
	r2 := Result{Runs: []Run{{Setup: "a"}, {Setup: OracleName}}, Metrics: []Elasticity{{ThetaU: 3, Dropped: 0, InstanceHours: 5}, {InstanceHours: 2}}}
	got := Summarize([]Result{r1, r2})
	if len(got) != 2 || got[0].Policy != "a" || got[0].Traces != 2 || got[0].ThetaU != 2 || got[0].Dropped != 1 || got[0].Cost != 2 || got[1].Cost != 1 {
		t.Errorf("Summarize = %+v, want a: θU 2, dropped 1, cost 8/4 = 2; oracle cost 1", got)
	}
	var b strings.Builder
	if err := WriteSummary(&b, []Result{r1, r2}, true); err != nil || !strings.Contains(b.String(), "| a | 2.00 |") {
		t.Errorf("WriteSummary = %v:\n%s", err, b.String())
	}
}
