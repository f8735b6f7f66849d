package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"strings"
	"time"

	"tidepool/internal/autoscaler"
	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/exoclient"
	"tidepool/internal/outpath"
)

// autoscalerEnv maps autoscaler's flags to the environment variables that set
// them (the course's variables first).
var autoscalerEnv = map[string][]string{
	"listen":            {"LISTEN_PORT", "TIDEPOOL_AUTOSCALER_LISTEN"},
	"key":               {"EXOSCALE_KEY", "EXOSCALE_API_KEY"},
	"secret":            {"EXOSCALE_SECRET", "EXOSCALE_API_SECRET"},
	"zone":              {"EXOSCALE_ZONE"},
	"endpoint":          {"EXOSCALE_API_ENDPOINT"},
	"pool":              {"EXOSCALE_INSTANCEPOOL_ID"},
	"tick":              {"TIDEPOOL_AUTOSCALER_TICK"},
	"min":               {"TIDEPOOL_AUTOSCALER_MIN"},
	"max":               {"TIDEPOOL_AUTOSCALER_MAX"},
	"cooldown":          {"TIDEPOOL_AUTOSCALER_COOLDOWN"},
	"warmup":            {"TIDEPOOL_AUTOSCALER_WARMUP"},
	"victim":            {"TIDEPOOL_AUTOSCALER_VICTIM"},
	"dry-run":           {"TIDEPOOL_AUTOSCALER_DRY_RUN"},
	"auth-token":        {"TIDEPOOL_AUTOSCALER_AUTH_TOKEN"},
	"basic-auth":        {"TIDEPOOL_AUTOSCALER_BASIC_AUTH"},
	"open-webhooks":     {"TIDEPOOL_AUTOSCALER_OPEN_WEBHOOKS"},
	"max-body":          {"TIDEPOOL_AUTOSCALER_MAX_BODY"},
	"label":             {"TIDEPOOL_AUTOSCALER_LABEL"},
	"annotation":        {"TIDEPOOL_AUTOSCALER_ANNOTATION"},
	"state-file":        {"TIDEPOOL_AUTOSCALER_STATE_FILE"},
	"nlb-id":            {"TIDEPOOL_AUTOSCALER_NLB_ID"},
	"nlb-service-id":    {"TIDEPOOL_AUTOSCALER_NLB_SERVICE_ID"},
	"app-port":          {"TIDEPOOL_AUTOSCALER_APP_PORT"},
	"drain-token":       {"TIDEPOOL_APP_DRAIN_TOKEN"},
	"drain-timeout":     {"TIDEPOOL_AUTOSCALER_DRAIN_TIMEOUT"},
	"drain-grace":       {"TIDEPOOL_AUTOSCALER_DRAIN_GRACE"},
	"retry-attempts":    {"TIDEPOOL_AUTOSCALER_RETRY_ATTEMPTS"},
	"retry-base":        {"TIDEPOOL_AUTOSCALER_RETRY_BASE"},
	"operation-timeout": {"TIDEPOOL_AUTOSCALER_OPERATION_TIMEOUT"},
	"shutdown-timeout":  {"TIDEPOOL_AUTOSCALER_SHUTDOWN_TIMEOUT"},
	"log-level":         {"TIDEPOOL_LOG_LEVEL"},
	"prometheus-url":    {"TIDEPOOL_AUTOSCALER_PROMETHEUS_URL"},
	"load-step":         {"TIDEPOOL_AUTOSCALER_LOAD_STEP"},
}

// defaultScaleDownStabilization is the autoscaler's -scale-down-stabilization
// default: Kubernetes' 5 minutes, five seed ticks.
const defaultScaleDownStabilization = 5 * time.Minute

