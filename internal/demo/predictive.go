package demo

import (
	"time"

	"tidepool/internal/autoscaler"
	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/monitoring"
)

// AutoscalerTick is the autoscaler's tick in a demo of profile prof with
// pol: the profile's, or for policy.Predictive policy.PredictiveTick if
// shorter (it reads the arrival rate the rules evaluate every 15 s with the
// seed profile, and is meant to act on it as the HPA does).
func AutoscalerTick(pol policy.Policy, prof monitoring.Profile) time.Duration {
	if _, ok := pol.(policy.Predictive); ok {
		return min(policy.PredictiveTick, prof.AutoscalerTick)
	}
	return prof.AutoscalerTick
}

// DefaultBootDelay is Config.BootDelay's default for the profile named
// profile: 20 s with the seed profile, 2 s otherwise.
func DefaultBootDelay(profile string) time.Duration {
	if profile == "seed" {
		return 20 * time.Second
	}
	return 2 * time.Second
}

// loadQuery is what the demo's autoscaler reads of the pool's load for pol:
// for policy.Predictive the arrival history at the rules' evaluation
// interval (as much as one range query returns) and the cost per request
// averaged over the CPU rate window; nothing for the other policies.
func loadQuery(pol policy.Policy, prof monitoring.Profile) autoscaler.LoadQuery {
	if _, ok := pol.(policy.Predictive); !ok {
		return autoscaler.LoadQuery{}
	}
	step := prof.EvaluationInterval
	return autoscaler.LoadQuery{History: min(48*time.Hour, (autoscaler.MaxLoadPoints-1)*step), Step: step, CostWindow: prof.RateWindow}
}
