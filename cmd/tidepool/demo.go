package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/demo"
	"tidepool/internal/loadgen"
	"tidepool/internal/monitoring"
)

// runDemo runs `tidepool demo`. Exit codes: 0 when autoscaling was shown
// (the last line says so), 1 when it was not, on a failure (a missing
// package, a port in use) or after an interruption, 2 on bad flags.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tidepool demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg demo.Config
	fs.StringVar(&cfg.Profile, "profile", demo.DefaultProfile, "monitoring timing profile: fast (seconds) or seed (the course's 60 s tick and 1 m windows)")
	fs.StringVar(&cfg.OutDir, "out", demo.DefaultOutDir, "directory for report.html, report.png, load.csv/json, logs and rendered configuration")
	fs.IntVar(&cfg.MinSize, "min", demo.DefaultMinSize, "minimum pool size")
	fs.IntVar(&cfg.MaxSize, "max", demo.DefaultMaxSize, "maximum pool size")
	fs.DurationVar(&cfg.Work, "work", demo.DefaultWork, "CPU time each request costs a member")
	fs.Float64Var(&cfg.CPUPerVCPU, "cpu-per-vcpu", demo.DefaultCPUPerVCPU, "CPU quota of each member in cores")
	fs.DurationVar(&cfg.BootDelay, "boot-delay", 0, "emulated VM boot time of new members (default 2s fast, 20s seed)")
	fs.DurationVar(&cfg.Settle, "settle", 0, "after the load, wait at most this long for the pool to shrink to -min (default 20 ticks)")
	port := fs.Uint("service-port", demo.DefaultServicePort, "load balancer service port")
	fs.StringVar(&cfg.LiveAddr, "live", demo.DefaultLiveAddr, "address of the live page, HOST:PORT (a busy port falls back to a free one; port 0 picks one); \"off\" serves none")
	var stages loadStages
	fs.Var(&stages, "stage", "load stage, repeatable (see tidepool load -h); default: the built-in scenario")
	scenario := fs.String("scenario", "", "YAML or JSON file listing the load stages")
	var pf policyFlags
	pf.register(fs, 0)
	fs.Lookup("scale-down-stabilization").DefValue = "5 autoscaler ticks"
	env := pf.env("TIDEPOOL_DEMO_")
	env["profile"], env["out"] = []string{"TIDEPOOL_DEMO_PROFILE"}, []string{"TIDEPOOL_DEMO_OUT"}
	env["live"] = []string{"TIDEPOOL_DEMO_LIVE"}
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	prof, err := monitoring.ProfileByName(cfg.Profile)
	if err != nil {
		return usageError(fs, err)
	}
	if !flagSet(fs, "scale-down-stabilization") {
		pf.downStab = 5 * prof.AutoscalerTick
	}
	pf.tick = prof.AutoscalerTick
	if pf.name == policyPredictive {
		pf.tick = min(policy.PredictiveTick, prof.AutoscalerTick) // demo.AutoscalerTick
	}
	if !flagSet(fs, "boot-time") {
		// The demo's boot delay and one load balancer health check.
		pf.boot = cmp.Or(cfg.BootDelay, demo.DefaultBootDelay(cfg.Profile)) + time.Second
	}
	pol, err := pf.build(policy.Limits{Min: cfg.MinSize, Max: cfg.MaxSize})
	if err != nil {
		return usageError(fs, err)
	}
	cfg.Policy = pol
	if *port == 0 || *port > 65535 {
		return usageError(fs, fmt.Errorf("bad -service-port %d", *port))
	}
	cfg.ServicePort = uint16(*port)
	switch {
	case len(stages) > 0 && *scenario != "":
		return usageError(fs, errors.New("give either -stage or -scenario, not both"))
	case len(stages) > 0:
		cfg.Stages = stages
	case *scenario != "":
		st, err := loadgen.LoadScenario(*scenario)
		if err != nil {
			return usageError(fs, err)
		}
		cfg.Stages = st
	}
	if err := cfg.Validate(); err != nil {
		return usageError(fs, err)
	}
	cfg.Out = stdout
	res, err := demo.Run(ctx, cfg)
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "tidepool demo: interrupted; everything it started has been stopped")
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "tidepool demo: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, demo.Verdict(res, cfg.MinSize))
	if !demo.Shown(res, cfg.MinSize) {
		return 1
	}
	return 0
}
