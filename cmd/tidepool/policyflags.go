package main

import (
	"flag"
	"fmt"
	"time"

	"tidepool/internal/autoscaler/policy"
)

// Policy names accepted by -policy.
const (
	policyWebhook        = "webhook"
	policyTargetTracking = "target-tracking"
)

// policyFlags are the flags choosing and tuning the scaling policy, shared
// by the autoscaler and the demo.
type policyFlags struct {
	name      string
	target    float64
	tolerance float64
	maxStep   int
	downStab  time.Duration
}

// register adds -policy, -target-cpu, -tolerance, -max-step and
// -scale-down-stabilization to fs; stab is the default of the last.
func (p *policyFlags) register(fs *flag.FlagSet, stab time.Duration) {
	fs.StringVar(&p.name, "policy", policyWebhook, "scaling policy: webhook (the seed's: ±1 per tick on alert signals) or target-tracking (pool CPU from Prometheus)")
	fs.Float64Var(&p.target, "target-cpu", policy.DefaultTargetCPU, "target-tracking: wanted average CPU utilisation (0 < x <= 1)")
	fs.Float64Var(&p.tolerance, "tolerance", 0.1, "target-tracking: no change while CPU/target is within 1 ± this")
	fs.IntVar(&p.maxStep, "max-step", 0, "target-tracking: most members added or removed per tick (0: no limit)")
	fs.DurationVar(&p.downStab, "scale-down-stabilization", stab, "target-tracking: shrink only to the largest recommendation of this window (0: none)")
}

// env maps the flags to environment variables named prefix+NAME.
func (p *policyFlags) env(prefix string) map[string][]string {
	return map[string][]string{
		"policy":                   {prefix + "POLICY"},
		"target-cpu":               {prefix + "TARGET_CPU"},
		"tolerance":                {prefix + "TOLERANCE"},
		"max-step":                 {prefix + "MAX_STEP"},
		"scale-down-stabilization": {prefix + "SCALE_DOWN_STABILIZATION"},
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
	}
	return nil, fmt.Errorf("-policy %q: want %s or %s", p.name, policyWebhook, policyTargetTracking)
}

// flagSet reports whether the flag called name was set on the command line
// or from the environment.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
