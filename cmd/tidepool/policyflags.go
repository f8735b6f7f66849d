package main

import (
	"flag"
	"fmt"
	"time"

	"tidepool/internal/autoscaler"
	"tidepool/internal/autoscaler/policy"
)

// Policy names accepted by -policy.
const (
	policyWebhook        = "webhook"
	policyTargetTracking = "target-tracking"
	policyPredictive     = "predictive"
)

// Defaults of the predictive policy's flags.
const (
	defaultBootTime        = time.Minute
	defaultForecastHistory = 48 * time.Hour
)

// policyFlags are the flags choosing and tuning the scaling policy, shared
// by the autoscaler and the demo.
type policyFlags struct {
	name      string
	target    float64
	tolerance float64
	maxStep   int
	downStab  time.Duration
	// predictive
	loadTarget float64
	burst      float64
	boot       time.Duration
	seasons    int
	history    time.Duration
	// tick is the autoscaler's tick, set by the caller before build: the
	// predictive policy looks one boot time and one tick ahead.
	tick time.Duration
}

// register adds -policy, -target-cpu, -tolerance, -max-step,
// -scale-down-stabilization and the predictive policy's -target-utilisation,
// -burst, -boot-time, -seasons and -forecast-history to fs; stab is the
// default of -scale-down-stabilization.
func (p *policyFlags) register(fs *flag.FlagSet, stab time.Duration) {
	fs.StringVar(&p.name, "policy", policyWebhook, "scaling policy: webhook (the seed's: ±1 per tick on alert signals), target-tracking (pool CPU from Prometheus) or predictive (arrival rate and seasonal forecast from Prometheus)")
	fs.Float64Var(&p.target, "target-cpu", policy.DefaultTargetCPU, "target-tracking: wanted average CPU utilisation (0 < x <= 1)")
	fs.Float64Var(&p.tolerance, "tolerance", 0.1, "target-tracking: no change while CPU/target is within 1 ± this")
	fs.IntVar(&p.maxStep, "max-step", 0, "target-tracking: most members added or removed per tick (0: no limit)")
	fs.DurationVar(&p.downStab, "scale-down-stabilization", stab, "target-tracking and predictive: shrink only to the largest recommendation of this window (0: none)")
	fs.Float64Var(&p.loadTarget, "target-utilisation", policy.DefaultPredictiveTarget, "predictive: utilisation the pool is sized for at the expected load (0 < x <= 1)")
	fs.Float64Var(&p.burst, "burst", policy.DefaultBurst, "predictive: burst margin in standard deviations of the one-second arrival rate (0: none)")
	fs.DurationVar(&p.boot, "boot-time", defaultBootTime, "predictive: time from a scale-up to the new members serving; the forecast looks this plus one tick ahead")
	fs.IntVar(&p.seasons, "seasons", policy.DefaultSeasons, "predictive: past periods a forecast rise must have come in (0: no seasonal forecast)")
	fs.DurationVar(&p.history, "forecast-history", defaultForecastHistory, "predictive: arrival history read from Prometheus (the forecast needs two periods)")
}

// env maps the flags to environment variables named prefix+NAME.
func (p *policyFlags) env(prefix string) map[string][]string {
	return map[string][]string{
		"policy":                   {prefix + "POLICY"},
		"target-cpu":               {prefix + "TARGET_CPU"},
		"tolerance":                {prefix + "TOLERANCE"},
		"max-step":                 {prefix + "MAX_STEP"},
		"scale-down-stabilization": {prefix + "SCALE_DOWN_STABILIZATION"},
		"target-utilisation":       {prefix + "TARGET_UTILISATION"},
		"burst":                    {prefix + "BURST"},
		"boot-time":                {prefix + "BOOT_TIME"},
		"seasons":                  {prefix + "SEASONS"},
		"forecast-history":         {prefix + "FORECAST_HISTORY"},
	}
}

// build returns the chosen policy with limits, validated.
func (p *policyFlags) build(limits policy.Limits) (policy.Policy, error) {
	switch p.name {
	case policyWebhook:
		return policy.Webhook{Limits: limits}, limits.Validate()
	case policyTargetTracking:
		tt := policy.TargetTracking{Limits: limits, Target: p.target, Tolerance: p.tolerance,
			MaxStep: p.maxStep, ScaleDownStabilization: p.downStab}
		if p.target == 0 {
			return nil, fmt.Errorf("-target-cpu 0: want 0 < target <= 1")
		}
		return tt, tt.Validate()
	case policyPredictive:
		pr := policy.Predictive{Limits: limits, Target: p.loadTarget, Burst: p.burst, Lead: p.boot + p.tick,
			ScaleDownStabilization: p.downStab, Seasons: p.seasons}
		switch {
		case p.loadTarget == 0:
			return nil, fmt.Errorf("-target-utilisation 0: want 0 < target <= 1")
		case p.boot < 0 || p.history < 0:
			return nil, fmt.Errorf("-boot-time %s and -forecast-history %s must not be negative", p.boot, p.history)
		}
		return pr, pr.Validate()
	}
	return nil, fmt.Errorf("-policy %q: want %s, %s or %s", p.name, policyWebhook, policyTargetTracking, policyPredictive)
}

// loadQuery is what the autoscaler reads of the pool's load for the chosen
// policy: the arrival history at step (the rules' evaluation interval) for
// the predictive policy, nothing for the others.
func (p *policyFlags) loadQuery(step time.Duration) autoscaler.LoadQuery {
	if p.name != policyPredictive {
		return autoscaler.LoadQuery{}
	}
	return autoscaler.LoadQuery{History: p.history, Step: step}
}

// flagSet reports whether the flag called name was set on the command line
// or from the environment.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
