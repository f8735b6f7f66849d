package main

import (
	"context"
	"flag"
	"io"
	"net"

	"tidepool/internal/app"
)

func runApp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tidepool app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":8080", "address to serve on")
	var cfg app.Config
	fs.StringVar(&cfg.InstanceID, "instance-id", "", "instance id reported in responses and metrics (default \"local\")")
	fs.DurationVar(&cfg.Work, "work", app.DefaultWork, "CPU time burned per GET / request (negative: none)")
	fs.DurationVar(&cfg.LoadDuration, "load-duration", app.DefaultLoadDuration, "how long GET /load keeps all CPUs busy")
	fs.DurationVar(&cfg.Drain, "drain", app.DefaultDrain, "after SIGTERM, keep serving this long while /health answers 503 (negative: none)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", app.DefaultShutdownTimeout, "after the drain period, wait this long for in-flight requests")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "requests burning CPU at once; more wait in arrival order (default GOMAXPROCS)")
	fs.StringVar(&cfg.DrainToken, "drain-token", "", "credential POST /drain and DELETE /drain require as 'Authorization: Bearer TOKEN' (empty: both refused with 403)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if code, ok := parseFlags(fs, args, map[string][]string{
		"listen":           {"TIDEPOOL_APP_LISTEN"},
		"instance-id":      {"TIDEPOOL_INSTANCE_ID"},
		"work":             {"TIDEPOOL_APP_WORK"},
		"load-duration":    {"TIDEPOOL_APP_LOAD_DURATION"},
		"drain":            {"TIDEPOOL_APP_DRAIN"},
		"shutdown-timeout": {"TIDEPOOL_APP_SHUTDOWN_TIMEOUT"},
		"drain-token":      {"TIDEPOOL_APP_DRAIN_TOKEN"},
		"concurrency":      {"TIDEPOOL_APP_CONCURRENCY"},
		"log-level":        {"TIDEPOOL_LOG_LEVEL"},
	}); !ok {
		return code
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return usageError(fs, err)
	}
	if err := checkListen("listen", *listen); err != nil {
		return usageError(fs, err)
	}
	cfg.Logger = logger
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("cannot listen", "addr", *listen, "err", err)
		return 1
	}
	if err := app.New(cfg).Run(ctx, ln); err != nil {
		logger.Error("app failed", "err", err)
		return 1
	}
	return 0
}
