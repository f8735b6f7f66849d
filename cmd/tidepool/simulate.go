package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tidepool/internal/atomicfile"
	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/demo"
	"tidepool/internal/loadgen"
	"tidepool/internal/monitoring"
	"tidepool/internal/outpath"
	"tidepool/internal/simulate"
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
	profile := fs.String("profile", "seed", "monitoring timing profile of the seed and target-tracking policies: seed or fast")
	policies := fs.String("policies", "all", "comma-separated policies to compare: "+strings.Join(setupNames(), ", "))
	var pool simulate.Pool
	fs.Float64Var(&pool.Capacity, "capacity", simulate.DefaultCapacity, "requests per second one member serves at 100% CPU")
	fs.Float64Var(&pool.SLO, "slo", simulate.DefaultSLO, "utilisation up to which a member meets the SLO; demand = the fewest members keeping it")
	fs.IntVar(&pool.Min, "min", 1, "smallest pool size")
	fs.IntVar(&pool.Max, "max", 40, "largest pool size (0: none)")
	fs.IntVar(&pool.Initial, "initial", 0, "pool size at the start (0: the demand at the start)")
	fs.DurationVar(&pool.BootDelay, "boot-delay", time.Minute, "time from a scale-up request to the new members serving")
	fs.DurationVar(&pool.DrainDelay, "drain-delay", 10*time.Second, "time a scale-in victim takes from leaving the load balancer to being gone")
	fs.DurationVar(&pool.Timeout, "timeout", 30*time.Second, "longest a request waits in a queue before it is dropped (0: no queue)")
	target := fs.Float64("target-cpu", policy.DefaultTargetCPU, "CPU target of the target-tracking, HPA-like and AWS-like policies")
	out := fs.String("out", "simulate-out", "directory for <trace>.png, results.md and results.csv (empty: print only)")
	writeTraces := fs.String("write-traces", "", "write the shipped traces as CSV files into this directory and exit")
	validate := fs.Bool("validate", false, "run the real local stack (tidepool demo) and the simulator on one small trace and compare the pool sizes (takes minutes)")
	validatePolicy := fs.String("validate-policy", "both", "with -validate: webhook, target-tracking or both")
	if code, ok := parseFlags(fs, args, map[string][]string{"out": {"TIDEPOOL_SIMULATE_OUT"}}); !ok {
		return code
	}
	if *validate && *out == "" {
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
	if *validate {
		return runValidate(ctx, *validatePolicy, *out, stdout, stderr)
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
	setups, err := simulate.Select(simulate.Standard(simulate.Options{Profile: prof, Target: *target, Limits: pool.Limits()}), *policies)
	if err != nil {
		return usageError(fs, err)
	}
	trs, err := loadTraces(traces, stages, *scenario)
	if err != nil {
		return usageError(fs, err)
	}

	var md, csv bytes.Buffer
	fmt.Fprintf(&md, "# tidepool simulate results\n\nProfile %s; %d policies; capacity %g req/s per member, SLO utilisation %.0f%%, pool %d..%d, boot %s, drain %s, request timeout %s, target CPU %.0f%%.\n\n",
		prof.Name, len(setups), pool.Capacity, pool.SLO*100, max(pool.Min, 1), pool.Max, pool.BootDelay, pool.DrainDelay, pool.Timeout, *target*100)
	started := time.Now()
	var results []simulate.Result
	for i, tr := range trs {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "tidepool simulate: interrupted")
			return 1
		}
		r, err := simulate.Compare(tr, pool, setups)
		if err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
			return 1
		}
		results = append(results, r)
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := r.WriteTable(stdout); err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
			return 1
		}
		if *out == "" {
			continue
		}
		r.WriteMarkdown(&md)
		fmt.Fprintf(&md, "![%s](%s.png)\n\n", tr.Name, tr.Name)
		r.WriteCSV(&csv, i == 0)
		var png bytes.Buffer
		if err := r.WriteChart(&png); err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: chart of %s: %v\n", tr.Name, err)
			return 1
		}
		if err := writeOut(*out, tr.Name+".png", png.Bytes()); err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
			return 1
		}
	}
	if len(results) > 1 {
		fmt.Fprintln(stdout)
		simulate.WriteSummary(stdout, results, false)
		simulate.WriteSummary(&md, results, true)
	}
	if *out != "" {
		for name, b := range map[string][]byte{"results.md": md.Bytes(), "results.csv": csv.Bytes()} {
			if err := writeOut(*out, name, b); err != nil {
				fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
				return 1
			}
		}
		fmt.Fprintf(stdout, "\n%d traces simulated in %s; charts, results.md and results.csv in %s\n", len(trs), time.Since(started).Round(time.Millisecond), *out)
	}
	return 0
}

