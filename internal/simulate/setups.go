package simulate

import (
	"fmt"
	"strings"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/monitoring"
)

// Names of the standard setups, in table order.
const (
	SeedName   = "seed-webhook"
	TargetName = "target-tracking"
	HPAName    = "hpa-like"
	AWSName    = "aws-like"
	// PredictiveName is the setup of policy.Predictive.
	PredictiveName = "predictive"
)

// Options are what the standard setups share.
type Options struct {
	// Profile gives the timings of the seed and target-tracking setups
	// (scrape, rate window, evaluation, alert `for`, Alertmanager, tick);
	// the zero value means monitoring.Seed().
	Profile monitoring.Profile
	// Target is the CPU target of the target-tracking setups; 0 means
	// policy.DefaultTargetCPU.
	Target float64
	// Limits bound every policy (Pool.Limits()).
	Limits policy.Limits
	// BootDelay is the pool's boot delay, which the predictive policy's
	// forecast looks ahead by; 0 means one minute.
	BootDelay time.Duration
}

func (o Options) profile() monitoring.Profile {
	if o.Profile.Name == "" {
		return monitoring.Seed()
	}
	return o.Profile
}

// PrometheusPipeline is the CPU pipeline of tidepool's monitoring with the
// profile p: scrape and rule evaluation intervals, the rate window of the
// recording rules, and the discover agent's refresh before a new member is
// scraped (a fifth of the tick, 1 s to 10 s, as the demo runs it). Scrapes
// are half an interval out of phase with the evaluations.
func PrometheusPipeline(p monitoring.Profile) Pipeline {
	return Pipeline{
		Scrape: p.ScrapeInterval, Offset: p.ScrapeInterval / 2, Window: p.RateWindow,
		Eval: p.EvaluationInterval, Discovery: min(max(p.AutoscalerTick/5, time.Second), 10*time.Second),
	}
}

// Seed is the seed's policy: alerts above 80 % and below 20 % pool CPU
// (monitoring's defaults), `for` and Alertmanager timings from the
// profile, and policy.Webhook moving ±1 per tick.
func Seed(o Options) Setup {
	p := o.profile()
	return Setup{
		Name:    SeedName,
		Policy:  policy.Webhook{Limits: o.Limits},
		Tick:    p.AutoscalerTick,
		Metrics: PrometheusPipeline(p),
		Alerts: &Alerts{
			UpAbove: monitoring.DefaultScaleUpAbove, DownBelow: monitoring.DefaultScaleDownBelow,
			For: p.AlertFor, GroupWait: p.AlertmanagerGroupWait, GroupInterval: p.AlertmanagerGroupInterval,
		},
	}
}

// TargetTrackingPolicy is tidepool's target-tracking policy as `tidepool
// autoscaler -policy target-tracking` runs it by default: 10 % tolerance,
// no step limit, a scale-down stabilisation of five ticks.
func TargetTrackingPolicy(o Options) policy.TargetTracking {
	return policy.TargetTracking{Limits: o.Limits, Target: o.Target, Tolerance: 0.1,
		ScaleDownStabilization: 5 * o.profile().AutoscalerTick}
}

// TargetTracking is tidepool's target-tracking policy reading the pool CPU
// from Prometheus at every tick of the profile.
func TargetTracking(o Options) Setup {
	p := o.profile()
	return Setup{Name: TargetName, Policy: TargetTrackingPolicy(o), Tick: p.AutoscalerTick, Metrics: PrometheusPipeline(p)}
}

// HPA is configured like the Kubernetes horizontal pod autoscaler's
// defaults: a 15 s sync period over metrics-server's CPU rate between its
// two latest samples 15 s apart (a 30 s window out of phase), 10 %
// tolerance, 300 s scale-down stabilisation, and growth by at most
// max(4 members, 100 %) per step.
func HPA(o Options) Setup {
	return Setup{
		Name: HPAName,
		Policy: policy.TargetTracking{Limits: o.Limits, Target: o.Target, Tolerance: 0.1,
			MaxStep: 4, MaxStepPercent: 100, ScaleDownStabilization: 300 * time.Second},
		Tick:    15 * time.Second,
		Metrics: Pipeline{Scrape: 15 * time.Second, Offset: 7500 * time.Millisecond, Window: 30 * time.Second, Eval: 15 * time.Second},
	}
}

// AWS is configured like AWS target tracking on a 1-minute CloudWatch
// metric: the policy is evaluated every minute on 1-minute CPU averages and
// scales out only when the last 3 datapoints all ask for it, in only when
// the last 15 do (the two CloudWatch alarms), to the least aggressive of
// them; no tolerance band.
func AWS(o Options) Setup {
	return Setup{
		Name: AWSName,
		Policy: policy.TargetTracking{Limits: o.Limits, Target: o.Target,
			ScaleUpStabilization: 3 * time.Minute, ScaleDownStabilization: 15 * time.Minute},
		Tick:    time.Minute,
		Metrics: Pipeline{Scrape: time.Minute, Window: time.Minute, Eval: time.Minute},
	}
}

// OracleSetup is the oracle (see Oracle).
func OracleSetup() Setup { return Setup{Name: OracleName} }

// Standard returns the six compared setups in table order: seed, target
// tracking, HPA-like, AWS-like, predictive, oracle.
func Standard(o Options) []Setup {
	return []Setup{Seed(o), TargetTracking(o), HPA(o), AWS(o), Predictive(o), OracleSetup()}
}

// Select returns the setups of all whose names are listed (comma
// separated), in the order of all; "" or "all" selects every one.
func Select(all []Setup, names string) ([]Setup, error) {
	if names == "" || names == "all" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(names, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []Setup
	var known []string
	for _, s := range all {
		known = append(known, s.Name)
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("unknown policy %q (want some of %s)", n, strings.Join(known, ", "))
	}
	return out, nil
}

// PredictiveHistory is the most arrival history the predictive policy gets:
// two days, at most 10,000 rates (a Prometheus range query returns at most
// 11,000 points).
const PredictiveHistory = 48 * time.Hour

// PredictivePolicy is policy.Predictive as `tidepool autoscaler -policy
// predictive` runs it by default, for a tick: target 75 %, a burst margin
// of 2 standard deviations, lead = boot delay + tick, scale-down
// stabilisation of five profile ticks (5 minutes with the seed profile, as
// the Kubernetes HPA), forecast over 2 past periods.
func PredictivePolicy(o Options, tick time.Duration) policy.Predictive {
	boot := o.BootDelay
	if boot == 0 {
		boot = time.Minute
	}
	return policy.Predictive{Limits: o.Limits, Target: policy.DefaultPredictiveTarget, Burst: policy.DefaultBurst,
		Lead: boot + tick, ScaleDownStabilization: 5 * o.profile().AutoscalerTick, Seasons: policy.DefaultSeasons}
}

// Predictive is the predictive policy reading the pool's arrival rate as
// tidepool's recording rule computes it (irate over three scrapes, evaluated
// with the profile's rules) every policy.PredictiveTick, or every profile
// tick if that is shorter.
func Predictive(o Options) Setup {
	p := o.profile()
	tick := min(policy.PredictiveTick, p.AutoscalerTick)
	pipe := PrometheusPipeline(p)
	pipe.ArrivalWindow = p.ArrivalWindow()
	pipe.History = min(PredictiveHistory, 10000*pipe.Eval)
	return Setup{Name: PredictiveName, Policy: PredictivePolicy(o, tick), Tick: tick, Metrics: pipe}
}
