package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/monitoring"
	"tidepool/internal/outpath"
	"tidepool/internal/simulate"
	"tidepool/internal/simulate/validate"
)

// traceList collects -trace values.
type traceList []string

func (l *traceList) String() string     { return strings.Join(*l, ",") }
func (l *traceList) Set(s string) error { *l = append(*l, s); return nil }

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tidepool simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var traces traceList
	fs.Var(&traces, "trace", "shipped trace name or CSV file (columns seconds,rps), repeatable; default: every shipped trace ("+strings.Join(simulate.BuiltinNames(), ", ")+")")
	var stages loadStages
	fs.Var(&stages, "stage", "load stage making a trace named \"stages\" (see tidepool load -h), repeatable")
	scenario := fs.String("scenario", "", "YAML or JSON file of load stages making a trace named after the file")
	profile := fs.String("profile", "seed", "monitoring timing profile of the seed, target-tracking and predictive policies: seed or fast")
	policies := fs.String("policies", "all", "comma-separated policies to compare: "+strings.Join(simulate.SetupNames(), ", "))
	var pool simulate.Pool
	fs.Float64Var(&pool.Capacity, "capacity", simulate.DefaultCapacity, "requests per second one member serves at 100% CPU")
	fs.Float64Var(&pool.SLO, "slo", simulate.DefaultSLO, "utilisation up to which a member meets the SLO; demand = the fewest members keeping it")
	fs.IntVar(&pool.Min, "min", 1, "smallest pool size")
	fs.IntVar(&pool.Max, "max", 40, "largest pool size (0: none)")
	fs.IntVar(&pool.Initial, "initial", 0, "pool size at the start (0: the demand at the start)")
	fs.DurationVar(&pool.BootDelay, "boot-delay", time.Minute, "time from a scale-up request to the new members serving (the predictive policy looks this plus a tick ahead)")
	fs.DurationVar(&pool.DrainDelay, "drain-delay", 10*time.Second, "time a scale-in victim takes from leaving the load balancer to being gone")
	fs.DurationVar(&pool.Timeout, "timeout", 30*time.Second, "longest a request waits in a queue before it is dropped (0: no queue)")
	target := fs.Float64("target-cpu", policy.DefaultTargetCPU, "CPU target of the target-tracking, HPA-like and AWS-like policies")
	out := fs.String("out", "simulate-out", "directory for <trace>.png, results.md and results.csv (empty: print only)")
	writeTraces := fs.String("write-traces", "", "write the shipped traces as CSV files into this directory and exit")
	validation := fs.Bool("validate", false, "run the real local stack (tidepool demo) and the simulator on one small trace and compare the pool sizes (takes minutes)")
	validatePolicy := fs.String("validate-policy", "both", "with -validate: webhook, target-tracking, predictive, both (webhook and target-tracking) or all")
	if code, ok := parseFlags(fs, args, map[string][]string{"out": {"TIDEPOOL_SIMULATE_OUT"}}); !ok {
		return code
	}
	if *validation && *out == "" {
		*out = "simulate-out" // the validation always writes its figures
	}
	for _, d := range []struct {
		name string
		path *string
	}{{"out", out}, {"write-traces", writeTraces}} {
		if *d.path == "" {
			continue
		}
		var err error
		if *d.path, err = outpath.Dir(*d.path); err != nil {
			return usageError(fs, fmt.Errorf("-%s: %w", d.name, err))
		}
	}
	if *writeTraces != "" {
		if err := simulate.WriteBuiltins(*writeTraces); err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %d traces to %s\n", len(simulate.BuiltinNames()), *writeTraces)
		return 0
	}
	if *validation {
		pols, err := validate.Policies(*validatePolicy)
		if err != nil {
			return usageError(fs, fmt.Errorf("-validate-policy %w", err))
		}
		ok, err := validate.All(ctx, pols, *out, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
			return 1
		}
		if !ok {
			return 1
		}
		return 0
	}
	prof, err := monitoring.ProfileByName(*profile)
	if err != nil {
		return usageError(fs, err)
	}
	if err := pool.Validate(); err != nil {
		return usageError(fs, err)
	}
	if !(*target > 0 && *target <= 1) {
		return usageError(fs, fmt.Errorf("-target-cpu %v: want 0 < target <= 1", *target))
	}
	setups, err := simulate.Select(simulate.Standard(simulate.Options{Profile: prof, Target: *target, Limits: pool.Limits(), BootDelay: pool.BootDelay}), *policies)
	if err != nil {
		return usageError(fs, err)
	}
	trs, err := simulate.LoadTraces(traces, stages, *scenario)
	if err != nil {
		return usageError(fs, err)
	}
	study := simulate.Study{Traces: trs, Pool: pool, Setups: setups, Profile: prof.Name, Target: *target, OutDir: *out}
	if err := study.Run(ctx, stdout); err != nil {
		fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
		return 1
	}
	return 0
}
