package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/discover"
	"tidepool/internal/exoclient"
	"tidepool/internal/outpath"
)

// discoverEnv maps discover's flags to the environment variables that set them.
var discoverEnv = map[string][]string{
	"key":            {"EXOSCALE_KEY", "EXOSCALE_API_KEY"},
	"secret":         {"EXOSCALE_SECRET", "EXOSCALE_API_SECRET"},
	"zone":           {"EXOSCALE_ZONE"},
	"endpoint":       {"EXOSCALE_API_ENDPOINT"},
	"pool-id":        {"EXOSCALE_INSTANCEPOOL_ID"},
	"pool-name":      {"EXOSCALE_INSTANCEPOOL_NAME"},
	"port":           {"TARGET_PORT"},
	"output":         {"TIDEPOOL_DISCOVER_OUTPUT"},
	"interval":       {"TIDEPOOL_DISCOVER_INTERVAL"},
	"api-timeout":    {"TIDEPOOL_DISCOVER_API_TIMEOUT"},
	"min-backoff":    {"TIDEPOOL_DISCOVER_MIN_BACKOFF"},
	"max-backoff":    {"TIDEPOOL_DISCOVER_MAX_BACKOFF"},
	"http-sd-listen": {"TIDEPOOL_DISCOVER_LISTEN"},
	"log-level":      {"TIDEPOOL_LOG_LEVEL"},
}

// discoverShutdownTimeout bounds closing the HTTP server after SIGTERM, well
// inside the 10 s a supervisor gives before SIGKILL.
const discoverShutdownTimeout = 5 * time.Second

func runDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tidepool discover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "Exoscale API key")
	secret := fs.String("secret", "", "Exoscale API secret")
	zone := fs.String("zone", "ch-gva-2", "Exoscale zone (zone label; picks the API endpoint unless -endpoint is set)")
	endpoint := fs.String("endpoint", "", "API endpoint URL, e.g. http://127.0.0.1:8580/v2 for the local cloud (default https://api-ZONE.exoscale.com/v2)")
	poolID := fs.String("pool-id", "", "instance pool ID (this or -pool-name)")
	poolName := fs.String("pool-name", "", "instance pool name (this or -pool-id)")
	port := fs.Int("port", discover.DefaultPort, "scrape port of every member (9100: node exporter)")
	output := fs.String("output", discover.DefaultOutput, "file_sd JSON file to keep up to date")
	interval := fs.Duration("interval", discover.DefaultInterval, "time between refreshes")
	apiTimeout := fs.Duration("api-timeout", discover.DefaultTimeout, "deadline of one refresh's API calls")
	minBackoff := fs.Duration("min-backoff", discover.DefaultMinBackoff, "wait after the first failed refresh (doubles per failure)")
	maxBackoff := fs.Duration("max-backoff", discover.DefaultMaxBackoff, "longest wait between failed refreshes")
	listen := fs.String("http-sd-listen", ":9911", "address serving GET /targets (http_sd_configs), /metrics and /health")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if code, ok := parseFlags(fs, args, discoverEnv); !ok {
		return code
	}
	usageErr := func(format string, a ...any) int { return usageError(fs, fmt.Errorf(format, a...)) }
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return usageError(fs, err)
	}
	switch {
	case *key == "" || *secret == "":
		return usageErr("API credentials missing: set EXOSCALE_KEY and EXOSCALE_SECRET (or -key and -secret)")
	case *poolID == "" && *poolName == "":
		return usageErr("no instance pool: set EXOSCALE_INSTANCEPOOL_ID (or -pool-id) or -pool-name")
	case *poolID != "" && *poolName != "":
		return usageErr("both pool ID %q and pool name %q set: give one", *poolID, *poolName)
	case *port < 1 || *port > 65535:
		return usageErr("-port %d out of range 1-65535", *port)
	case *interval <= 0 || *apiTimeout <= 0 || *minBackoff <= 0 || *maxBackoff <= 0:
		return usageErr("-interval, -api-timeout, -min-backoff and -max-backoff must be positive")
	case *zone == "" && *endpoint == "":
		return usageErr("set -zone (EXOSCALE_ZONE) or -endpoint (EXOSCALE_API_ENDPOINT)")
	}
	if *poolID != "" {
		if _, err := v3.ParseUUID(*poolID); err != nil {
			return usageErr("pool ID %q is not a UUID: %v", *poolID, err)
		}
	}
	if err := checkListen("http-sd-listen", *listen); err != nil {
		return usageError(fs, err)
	}
	out, err := outpath.File(*output)
	if err != nil {
		return usageErr("-output: %w", err)
	}
	// A plain HTTP client: the agent's own loop does the retrying, with
	// backoff, instead of egoscale's default retrying client.
	client, err := exoclient.New(exoclient.Config{
		Key: *key, Secret: *secret, Zone: *zone, Endpoint: *endpoint,
		Timeout: *apiTimeout, UserAgent: "tidepool-discover",
	})
	if err != nil {
		return usageError(fs, err)
	}
	agent, err := discover.New(discover.Config{
		Client:     client,
		PoolID:     *poolID,
		PoolName:   *poolName,
		Zone:       *zone,
		Port:       *port,
		Output:     out,
		Interval:   *interval,
		Timeout:    *apiTimeout,
		MinBackoff: *minBackoff,
		MaxBackoff: *maxBackoff,
		Logger:     log,
	})
	if err != nil {
		return usageError(fs, err)
	}
	if err := outpath.Create(filepath.Dir(out)); err != nil {
		return usageErr("-output: %w", err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "tidepool discover: listen: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: agent.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			cancel() // stop the agent too: a silent SD endpoint is a failure
		}
		serveErr <- err
	}()
	log.Info("discover started", "http_addr", ln.Addr().String(), "endpoint", *endpoint,
		"pool_id", *poolID, "pool_name", *poolName, "output", out, "interval", *interval)

	code := 0
	if err := agent.Run(ctx); err != nil {
		log.Error("discover failed", "err", err)
		code = 1
	}
	shutCtx, shutCancel := context.WithTimeout(context.Background(), discoverShutdownTimeout)
	defer shutCancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Error("http shutdown", "err", err)
		code = 1
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		log.Error("http server failed", "err", err)
		code = 1
	}
	log.Info("discover stopped", "exit_code", code)
	return code
}
