package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

func cpu(v float64, members int) Metrics { return Metrics{CPU: v, Members: members, Valid: true} }

func TestTargetTrackingDecide(t *testing.T) {
	base := TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, Tolerance: 0.1}
	ago := func(d time.Duration, size int) Recommendation { return Recommendation{At: t0.Add(-d), Size: size} }
	booting := pool(4)
	booting.Members[0].CreatedAt = t0.Add(-10 * time.Second)

	tests := []struct {
		name        string
		p           *TargetTracking // nil means base
		size        int
		m           Metrics
		hist        []Recommendation
		wantTo      int
		wantReason  Reason
		wantReq     Direction
		wantRec     int // the recommendation recorded for now; 0 means none
		wantMsg     string
		wantHistLen int
	}{
		{name: "on target", size: 4, m: cpu(0.5, 0), wantTo: 4, wantReason: ReasonWithinTolerance, wantRec: 4,
			wantMsg: "from 4 to 4 because CPU 50% over 4 of 4 members vs target 50% is within the 10% tolerance"},
		{name: "edge of tolerance", size: 4, m: cpu(0.55, 0), wantTo: 4, wantReason: ReasonWithinTolerance, wantRec: 4},
		{name: "above target", size: 4, m: cpu(0.9, 0), wantTo: 8, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 8,
			wantMsg: "from 4 to 8 because CPU 90% over 4 of 4 members vs target 50%: 7.20 members' worth of load recommends 8"},
		{name: "below target", size: 4, m: cpu(0.2, 0), wantTo: 2, wantReason: ReasonBelowTarget, wantReq: Down, wantRec: 2,
			wantMsg: "evicting m1, m2"},
		{name: "saturated doubles at 50%", size: 3, m: cpu(1, 0), wantTo: 6, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 6},
		{name: "exact product is not rounded up", size: 2, m: cpu(0.75, 0), wantTo: 3, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 3},
		{name: "idle goes to min", size: 5, m: cpu(0, 0), wantTo: 1, wantReason: ReasonBelowTarget, wantReq: Down, wantRec: 0 + 1 - 1,
			wantMsg: "recommends 0 (capped at the minimum size 1)"},
		{name: "unknown CPU holds", size: 4, m: Metrics{}, wantTo: 4, wantReason: ReasonNoMetrics,
			wantMsg: "from 4 to 4 because the pool's CPU utilisation is unknown"},
		{name: "NaN CPU holds", size: 4, m: Metrics{CPU: math.NaN(), Valid: true}, wantTo: 4, wantReason: ReasonNoMetrics},
		{name: "unknown CPU below min still grows", size: 1, p: &TargetTracking{Limits: Limits{Min: 2, Max: 5}}, m: Metrics{},
			wantTo: 2, wantReason: ReasonBelowMin},
		{name: "booting members count idle when growing", size: 4, m: cpu(0.8, 3), wantTo: 5, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 5,
			wantMsg: "CPU 80% over 3 of 4 members"},
		{name: "booting members cancel a small rise", size: 4, m: cpu(0.6, 3), wantTo: 4, wantReason: ReasonWithinTolerance, wantRec: 4,
			wantMsg: "counting the 1 members without data"},
		{name: "booting members count on target when shrinking", size: 4, m: cpu(0.1, 2), wantTo: 3, wantReason: ReasonBelowTarget, wantReq: Down, wantRec: 3},
		{name: "scale-down stabilisation keeps the window's largest", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, ScaleDownStabilization: 5 * time.Minute},
			size: 6, m: cpu(0.25, 0), hist: []Recommendation{ago(4*time.Minute, 5), ago(time.Minute, 4), ago(6*time.Minute, 9)},
			wantTo: 5, wantReason: ReasonBelowTarget, wantReq: Down, wantRec: 3, wantHistLen: 3},
		{name: "stabilisation holds a shrink entirely", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, ScaleDownStabilization: 5 * time.Minute},
			size: 6, m: cpu(0.25, 0), hist: []Recommendation{ago(time.Minute, 7)},
			wantTo: 6, wantReason: ReasonStabilizing, wantReq: Down, wantRec: 3, wantHistLen: 2,
			wantMsg: "held at the largest recommendation of the last 5m0s"},
		{name: "stabilisation window excludes its start", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, ScaleDownStabilization: 5 * time.Minute},
			size: 6, m: cpu(0.25, 0), hist: []Recommendation{ago(5*time.Minute, 7)},
			wantTo: 3, wantReason: ReasonBelowTarget, wantReq: Down, wantRec: 3, wantHistLen: 1},
		{name: "scale-down stabilisation does not slow growth", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, ScaleDownStabilization: 5 * time.Minute},
			size: 4, m: cpu(1, 0), hist: []Recommendation{ago(time.Minute, 2)},
			wantTo: 8, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 8, wantHistLen: 2},
		{name: "scale-up stabilisation needs every datapoint high", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, ScaleUpStabilization: 3 * time.Minute},
			size: 4, m: cpu(1, 0), hist: []Recommendation{ago(2*time.Minute, 4), ago(time.Minute, 6)},
			wantTo: 4, wantReason: ReasonStabilizing, wantReq: Up, wantRec: 8, wantHistLen: 3,
			wantMsg: "held at the smallest recommendation of the last 3m0s"},
		{name: "scale-up stabilisation grows to the smallest", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, ScaleUpStabilization: 3 * time.Minute},
			size: 4, m: cpu(1, 0), hist: []Recommendation{ago(2*time.Minute, 5), ago(time.Minute, 6)},
			wantTo: 5, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 8, wantHistLen: 3},
		{name: "max step", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, MaxStep: 2},
			size: 4, m: cpu(1, 0), wantTo: 6, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 8, wantMsg: "(step limited from 8)"},
		{name: "max step percent wins when larger", p: &TargetTracking{Limits: Limits{Min: 1, Max: 40}, Target: 0.25, MaxStep: 4, MaxStepPercent: 100},
			size: 6, m: cpu(1, 0), wantTo: 12, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 24},
		{name: "max step count wins when larger", p: &TargetTracking{Limits: Limits{Min: 1, Max: 40}, Target: 0.1, MaxStep: 4, MaxStepPercent: 100},
			size: 2, m: cpu(1, 0), wantTo: 6, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 20},
		{name: "limits cap", size: 15, m: cpu(1, 0), wantTo: 20, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 30,
			wantMsg: "(capped at the maximum size 20)"},
		{name: "zero target means the default", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}}, size: 3, m: cpu(DefaultTargetCPU*2, 0),
			wantTo: 6, wantReason: ReasonAboveTarget, wantReq: Up, wantRec: 6},
		{name: "old history is dropped", p: &TargetTracking{Limits: Limits{Min: 1, Max: 20}, Target: 0.5, ScaleDownStabilization: time.Minute},
			size: 4, m: cpu(0.5, 0), hist: []Recommendation{ago(2*time.Minute, 9), ago(30*time.Second, 4)},
			wantTo: 4, wantReason: ReasonWithinTolerance, wantRec: 4, wantHistLen: 2},
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
			obs := Observation{Pool: pool(tt.size), Metrics: tt.m, Recommendations: tt.hist}
			got := p.Decide(obs, t0)
			if got.From != tt.size || got.To != tt.wantTo || got.Reason != tt.wantReason || got.Requested != tt.wantReq {
				t.Errorf("Decide = from %d to %d %s requested %q, want from %d to %d %s requested %q (message %q)",
					got.From, got.To, got.Reason, got.Requested, tt.size, tt.wantTo, tt.wantReason, tt.wantReq, got.Message)
			}
			if !strings.Contains(got.Message, tt.wantMsg) {
				t.Errorf("Message = %q, want it to contain %q", got.Message, tt.wantMsg)
			}
			if (got.To > got.From) != (got.Action == ActionScaleUp) || (got.To < got.From) != (got.Action == ActionScaleDown) {
				t.Errorf("Action %s does not match from %d to %d", got.Action, got.From, got.To)
			}
			if got.Action == ActionScaleDown && len(got.Victims) != got.From-got.To {
				t.Errorf("Victims = %v, want %d", got.Victims, got.From-got.To)
			}
			wantLen := tt.wantHistLen
			if wantLen == 0 && tt.m.Valid && !math.IsNaN(tt.m.CPU) {
				wantLen = 1
			}
			if len(got.Recommendations) != wantLen {
				t.Fatalf("Recommendations = %v, want %d entries", got.Recommendations, wantLen)
			}
			if wantLen > 0 {
				last := got.Recommendations[len(got.Recommendations)-1]
				if !last.At.Equal(t0) || last.Size != tt.wantRec {
					t.Errorf("last recommendation = %+v, want %d at now", last, tt.wantRec)
				}
			}
		})
	}
}

