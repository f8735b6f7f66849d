// Package validate checks the simulator against the real thing: it runs the
// demo (the whole local stack: cloud, members, load balancer, Prometheus,
// Alertmanager, autoscaler) under a small load, simulates the same pool,
// policy and load, and compares the pool-size curves. It owns that
// comparison and its chart; package simulate must not import it (the
// simulator stays pure), and nothing but cmd/tidepool should.
package validate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"tidepool/internal/demo"
	"tidepool/internal/loadgen"
	"tidepool/internal/monitoring"
	"tidepool/internal/report"
	"tidepool/internal/simulate"
)

// Validation defaults.
const (
	// DefaultTolerance is the largest mean absolute difference, in
	// members, between the measured and the simulated pool size.
	DefaultTolerance = 0.5
	// DefaultWithin is the smallest share of seconds in which the
	// two pool sizes differ by at most one member.
	DefaultWithin = 0.8
	// limitPeak is the largest difference of the two peak sizes.
	limitPeak = 1
)

// Stages is the small load of a validation run on the fast
// profile (2 minutes 20 seconds): a ramp that takes the pool from 1 member
// to MaxSize, a hold, a drop and a quiet tail. The hold keeps the
// full pool near 90 % CPU and the tail near 7 %, so that both policies end
// at the same sizes whatever the exact per-request cost (no steady state
// sits on a threshold); what is compared is the timing of the changes.
func Stages() []loadgen.Stage {
	return []loadgen.Stage{
		{Kind: loadgen.KindHold, From: 3, Duration: 10 * time.Second},
		{Kind: loadgen.KindRamp, From: 3, To: 40, Duration: 40 * time.Second},
		{Kind: loadgen.KindHold, From: 40, Duration: 50 * time.Second},
		{Kind: loadgen.KindRamp, From: 40, To: 3, Duration: 10 * time.Second},
		{Kind: loadgen.KindHold, From: 3, Duration: 30 * time.Second},
	}
}

// MaxSize is the pool maximum of a validation run when the demo
// configuration leaves it 0.
const MaxSize = 4

// Config configures Run.
type Config struct {
	// Policy is "webhook" (the seed's), "target-tracking" or
	// "predictive"; "" means "webhook".
	Policy string
	// Demo configures the real run; Profile, Stages and Policy are set by
	// Validate (the fast profile, Stages, and the policy named above built
	// as Seed/TargetTracking/Predictive build it). Zero fields take the demo's
	// defaults.
	Demo demo.Config
	// Stages is the load; nil means Stages().
	Stages []loadgen.Stage
	// BootDelay and DrainDelay of the simulated pool; 0 means the demo's
	// boot delay plus one load balancer health check (1 s), and 5 s (load
	// balancer notices the drain, 1 s grace, 2 s app drain, process exit).
	BootDelay, DrainDelay time.Duration
	// Tolerance is the largest mean absolute difference of the pool sizes
	// in members; 0 means DefaultTolerance.
	Tolerance float64
	// Capacity is the simulated members' req/s at 100 % CPU; 0 means
	// fitted from the demo's own measurements (see FitCapacity), which
	// include the app's per-request overhead beyond its Work.
	Capacity float64
}

