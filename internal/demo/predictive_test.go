package demo

import (
	"testing"
	"time"

	"tidepool/internal/autoscaler"
	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/monitoring"
)

// TestPredictiveWiring: the predictive policy ticks every
// policy.PredictiveTick (or the profile's tick if shorter) and reads as
// much arrival history as one range query returns at the rules' evaluation
// interval; the other policies keep the profile's tick and read no load.
func TestPredictiveWiring(t *testing.T) {
	pred := policy.Predictive{Limits: policy.Limits{Min: 1, Max: 5}}
	tt := policy.TargetTracking{Limits: policy.Limits{Min: 1, Max: 5}}
	seed, fast := monitoring.Seed(), monitoring.Fast()
	tests := []struct {
		name     string
		pol      policy.Policy
		prof     monitoring.Profile
		wantTick time.Duration
		wantLoad autoscaler.LoadQuery
	}{
		{"predictive seed", pred, seed, policy.PredictiveTick,
			autoscaler.LoadQuery{History: (autoscaler.MaxLoadPoints - 1) * seed.EvaluationInterval, Step: seed.EvaluationInterval, CostWindow: seed.RateWindow}},
		{"predictive fast", pred, fast, fast.AutoscalerTick,
			autoscaler.LoadQuery{History: (autoscaler.MaxLoadPoints - 1) * fast.EvaluationInterval, Step: fast.EvaluationInterval, CostWindow: fast.RateWindow}},
		{"target tracking", tt, seed, seed.AutoscalerTick, autoscaler.LoadQuery{}},
		{"webhook", nil, fast, fast.AutoscalerTick, autoscaler.LoadQuery{}},
	}
	for _, tc := range tests {
		if got := AutoscalerTick(tc.pol, tc.prof); got != tc.wantTick {
			t.Errorf("%s: AutoscalerTick = %s, want %s", tc.name, got, tc.wantTick)
		}
		if got := loadQuery(tc.pol, tc.prof); got.History != tc.wantLoad.History || got.Step != tc.wantLoad.Step ||
			got.CostWindow != tc.wantLoad.CostWindow || got.Now != nil {
			t.Errorf("%s: loadQuery = %+v, want %+v", tc.name, got, tc.wantLoad)
		}
	}
	if got := DefaultBootDelay("seed"); got != 20*time.Second {
		t.Errorf("DefaultBootDelay(seed) = %s, want 20s", got)
	}
	if got := DefaultBootDelay("fast"); got != 2*time.Second {
		t.Errorf("DefaultBootDelay(fast) = %s, want 2s", got)
	}
}
