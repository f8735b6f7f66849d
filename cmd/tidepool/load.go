package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"tidepool/internal/loadgen"
	"tidepool/internal/outpath"
)

// loadStages is the repeatable --stage flag: each value is parsed (and
// rejected with the expected syntax) as soon as it is set.
type loadStages []loadgen.Stage

func (s *loadStages) String() string {
	parts := make([]string, len(*s))
	for i, st := range *s {
		parts[i] = st.String()
	}
	return strings.Join(parts, " ")
}

func (s *loadStages) Set(v string) error {
	st, err := loadgen.ParseStage(v)
	if err != nil {
		return err
	}
	*s = append(*s, st)
	return nil
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tidepool load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var stages loadStages
	cfg := loadgen.Config{}
	fs.StringVar(&cfg.Target, "target", "", "URL to load, http:// or https:// (required), e.g. the NLB address")
	fs.StringVar(&cfg.Method, "method", loadgen.DefaultMethod, "HTTP method (requests have no body)")
	fs.Var(&stages, "stage", "schedule `stage`, repeatable, played in order:\n"+
		"ramp:FROM-TO:DURATION, hold:RATE:DURATION, spike:BASE-PEAK/WIDTH:DURATION,\n"+
		"sine:MEAN±AMPLITUDE/PERIOD:DURATION (rates in req/s), e.g. ramp:0-100:30s")
	scenario := fs.String("scenario", "", "YAML or JSON file listing the stages (instead of --stage)")
	outCSV := fs.String("out-csv", "", "write the per-second timeline as CSV to this file")
	outJSON := fs.String("out-json", "", "write the summary and per-second timeline as JSON to this file")
	fs.DurationVar(&cfg.Timeout, "timeout", loadgen.DefaultTimeout, "per-request timeout, from send to the end of the body")
	fs.IntVar(&cfg.MaxWorkers, "workers", loadgen.DefaultMaxWorkers, "maximum requests in flight at once")
	fs.DurationVar(&cfg.LateAfter, "late-after", loadgen.DefaultLateAfter, "count a request as late when it is sent more than this after its planned time")
	keepAlive := fs.Bool("keepalive", true, "reuse connections (HTTP keep-alive); -keepalive=false opens one per request")
	quiet := fs.Bool("quiet", false, "do not print a progress line per second")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if code, ok := parseFlags(fs, args, map[string][]string{
		"target":    {"TIDEPOOL_LOAD_TARGET"},
		"scenario":  {"TIDEPOOL_LOAD_SCENARIO"},
		"timeout":   {"TIDEPOOL_LOAD_TIMEOUT"},
		"workers":   {"TIDEPOOL_LOAD_WORKERS"},
		"out-csv":   {"TIDEPOOL_LOAD_OUT_CSV"},
		"out-json":  {"TIDEPOOL_LOAD_OUT_JSON"},
		"log-level": {"TIDEPOOL_LOG_LEVEL"},
	}); !ok {
		return code
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return usageError(fs, err)
	}
	cfg.Logger = logger
	cfg.DisableKeepAlive = !*keepAlive
	switch {
	case cfg.Target == "":
		return usageError(fs, errors.New("-target is required"))
	case len(stages) > 0 && *scenario != "":
		return usageError(fs, errors.New("give either -stage or -scenario, not both"))
	case len(stages) == 0 && *scenario == "":
		return usageError(fs, errors.New("no schedule: give -stage (repeatable) or -scenario"))
	case cfg.Timeout <= 0:
		return usageError(fs, fmt.Errorf("-timeout must be > 0, got %s", cfg.Timeout))
	case cfg.MaxWorkers <= 0:
		return usageError(fs, fmt.Errorf("-workers must be > 0, got %d", cfg.MaxWorkers))
	case cfg.LateAfter <= 0:
		return usageError(fs, fmt.Errorf("-late-after must be > 0, got %s", cfg.LateAfter))
	}
	cfg.Stages = stages
	if *scenario != "" {
		if cfg.Stages, err = loadgen.LoadScenario(*scenario); err != nil {
			return usageError(fs, err)
		}
	}
	// Fail before a long run, not after it, if a result file cannot be written.
	for _, o := range []struct {
		name string
		path *string
	}{{"out-csv", outCSV}, {"out-json", outJSON}} {
		if *o.path == "" {
			continue
		}
		if *o.path, err = outpath.File(*o.path); err != nil {
			return usageError(fs, fmt.Errorf("-%s: %w", o.name, err))
		}
	}
	if err := checkHTTPURL("target", cfg.Target); err != nil {
		return usageError(fs, err)
	}
	if _, err := loadgen.NewSchedule(cfg.Stages); err != nil {
		return usageError(fs, err)
	}
	for _, p := range []string{*outCSV, *outJSON} {
		if p == "" {
			continue
		}
		if err := outpath.Create(filepath.Dir(p)); err != nil {
			return usageError(fs, err)
		}
	}

	var onSecond func(loadgen.Second)
	if !*quiet {
		onSecond = func(s loadgen.Second) { fmt.Fprintln(stderr, "load:", loadgen.FormatSecond(s)) }
	}
	sum, tl, err := loadgen.Run(ctx, cfg, onSecond)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	if sum.Cancelled {
		fmt.Fprintln(stderr, "load: interrupted, writing partial results")
	}

	if err := loadgen.Save(stdout, *outCSV, *outJSON, tl, sum); err != nil {
		logger.Error("cannot write results", "err", err)
		return 1
	}
	return 0
}