// Validation compares a real demo run with the simulation of the same
// settings.
type Validation struct {
	Policy string
	// Trace is the planned load, extended with silence to the end of the
	// demo's samples.
	Trace simulate.Trace
	// Pool and Setup are what was simulated.
	Pool  simulate.Pool
	Setup simulate.Setup
	// NominalCapacity is the demo's CPU quota over its work per request;
	// Pool.Capacity is what was simulated (fitted unless configured).
	NominalCapacity float64
	// Sim is the simulated run; Real is the demo's result.
	Sim  simulate.Run
	Real demo.Result
	// RealSize and RealCPU are the demo's per-second pool size (members in
	// any state) and pool CPU (NaN: unknown).
	RealSize []simulate.Point
	RealCPU  []simulate.Point
	// MeanAbsDiff is the mean |measured - simulated| pool size over the
	// seconds with a measurement; Within is the share of those seconds in
	// which they differ by at most one member; PeakReal and PeakSim are the
	// largest sizes.
	MeanAbsDiff       float64
	Within            float64
	PeakReal, PeakSim int
	// Tolerance is the bound MeanAbsDiff was held to.
	Tolerance float64
	// OK reports MeanAbsDiff <= Tolerance, Within >= DefaultWithin
	// and peaks at most one member apart.
	OK bool
	// HostSaturated is the share of the demo's 5-second intervals in which
	// the machine's CPUs were at least 95 % busy (from /proc/stat; 0 if
	// unknown). When it is high (HostOverloaded) the members may not have
	// had their CPU quota, and the real run does not show what the
	// simulated pool models.
	HostSaturated float64
}

// HostOverloaded reports a machine whose CPUs were saturated during more
// than a quarter of the demo.
func (v Validation) HostOverloaded() bool { return v.HostSaturated > 0.25 }

// hostSaturation samples /proc/stat every 5 s until ctx ends and sends the
// share of intervals in which the CPUs were at least 95 % busy.
func hostSaturation(ctx context.Context, done chan<- float64) {
	read := func() (idle, total float64, ok bool) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, false
		}
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu" {
			return 0, 0, false
		}
		for i, s := range f[1:9] { // user nice system idle iowait irq softirq steal
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, 0, false
			}
			total += v
			if i == 3 || i == 4 {
				idle += v
			}
		}
		return idle, total, true
	}
	var intervals, saturated int
	lastIdle, lastTotal, ok := read()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			share := 0.0
			if intervals > 0 {
				share = float64(saturated) / float64(intervals)
			}
			done <- share
			return
		case <-t.C:
		}
		idle, total, rok := read()
		if ok && rok && total > lastTotal {
			intervals++
			if (idle-lastIdle)/(total-lastTotal) < 0.05 {
				saturated++
			}
		}
		lastIdle, lastTotal, ok = idle, total, rok
	}
}

