package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPredictiveDecide(t *testing.T) {
	base := Predictive{Limits: Limits{Min: 1, Max: 40}, Target: 0.75, Burst: 2, Lead: 75 * time.Second,
		ScaleDownStabilization: 5 * time.Minute, Seasons: 2}
	flat := func(v float64) []float64 { return series(40, func(int) float64 { return v }) }
	withLast := func(rs []float64, last ...float64) []float64 { return append(rs[len(last):len(rs):len(rs)], last...) }
	ago := func(d time.Duration, size int) Recommendation { return Recommendation{At: t0.Add(-d), Size: size} }
	// A member created 75 s before a scale-out that completed 20 s ago.
	grown := pool(11)
	grown.Members[0].CreatedAt = t0.Add(-95 * time.Second)
	// 4 periods of a 10-minute square wave (5 minutes at 125 req/s, then 25),
	// ending 30 s before the next high phase.
	periodic := series(160, func(i int) float64 { return square(40, 20, 125, 25)(i + 39) })

	tests := []struct {
		name       string
		p          *Predictive // nil means base
		obs        Observation
		wantTo     int
		wantReason Reason
		wantReq    Direction
		wantRec    int // the recommendation recorded for now
		noRec      bool
		wantMsg    string
	}{
		{name: "proportional scale-out in one step", obs: Observation{Pool: pool(3), Metrics: Metrics{Load: loadOf(flat(100)...)}},
			wantTo: 11, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 11,
			wantMsg: "from 3 to 11 because arrivals 100.0 req/s + 0.0 burst margin at 80.0 ms of CPU each need 11 members at 75%"},
		{name: "on target", obs: Observation{Pool: pool(11), Metrics: Metrics{Load: loadOf(flat(100)...)}},
			wantTo: 11, wantReason: ReasonWithinTolerance, wantRec: 11},
		{name: "saturated CPU does not hide the load", obs: Observation{Pool: pool(3), Metrics: Metrics{CPU: 1, Valid: true, Load: loadOf(flat(300)...)}},
			wantTo: 32, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 32},
		{name: "a jump in the latest window waits for a full one", obs: Observation{Pool: pool(4), Metrics: Metrics{Load: loadOf(withLast(flat(25), 85)...)}},
			wantTo: 4, wantReason: ReasonStabilizing, wantReq: Down, wantRec: 3, wantMsg: "jumped from 25.0 to 85.0 req/s"},
		{name: "a jump seen twice is acted on", obs: Observation{Pool: pool(3), Metrics: Metrics{Load: loadOf(withLast(flat(25), 85, 145)...)}},
			wantTo: 16, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 16},
		{name: "a ramp is extrapolated two leads ahead", obs: Observation{Pool: pool(3), Metrics: Metrics{Load: loadOf(series(40, func(i int) float64 { return 20 + float64(i) })...)}},
			wantTo: 8, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 8, wantMsg: "rising 4.00 req/s per minute, 69.5 req/s in 2m38s"},
		{name: "poisson noise adds a burst margin", obs: Observation{Pool: pool(3), Metrics: Metrics{Load: loadOf(poissonRates(40, 7, func(int) float64 { return 100 })...)}},
			wantTo: 14, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 14, wantMsg: "+ 20.7 burst margin"},
		{name: "burst margin off", p: &Predictive{Limits: Limits{Min: 1, Max: 40}, Target: 0.75, Lead: 75 * time.Second},
			obs:    Observation{Pool: pool(3), Metrics: Metrics{Load: loadOf(poissonRates(40, 7, func(int) float64 { return 100 })...)}},
			wantTo: 11, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 11},
		{name: "scale-in stabilised", obs: Observation{Pool: pool(11), Metrics: Metrics{Load: loadOf(flat(25)...)}, Recommendations: []Recommendation{ago(4*time.Minute, 11)}},
			wantTo: 11, wantReason: ReasonStabilizing, wantReq: Down, wantRec: 3, wantMsg: "held at the largest recommendation of the last 5m0s"},
		{name: "scale-in after the window", obs: Observation{Pool: pool(11), Metrics: Metrics{Load: loadOf(flat(25)...)}, Recommendations: []Recommendation{ago(6*time.Minute, 11)}},
			wantTo: 3, wantReason: ReasonBelowTarget, wantReq: Down, wantRec: 3, wantMsg: "evicting"},
		{name: "new members not counted yet: the rate before them is a floor",
			obs:    Observation{Pool: grown, LastScale: t0.Add(-20 * time.Second), Metrics: Metrics{Load: loadOf(withLast(flat(100), 70)...)}},
			wantTo: 11, wantReason: ReasonWithinTolerance, wantRec: 11, wantMsg: "new members are not counted yet (70.0 req/s), 100.0 req/s before they served"},
		{name: "seasonal forecast adds capacity before the periodic rise", obs: Observation{Pool: pool(3), Metrics: Metrics{Load: loadOf(periodic...)}},
			wantTo: 14, wantReason: ReasonForecast, wantReq: Up, wantRec: 3, wantMsg: "the load repeats every 10m0s"},
		{name: "forecast off", p: &Predictive{Limits: Limits{Min: 1, Max: 40}, Target: 0.75, Lead: 75 * time.Second},
			obs: Observation{Pool: pool(3), Metrics: Metrics{Load: loadOf(periodic...)}}, wantTo: 3, wantReason: ReasonWithinTolerance, wantRec: 3},
		{name: "forecast holds the pool before the rise", obs: Observation{Pool: pool(14), Metrics: Metrics{Load: loadOf(periodic...)}},
			wantTo: 14, wantReason: ReasonForecast, wantReq: Down, wantRec: 3, wantMsg: ", held"},
		{name: "no arrival rate: CPU target tracking", obs: Observation{Pool: pool(4), Metrics: Metrics{CPU: 0.9, Valid: true}},
			wantTo: 5, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 5, wantMsg: "no arrival rate: CPU 90% over 4 of 4 members vs target 75%"},
		{name: "no cost per request: CPU target tracking", obs: Observation{Pool: pool(4), Metrics: Metrics{CPU: 0.9, Valid: true, Load: Load{Rates: flat(100), End: t0, Step: step}}},
			wantTo: 5, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 5, wantMsg: "no arrival rate"},
		{name: "nothing arrives: no cost per request needed", obs: Observation{Pool: pool(4), Metrics: Metrics{CPU: 0.01, Valid: true, Load: Load{Rates: flat(0), End: t0, Step: step}}},
			wantTo: 1, wantReason: ReasonBelowTarget, wantReq: Down, wantRec: 0, wantMsg: "no request arrives (capped at the minimum size 1)"},
		{name: "stale rates: CPU target tracking", obs: Observation{Pool: pool(4), Metrics: Metrics{CPU: 0.9, Valid: true, Load: func() Load {
			l := loadOf(flat(100)...)
			l.End = t0.Add(-2 * time.Minute)
			return l
		}()}}, wantTo: 5, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 5, wantMsg: "no arrival rate"},
		{name: "nothing known holds", obs: Observation{Pool: pool(4)}, wantTo: 4, wantReason: ReasonNoMetrics, noRec: true,
			wantMsg: "from 4 to 4 because neither the arrival rate nor the CPU utilisation is known"},
		{name: "limits cap", obs: Observation{Pool: pool(30), Metrics: Metrics{Load: loadOf(flat(1000)...)}},
			wantTo: 40, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 107, wantMsg: "(capped at the maximum size 40)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			if tt.p != nil {
				p = *tt.p
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := p.Decide(tt.obs, t0)
			if got.To != tt.wantTo || got.Reason != tt.wantReason || got.Requested != tt.wantReq {
				t.Errorf("Decide = from %d to %d %s requested %q, want to %d %s requested %q (message %q)",
					got.From, got.To, got.Reason, got.Requested, tt.wantTo, tt.wantReason, tt.wantReq, got.Message)
			}
			if !strings.Contains(got.Message, tt.wantMsg) {
				t.Errorf("Message = %q, want it to contain %q", got.Message, tt.wantMsg)
			}
			if (got.To > got.From) != (got.Action == ActionScaleUp) || (got.To < got.From) != (got.Action == ActionScaleDown) {
				t.Errorf("Action %s does not match from %d to %d", got.Action, got.From, got.To)
			}
			var last *Recommendation
			if n := len(got.Recommendations); n > 0 && got.Recommendations[n-1].At.Equal(t0) {
				last = &got.Recommendations[n-1]
			}
			switch {
			case tt.noRec && last != nil:
				t.Errorf("recorded %+v, want nothing", *last)
			case !tt.noRec && (last == nil || last.Size != tt.wantRec):
				t.Errorf("recommendations %+v, want %d recorded now", got.Recommendations, tt.wantRec)
			}
		})
	}
}

func TestPredictiveValidate(t *testing.T) {
	tests := []struct {
		p       Predictive
		wantErr bool
	}{
		{Predictive{}, false},
		{Predictive{Target: 1, Burst: 3, Lead: time.Minute, ScaleDownStabilization: time.Minute, Seasons: 3, MinPeriod: time.Minute, MaxPeriod: time.Hour}, false},
		{Predictive{Target: 1.5}, true},
		{Predictive{Target: math.NaN()}, true},
		{Predictive{Burst: -1}, true},
		{Predictive{Lead: -time.Second}, true},
		{Predictive{Seasons: -1}, true},
		{Predictive{MinPeriod: time.Hour, MaxPeriod: time.Minute}, true},
		{Predictive{Settle: -time.Second}, true},
		{Predictive{Limits: Limits{Min: 3, Max: 2}}, true},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tt.p, err, tt.wantErr)
		}
	}
}