func setupNames() []string {
	var names []string
	for _, s := range simulate.Standard(simulate.Options{}) {
		names = append(names, s.Name)
	}
	return names
}

// loadTraces returns the traces named by -trace, -stage and -scenario, or
// every shipped trace when none is given.
func loadTraces(names []string, stages []loadgen.Stage, scenario string) ([]simulate.Trace, error) {
	if len(stages) > 0 && scenario != "" {
		return nil, errors.New("give either -stage or -scenario, not both")
	}
	var out []simulate.Trace
	for _, n := range names {
		if tr, err := simulate.Builtin(n); err == nil {
			out = append(out, tr)
			continue
		}
		if _, err := os.Stat(n); err != nil {
			return nil, fmt.Errorf("-trace %q is neither a shipped trace (%s) nor a readable file", n, strings.Join(simulate.BuiltinNames(), ", "))
		}
		tr, err := simulate.LoadCSV(n)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	name := "stages"
	if scenario != "" {
		st, err := loadgen.LoadScenario(scenario)
		if err != nil {
			return nil, err
		}
		stages, name = st, strings.TrimSuffix(filepath.Base(scenario), filepath.Ext(scenario))
	}
	if len(stages) > 0 {
		tr, err := simulate.FromStages(name, stages, time.Second)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	if len(out) == 0 {
		for _, n := range simulate.BuiltinNames() {
			tr, err := simulate.Builtin(n)
			if err != nil {
				return nil, err
			}
			out = append(out, tr)
		}
	}
	return out, nil
}

func writeOut(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, name), b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// runValidate runs Validate for one or both policies, writing
// validate-<policy>.png and the demo's report under dir (absolute).
func runValidate(ctx context.Context, which, dir string, stdout, stderr io.Writer) int {
	var pols []string
	switch which {
	case "both":
		pols = []string{"webhook", "target-tracking"}
	case "webhook", "target-tracking":
		pols = []string{which}
	default:
		fmt.Fprintf(stderr, "tidepool simulate: -validate-policy %q: want webhook, target-tracking or both\n", which)
		return 2
	}
	code := 0
	for _, p := range pols {
		fmt.Fprintf(stdout, "validation of the %s policy: running the demo (a few minutes) ...\n", p)
		v, err := simulate.Validate(ctx, simulate.ValidateConfig{Policy: p, Demo: demoForValidation(filepath.Join(dir, "validate-"+p), stdout)})
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "tidepool simulate: interrupted; everything the demo started has been stopped")
			return 1
		}
		if err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
			return 1
		}
		var png bytes.Buffer
		if err := v.WriteChart(&png); err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
			return 1
		}
		if err := writeOut(dir, "validate-"+p+".png", png.Bytes()); err != nil {
			fmt.Fprintf(stderr, "tidepool simulate: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, v.Summary())
		fmt.Fprintf(stdout, "figure: %s\n", filepath.Join(dir, "validate-"+p+".png"))
		if !v.OK {
			code = 1
		}
	}
	return code
}

// demoForValidation is the demo configuration of a validation run: its
// output directory and progress lines, and no live page.
func demoForValidation(dir string, progress io.Writer) demo.Config {
	return demo.Config{OutDir: dir, Out: progress, LiveAddr: demo.LiveOff}
}