// Run runs the demo (the real local stack: cloud, members, load
// balancer, Prometheus, Alertmanager, autoscaler) with the fast profile
// under a small load, simulates the same pool, policy and load, and
// compares the pool-size curves. It takes a few minutes and blocks until
// the demo is done or ctx is cancelled.
func Run(ctx context.Context, cfg Config) (Validation, error) {
	prof := monitoring.Fast()
	dc := cfg.Demo
	dc.Profile = prof.Name
	if cfg.Stages == nil {
		cfg.Stages = Stages()
	}
	dc.Stages = cfg.Stages
	if dc.MinSize == 0 {
		dc.MinSize = demo.DefaultMinSize
	}
	if dc.MaxSize == 0 {
		dc.MaxSize = MaxSize
	}
	if dc.Work == 0 {
		dc.Work = demo.DefaultWork
	}
	if dc.CPUPerVCPU == 0 {
		dc.CPUPerVCPU = demo.DefaultCPUPerVCPU
	}
	if dc.BootDelay == 0 {
		dc.BootDelay = 2 * time.Second
	}
	if cfg.BootDelay == 0 {
		cfg.BootDelay = dc.BootDelay + time.Second
	}
	if cfg.DrainDelay == 0 {
		cfg.DrainDelay = 5 * time.Second
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = DefaultTolerance
	}
	nominal := dc.CPUPerVCPU / dc.Work.Seconds()
	pool := simulate.Pool{
		Capacity: nominal, Min: dc.MinSize, Max: dc.MaxSize, Initial: dc.MinSize,
		BootDelay: cfg.BootDelay, DrainDelay: cfg.DrainDelay, Timeout: 30 * time.Second,
	}
	opts := simulate.Options{Profile: prof, Limits: pool.Limits(), BootDelay: cfg.BootDelay}
	var setup simulate.Setup
	switch cfg.Policy {
	case "", "webhook":
		cfg.Policy = "webhook"
		setup = simulate.Seed(opts)
		dc.Policy = nil // the demo's default: policy.Webhook within MinSize..MaxSize
	case "target-tracking":
		setup = simulate.TargetTracking(opts)
		dc.Policy = setup.Policy
	case "predictive":
		setup = simulate.Predictive(opts)
		dc.Policy = setup.Policy
	default:
		return Validation{}, fmt.Errorf("validate: policy %q: want webhook, target-tracking or predictive", cfg.Policy)
	}
	base, err := simulate.FromStages("validation", cfg.Stages, time.Second)
	if err != nil {
		return Validation{}, fmt.Errorf("validate: %w", err)
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	peak := make(chan float64, 1)
	go hostSaturation(loadCtx, peak)
	res, err := demo.Run(ctx, dc)
	stopLoad()
	v := Validation{Policy: cfg.Policy, Setup: setup, Real: res, Tolerance: cfg.Tolerance, NominalCapacity: nominal, HostSaturated: <-peak}
	if err != nil {
		return v, fmt.Errorf("validate: demo: %w", err)
	}
	switch {
	case cfg.Capacity > 0:
		pool.Capacity = cfg.Capacity
	default:
		if c, ok := FitCapacity(res.Samples); ok {
			pool.Capacity = c
		}
	}
	v.Pool = pool
	for _, s := range res.Samples {
		if s.PoolSize >= 0 {
			v.RealSize = append(v.RealSize, simulate.Point{T: s.T, V: float64(s.PoolSize)})
		}
		v.RealCPU = append(v.RealCPU, simulate.Point{T: s.T, V: s.AvgCPU})
	}
	if len(v.RealSize) == 0 {
		return v, errors.New("validate: the demo recorded no pool sizes")
	}
	// The simulation covers the demo's whole record: silence after the load.
	v.Trace = base
	if last := v.RealSize[len(v.RealSize)-1].T + time.Second; last > base.End {
		v.Trace.Start = append(v.Trace.Start, base.End)
		v.Trace.Rate = append(v.Trace.Rate, 0)
		v.Trace.End = last
	}
	if v.Sim, err = simulate.Simulate(v.Trace, pool, setup); err != nil {
		return v, fmt.Errorf("validate: %w", err)
	}
	v.compare()
	return v, nil
}

// FitCapacity estimates what one member serves at 100 % CPU from a demo's
// samples: the median of answered req/s / (running members × pool CPU) over
// the seconds with the pool CPU between 30 % and 95 % and every member
// running. ok is false when fewer than 10 seconds qualify.
func FitCapacity(samples []report.Sample) (capacity float64, ok bool) {
	var est []float64
	for _, s := range samples {
		if s.RunningSize > 0 && s.RunningSize == s.PoolSize && s.AvgCPU >= 0.3 && s.AvgCPU <= 0.95 && s.AnsweredRPS > 0 {
			est = append(est, s.AnsweredRPS/(float64(s.RunningSize)*s.AvgCPU))
		}
	}
	if len(est) < 10 {
		return 0, false
	}
	slices.Sort(est)
	return est[len(est)/2], true
}

func (v *Validation) compare() {
	var sum float64
	within := 0
	for _, p := range v.RealSize {
		sim := v.Sim.Size.At(p.T)
		d := math.Abs(p.V - float64(sim))
		sum += d
		if d <= 1 {
			within++
		}
		v.PeakReal = max(v.PeakReal, int(p.V))
	}
	v.PeakSim = v.Sim.Size.Max()
	n := float64(len(v.RealSize))
	v.MeanAbsDiff, v.Within = sum/n, float64(within)/n
	v.OK = v.MeanAbsDiff <= v.Tolerance && v.Within >= DefaultWithin && abs(v.PeakReal-v.PeakSim) <= limitPeak
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Summary is a one-line verdict with the numbers.
func (v Validation) Summary() string {
	mark := "OK"
	if !v.OK {
		mark = "FAILED"
	}
	s := fmt.Sprintf("validation %s (%s policy, fast profile, %.1f req/s per member measured, %.1f nominal): pool size real vs simulated differs by %.2f members on average (limit %.2f), "+
		"within ±1 member %.0f%% of %d s (limit %.0f%%), peaks %d vs %d (limit ±%d); host CPUs saturated %.0f%% of the time",
		mark, v.Policy, v.Pool.Capacity, v.NominalCapacity, v.MeanAbsDiff, v.Tolerance, v.Within*100, len(v.RealSize), DefaultWithin*100, v.PeakReal, v.PeakSim, limitPeak,
		v.HostSaturated*100)
	if v.HostOverloaded() {
		s += " (overloaded: the members may not have had their CPU quota; run again on a quieter machine)"
	}
	return s
}

// short is the verdict in a chart subtitle's width.
func (v Validation) short() string {
	mark := "OK"
	if !v.OK {
		mark = "FAILED"
	}
	return fmt.Sprintf("%s: pool sizes differ by %.2f members on average (limit %.2f), by at most 1 for %.0f%% of %d s (limit %.0f%%), peaks %d/%d; %.1f req/s per member measured (%.1f nominal)",
		mark, v.MeanAbsDiff, v.Tolerance, v.Within*100, len(v.RealSize), DefaultWithin*100, v.PeakReal, v.PeakSim, v.Pool.Capacity, v.NominalCapacity)
}

// WriteChart writes a PNG comparing the real and simulated runs: load,
// pool size and pool CPU over time.
func (v Validation) WriteChart(w io.Writer) error {
	var offered []simulate.Point
	for _, s := range v.Real.Samples {
		if s.OfferedRPS > 0 || s.T <= v.Trace.End {
			offered = append(offered, simulate.Point{T: s.T, V: s.OfferedRPS})
		}
	}
	c := report.Chart{
		Title:    fmt.Sprintf("tidepool simulate -validate: real demo vs simulation (%s policy)", v.Policy),
		Subtitle: v.short(),
		End:      v.Trace.End,
		Panels: []report.ChartPanel{
			{Title: "Offered load", YLabel: "req/s", Series: []report.ChartSeries{
				{Name: "planned (simulated)", Role: report.RoleReference, Step: true, T: v.Trace.Start, V: v.Trace.Rate},
				{Name: "offered (real)", Role: report.RoleAlternative, T: times(offered), V: values(offered)},
			}},
			{Title: "Pool size", YLabel: "members", Integer: true, Series: []report.ChartSeries{
				{Name: "simulated serving", Role: report.RoleSecondary, Step: true, T: v.Sim.Supply.T, V: v.Sim.Supply.Floats()},
				{Name: "simulated (any state)", Role: report.RoleMain, Step: true, T: v.Sim.Size.T, V: v.Sim.Size.Floats()},
				{Name: "real (any state)", Role: report.RoleAlternative, T: times(v.RealSize), V: values(v.RealSize)},
			}},
			{Title: "Pool CPU as the policy sees it", YLabel: "utilisation", Series: []report.ChartSeries{
				{Name: "simulated", Role: report.RoleMain, T: times(v.Sim.CPU), V: values(v.Sim.CPU)},
				{Name: "real (Prometheus)", Role: report.RoleAlternative, T: times(v.RealCPU), V: values(v.RealCPU)},
			}},
		},
	}
	return report.WriteChartPNG(w, c)
}

func times(ps []simulate.Point) []time.Duration {
	out := make([]time.Duration, len(ps))
	for i, p := range ps {
		out[i] = p.T
	}
	return out
}

func values(ps []simulate.Point) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.V
	}
	return out
}
