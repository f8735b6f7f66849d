package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"tidepool/internal/bench"
	"tidepool/internal/outpath"
)

// benchRates is the --rates flag: a comma-separated list of req/s.
type benchRates []float64

func (r *benchRates) String() string {
	parts := make([]string, len(*r))
	for i, v := range *r {
		parts[i] = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (r *benchRates) Set(s string) error {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v > 0) {
			return fmt.Errorf("rate %q: want a positive number of requests/s", f)
		}
		out = append(out, v)
	}
	*r = out
	return nil
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// Hidden roles: the helper processes `tidepool bench` starts itself.
	if len(args) > 0 && bench.IsHelper(args[0]) {
		if err := bench.RunHelper(ctx, args, os.Stdin, stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}

	fs := flag.NewFlagSet("tidepool bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := bench.Config{}
	rates := benchRates(bench.DefaultRates)
	fs.Var(&rates, "rates", "fixed rates in requests/s, comma-separated (proxy comparison and generator accuracy)")
	fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "measuring time per connection mode, rate and target")
	fs.DurationVar(&cfg.Window, "window", bench.DefaultWindow, "length of one interleaved measuring window")
	fs.Float64Var(&cfg.SearchStart, "search-start", 0, "first rate of the highest-rate search (0 = the largest of -rates)")
	fs.Float64Var(&cfg.SearchMax, "search-max", bench.DefaultSearchMax, "highest rate the search tries")
	fs.DurationVar(&cfg.SearchDuration, "search-duration", bench.DefaultSearchDuration, "length of one search trial")
	searchTrials := fs.Int("search-trials", bench.DefaultSearchTrials, "most search trials per target (0 skips the search)")
	fs.DurationVar(&cfg.SearchP99Limit, "search-p99", bench.DefaultSearchP99Limit, "a search trial fails above this p99 latency (also the request timeout)")
	fs.Float64Var(&cfg.StallRate, "stall-rate", bench.DefaultStallRate, "rate of the stall test in requests/s")
	stall := fs.Duration("stall", bench.DefaultStall, "how long the server stalls in the stall test (0 skips it)")
	fs.IntVar(&cfg.StallWorkers, "stall-workers", bench.DefaultStallWorkers, "worker limit of the second stall run")
	fs.IntVar(&cfg.Backends, "backends", bench.DefaultBackends, "number of backend addresses behind the proxies")
	conns := fs.String("conns", strings.Join(bench.DefaultConns, ","), "connection modes, comma-separated: new (a connection per request, as the demo) and/or reuse (kept alive); the search runs in the first")
	fs.StringVar(&cfg.HAProxy, "haproxy", "", "haproxy executable (default: haproxy on PATH, else /usr/sbin/haproxy)")
	out := fs.String("out", "bench.json", "write the JSON report to this file, or to bench.json in this directory")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if code, ok := parseFlags(fs, args, map[string][]string{
		"rates":     {"TIDEPOOL_BENCH_RATES"},
		"duration":  {"TIDEPOOL_BENCH_DURATION"},
		"haproxy":   {"TIDEPOOL_BENCH_HAPROXY"},
		"out":       {"TIDEPOOL_BENCH_OUT"},
		"log-level": {"TIDEPOOL_LOG_LEVEL"},
	}); !ok {
		return code
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return usageError(fs, err)
	}
	if *quiet {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = logger
	cfg.Rates = rates
	cfg.Conns = strings.Split(*conns, ",")
	cfg.SearchTrials = *searchTrials
	if *searchTrials == 0 {
		cfg.SearchTrials = -1
	}
	cfg.Stall = *stall
	if *stall == 0 {
		cfg.Stall = -1
	}
	switch {
	case cfg.Duration <= 0 || cfg.Window <= 0 || cfg.SearchDuration <= 0 || cfg.SearchP99Limit <= 0:
		return usageError(fs, errors.New("-duration, -window, -search-duration and -search-p99 must be > 0"))
	case *searchTrials < 0 || *stall < 0 || cfg.StallWorkers <= 0 || cfg.Backends <= 0 || cfg.StallRate <= 0:
		return usageError(fs, errors.New("-search-trials and -stall must not be negative; -stall-workers, -stall-rate and -backends must be > 0"))
	}
	for _, c := range cfg.Conns {
		if c != bench.ConnNew && c != bench.ConnReuse {
			return usageError(fs, fmt.Errorf("-conns: %q is not %s or %s", c, bench.ConnNew, bench.ConnReuse))
		}
	}
	path, err := benchOutPath(*out)
	if err != nil {
		return usageError(fs, err)
	}
	if err := outpath.Create(filepath.Dir(path)); err != nil {
		return usageError(fs, err)
	}

	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		// A partial report is not published (nothing is saved).
		fmt.Fprintln(stderr, "tidepool bench:", err)
		return 1
	}
	code := 0
	if err := bench.WriteTable(stdout, rep); err != nil {
		fmt.Fprintln(stderr, "tidepool bench:", err)
		code = 1
	}
	if err := bench.SaveJSON(path, rep); err != nil {
		fmt.Fprintln(stderr, "tidepool bench: save report:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nreport saved to %s\n", path)
	return code
}

// benchOutPath resolves --out against the working directory: an existing
// directory gets bench.json inside it; anything else is the report file,
// whose directory must exist or be creatable (outpath.File).
func benchOutPath(out string) (string, error) {
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		out = filepath.Join(out, "bench.json")
	}
	p, err := outpath.File(out)
	if err != nil {
		return "", fmt.Errorf("-out: %w", err)
	}
	return p, nil
}