func runAutoscaler(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tidepool autoscaler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg autoscaler.Config
	client := exoclient.Config{UserAgent: "tidepool-autoscaler"}
	var limits policy.Limits
	listen := fs.String("listen", autoscaler.DefaultAddr, "HTTP listen address; a bare port number N means 127.0.0.1:N (:N, every interface, with -open-webhooks); beyond loopback the webhooks need -auth-token or -basic-auth")
	fs.StringVar(&client.Key, "key", "", "Exoscale API key (required)")
	fs.StringVar(&client.Secret, "secret", "", "Exoscale API secret (required)")
	fs.StringVar(&client.Zone, "zone", exoclient.DefaultZone, "Exoscale zone; selects the endpoint https://api-ZONE.exoscale.com/v2")
	fs.StringVar(&client.Endpoint, "endpoint", "", "Exoscale API endpoint, overriding the zone's (e.g. http://127.0.0.1:8580/v2 for the local cloud)")
	fs.StringVar(&cfg.PoolID, "pool", "", "ID of the instance pool to scale (required)")
	fs.DurationVar(&cfg.Interval, "tick", autoscaler.DefaultInterval, "how often the policy decides (default 15s with -policy predictive)")
	fs.IntVar(&limits.Min, "min", 1, "smallest pool size (at least 1)")
	fs.IntVar(&limits.Max, "max", 10, "largest pool size")
	fs.DurationVar(&limits.Cooldown, "cooldown", 0, "after a change, hold further changes this long (0: none)")
	fs.DurationVar(&limits.Warmup, "warmup", 0, "hold changes while a member is younger than this (0: none)")
	victim := fs.String("victim", string(policy.Newest), "which member a scale-in evicts: newest or oldest")
	fs.BoolVar(&cfg.DryRun, "dry-run", false, "log and record decisions without changing the pool")
	fs.StringVar(&cfg.AuthToken, "auth-token", "", "if set, webhooks accept 'Authorization: Bearer TOKEN'")
	fs.StringVar(&cfg.BasicAuth, "basic-auth", "", "if set as USER:PASSWORD, webhooks accept this HTTP basic auth")
	fs.BoolVar(&cfg.OpenWebhooks, "open-webhooks", false, "the course's open contract: GET /up and GET /down count, no credentials on any address (logged as a warning; excludes -auth-token and -basic-auth)")
	fs.Int64Var(&cfg.MaxBody, "max-body", autoscaler.DefaultMaxBody, "largest webhook body in bytes (larger: 413)")
	fs.StringVar(&cfg.DirectionLabel, "label", autoscaler.DefaultDirectionLabel, "alert label with the direction (up or down) on /webhook")
	fs.StringVar(&cfg.DirectionAnnotation, "annotation", autoscaler.DefaultDirectionLabel, "alert annotation read when the label is absent")
	fs.StringVar(&cfg.StateFile, "state-file", "", "file keeping the last scaling time and pending signals across restarts (empty: none)")
	fs.StringVar(&cfg.NLBID, "nlb-id", "", "network load balancer in front of the pool (with -nlb-service-id): scale-in waits for its health check to fail")
	fs.StringVar(&cfg.NLBServiceID, "nlb-service-id", "", "service of -nlb-id forwarding to the pool")
	fs.IntVar(&cfg.AppPort, "app-port", 0, "member app port for POST /drain (0: the NLB service's target port, else 8080)")
	fs.StringVar(&cfg.DrainToken, "drain-token", "", "bearer token sent with POST /drain")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", autoscaler.DefaultDrainTimeout, "longest wait for the NLB to report a drained member failing")
	fs.DurationVar(&cfg.DrainGrace, "drain-grace", autoscaler.DefaultDrainGrace, "wait for in-flight requests after a member is out of rotation (negative: none)")
	fs.IntVar(&cfg.RetryAttempts, "retry-attempts", autoscaler.DefaultRetryAttempts, "attempts of a failed cloud step")
	fs.DurationVar(&cfg.RetryBase, "retry-base", autoscaler.DefaultRetryBase, "first delay between attempts (doubles each time)")
	fs.DurationVar(&cfg.OperationTimeout, "operation-timeout", autoscaler.DefaultOperationTimeout, "longest wait for a cloud operation")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", autoscaler.DefaultShutdownTimeout, "on SIGTERM, how long a change already sent may still be waited for")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	var pf policyFlags
	pf.register(fs, defaultScaleDownStabilization)
	promURL := fs.String("prometheus-url", "", "Prometheus base URL the target-tracking and predictive policies read the pool's metrics from (required with them)")
	loadStep := fs.Duration("load-step", autoscaler.DefaultLoadStep, "predictive: step of the arrival history read from Prometheus, the recording rules' evaluation (and scrape) interval")
	env := maps.Clone(autoscalerEnv)
	maps.Copy(env, pf.env("TIDEPOOL_AUTOSCALER_"))
	if code, ok := parseFlags(fs, args, env); !ok {
		return code
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return usageError(fs, err)
	}
	cfg.Addr = listenAddr(*listen, cfg.OpenWebhooks)
	if err := checkListen("listen", cfg.Addr); err != nil {
		return usageError(fs, err)
	}
	if limits.Victims, err = policy.ParseVictimOrder(*victim); err != nil {
		return usageError(fs, err)
	}
	if err := checkAutoscalerFlags(cfg, client, limits); err != nil {
		return usageError(fs, err)
	}
	if pf.name == policyPredictive && !flagSet(fs, "tick") {
		cfg.Interval = policy.PredictiveTick
	}
	pf.tick = cfg.Interval
	if cfg.Policy, err = pf.build(limits); err != nil {
		return usageError(fs, err)
	}
	switch {
	case (pf.name == policyTargetTracking || pf.name == policyPredictive) && *promURL == "":
		return usageError(fs, fmt.Errorf("-policy %s needs -prometheus-url", pf.name))
	case *loadStep <= 0:
		return usageError(fs, fmt.Errorf("-load-step %s must be positive", *loadStep))
	case *promURL != "":
		if err := checkHTTPURL("prometheus-url", *promURL); err != nil {
			return usageError(fs, err)
		}
		cfg.Metrics = autoscaler.PrometheusMetrics{URL: strings.TrimRight(*promURL, "/"), Load: pf.loadQuery(*loadStep)}
	}
	if cfg.StateFile != "" {
		if cfg.StateFile, err = outpath.File(cfg.StateFile); err != nil {
			return usageError(fs, fmt.Errorf("-state-file: %w", err))
		}
	}
	if cfg.Cloud, err = exoclient.New(client); err != nil {
		return usageError(fs, err)
	}
	if err := cfg.Validate(); err != nil {
		return usageError(fs, err)
	}
	if cfg.StateFile != "" {
		if err := outpath.Create(filepath.Dir(cfg.StateFile)); err != nil {
			return usageError(fs, fmt.Errorf("-state-file: %w", err))
		}
	}
	cfg.Logger = logger
	a, err := autoscaler.New(cfg)
	if err != nil {
		logger.Error("cannot start the autoscaler", "err", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		logger.Error("autoscaler failed", "err", err)
		return 1
	}
	return 0
}

// listenAddr turns LISTEN_PORT's bare port number into "127.0.0.1:PORT",
// or ":PORT" (every interface, the course's contract) when open. A number
// out of range is kept for checkListen to refuse.
func listenAddr(s string, open bool) string {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		if open {
			return ":" + s
		}
		return "127.0.0.1:" + s
	}
	return s
}