// TestTargetTrackingHistory runs a policy over several ticks, passing the
// history back as a caller does: after a load drop the pool shrinks only
// once the scale-down window has passed.
func TestTargetTrackingHistory(t *testing.T) {
	p := TargetTracking{Limits: Limits{Min: 1, Max: 10}, Target: 0.5, Tolerance: 0.1, ScaleDownStabilization: 3 * time.Minute}
	var hist []Recommendation
	size := 4
	// CPU at each one-minute tick; the load halves after minute 1.
	cpus := []float64{0.5, 0.5, 0.25, 0.25, 0.25, 0.25}
	var sizes []int
	for i, c := range cpus {
		now := t0.Add(time.Duration(i) * time.Minute)
		d := p.Decide(Observation{Pool: pool(size), Metrics: cpu(c, 0), Recommendations: hist}, now)
		hist, size = d.Recommendations, d.To
		sizes = append(sizes, size)
	}
	want := []int{4, 4, 4, 4, 2, 2}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("sizes = %v, want %v", sizes, want)
		}
	}
}

func TestTargetTrackingValidate(t *testing.T) {
	tests := []struct {
		p       TargetTracking
		wantErr bool
	}{
		{TargetTracking{}, false},
		{TargetTracking{Target: 1, Tolerance: 0.5, MaxStep: 3, MaxStepPercent: 100, ScaleDownStabilization: time.Minute}, false},
		{TargetTracking{Target: 1.5}, true},
		{TargetTracking{Target: -0.1}, true},
		{TargetTracking{Target: math.NaN()}, true},
		{TargetTracking{Tolerance: 1}, true},
		{TargetTracking{Tolerance: -0.1}, true},
		{TargetTracking{MaxStep: -1}, true},
		{TargetTracking{MaxStepPercent: -1}, true},
		{TargetTracking{ScaleDownStabilization: -time.Second}, true},
		{TargetTracking{ScaleUpStabilization: -time.Second}, true},
		{TargetTracking{Limits: Limits{Min: 3, Max: 2}}, true},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tt.p, err, tt.wantErr)
		}
	}
}