func checkAutoscalerFlags(cfg autoscaler.Config, client exoclient.Config, limits policy.Limits) error {
	switch {
	case client.Key == "" || client.Secret == "":
		return errors.New("-key and -secret (EXOSCALE_KEY, EXOSCALE_SECRET) are required")
	case cfg.PoolID == "":
		return errors.New("-pool (EXOSCALE_INSTANCEPOOL_ID) is required")
	case limits.Min < 1:
		return fmt.Errorf("-min %d: the pool never goes below 1", limits.Min)
	case limits.Max < limits.Min:
		return fmt.Errorf("-max %d is below -min %d", limits.Max, limits.Min)
	case cfg.Interval <= 0:
		return fmt.Errorf("-tick %s must be positive", cfg.Interval)
	case cfg.MaxBody <= 0:
		return fmt.Errorf("-max-body %d must be positive", cfg.MaxBody)
	case cfg.OpenWebhooks && (cfg.AuthToken != "" || cfg.BasicAuth != ""):
		return errors.New("-open-webhooks needs no credentials: drop -auth-token / -basic-auth, or the open contract")
	case cfg.ShutdownTimeout > 6*time.Second:
		return fmt.Errorf("-shutdown-timeout %s: keep it at most 6s so SIGTERM exits within 10s", cfg.ShutdownTimeout)
	}
	return limits.Validate()
}
