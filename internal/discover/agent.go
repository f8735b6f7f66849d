// Package discover keeps Prometheus' scrape targets equal to the members of an
// Exoscale instance pool. An Agent polls the pool through the egoscale v3
// client, writes the members as a Prometheus file_sd JSON file (atomically,
// and only when it changes) and serves the same document for http_sd_configs,
// along with its own /metrics and /health.
//
// The refresh loop follows Prometheus' discovery/refresh: refresh at once,
// then every Interval; ctx cancellation ends it at once, without logging. A failed refresh (timeout, 5xx, bad credentials,
// malformed answer) publishes nothing: the last good file and HTTP document
// stay as they are, because stale targets are better than partial or wrong
// ones. Failures are logged, counted by kind, and retried with exponential
// backoff (MinBackoff doubling up to MaxBackoff) until one succeeds.
//
//	start ──> refresh ──ok──> publish (if changed) ──> wait Interval ──┐
//	             ^    └─fail n─> keep last good ──> wait Backoff(n) ───┤
//	             └──────────────────────────────────────────────────────┘
//
// It owns the service discovery agent and must not import the local cloud (it
// reads any cloud through egoscale), the autoscaler or anything that starts
// processes.
package discover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tidepool/internal/atomicfile"
	"tidepool/internal/backoff"
)

// Defaults for the zero values of Config.
const (
	DefaultPort       = 9100 // node exporter
	DefaultOutput     = "/srv/service-discovery/config.json"
	DefaultInterval   = 10 * time.Second
	DefaultTimeout    = 10 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// FileMode is the mode of the published file: world-readable, since
	// Prometheus usually runs as another user.
	FileMode = 0o644
)

// Clock is the agent's source of time; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures an Agent. Client and one of PoolID or PoolName are
// required; every other zero value has the documented default.
type Config struct {
	// Client talks to the Exoscale API (typically a *v3.Client).
	Client Client
	// PoolID selects the pool by ID; it wins over PoolName.
	PoolID string
	// PoolName selects the pool by name when PoolID is "".
	PoolName string
	// Zone is the value of the zone label; "" leaves the label out.
	Zone string
	// Port is the scrape port appended to each member's IP; 0 means DefaultPort.
	Port int
	// Output is the file_sd file; "" means DefaultOutput. Its directory is
	// created by Run if missing.
	Output string
	// Interval is the time between successful refreshes; 0 means DefaultInterval.
	Interval time.Duration
	// Timeout bounds one refresh (all its API calls); 0 means DefaultTimeout.
	Timeout time.Duration
	// MinBackoff is the wait after the first failed refresh, doubled after each
	// further failure up to MaxBackoff; 0 means DefaultMinBackoff / DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives refresh failures and target changes; nil discards.
	Logger *slog.Logger
	// Clock is the time source; nil means the real clock.
	Clock Clock
}

// Agent publishes the members of one instance pool as Prometheus targets.
// Create it with New, then call Run once; Handler may be served at any time.
type Agent struct {
	client     Client
	poolID     string
	poolName   string
	zone       string
	port       int
	output     string
	interval   time.Duration
	timeout    time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	log        *slog.Logger
	clock      Clock

	// doc is the last good encoded document (nil before the first success);
	// it backs the HTTP SD endpoint.
	doc atomic.Pointer[[]byte]

	mu      sync.Mutex // guards targets
	targets []string   // sorted addresses last published, for change logs

	reg        *prometheus.Registry
	refreshes  prometheus.Counter
	errCount   *prometheus.CounterVec
	numTargets prometheus.Gauge
	lastOK     prometheus.Gauge
	writes     prometheus.Counter
}

// New checks cfg and returns an Agent. It does no I/O.
func New(cfg Config) (*Agent, error) {
	if cfg.Client == nil {
		return nil, errors.New("discover: no API client")
	}
	if cfg.PoolID == "" && cfg.PoolName == "" {
		return nil, errors.New("discover: no instance pool: set a pool ID or a pool name")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("discover: port %d out of range 1-65535", cfg.Port)
	}
	for name, d := range map[string]time.Duration{"interval": cfg.Interval, "timeout": cfg.Timeout,
		"min backoff": cfg.MinBackoff, "max backoff": cfg.MaxBackoff} {
		if d < 0 {
			return nil, fmt.Errorf("discover: negative %s %v", name, d)
		}
	}
	a := &Agent{
		client:     cfg.Client,
		poolID:     cfg.PoolID,
		poolName:   cfg.PoolName,
		zone:       cfg.Zone,
		port:       cmpOr(cfg.Port, DefaultPort),
		output:     cmpOr(cfg.Output, DefaultOutput),
		interval:   cmpOr(cfg.Interval, DefaultInterval),
		timeout:    cmpOr(cfg.Timeout, DefaultTimeout),
		minBackoff: cmpOr(cfg.MinBackoff, DefaultMinBackoff),
		maxBackoff: cmpOr(cfg.MaxBackoff, DefaultMaxBackoff),
		log:        cfg.Logger,
		clock:      cfg.Clock,
	}
	if a.maxBackoff < a.minBackoff {
		return nil, fmt.Errorf("discover: max backoff %v below min backoff %v", a.maxBackoff, a.minBackoff)
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.clock == nil {
		a.clock = realClock{}
	}
	a.initMetrics()
	return a, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (a *Agent) initMetrics() {
	a.reg = prometheus.NewRegistry()
	a.refreshes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tidepool_discover_refreshes_total",
		Help: "Refresh attempts (API poll and publish), successful or not.",
	})
	a.errCount = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidepool_discover_refresh_errors_total",
		Help: "Failed refreshes by kind (timeout, auth, not_found, server, network, response, write, other).",
	}, []string{"kind"})
	a.numTargets = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tidepool_discover_targets",
		Help: "Targets in the last successfully published document.",
	})
	a.lastOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tidepool_discover_last_success_timestamp_seconds",
		Help: "Unix time of the last successful refresh (0: none yet).",
	})
	a.writes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tidepool_discover_file_writes_total",
		Help: "Times the file_sd file was rewritten because its content changed.",
	})
	for _, k := range errorKinds {
		a.errCount.WithLabelValues(k)
	}
	a.reg.MustRegister(a.refreshes, a.errCount, a.numTargets, a.lastOK, a.writes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Run refreshes at once, then again Interval after each successful refresh
// (backoff.Delay after a failed one), until ctx is cancelled; then it returns nil. It blocks. It
// returns an error only if the output directory cannot be created; API and
// write failures are retried, never returned. Call Run once.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(a.output), 0o755); err != nil {
		return fmt.Errorf("discover: create output directory: %w", err)
	}
	failures := 0
	for {
		delay := a.interval
		if err := a.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			delay = backoff.Delay(failures, a.minBackoff, a.maxBackoff)
			a.log.Error("refresh failed, keeping last good targets",
				"err", err, "kind", errorKind(err), "failures", failures, "retry_in", delay)
		} else if failures > 0 {
			a.log.Info("refresh recovered", "after_failures", failures)
			failures = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.clock.After(delay):
		}
	}
}

// Refresh polls the pool once and publishes the result: the HTTP SD document
// first, then the file (rewritten only if its content changed). On an API
// error it publishes nothing. Run calls it; it is exported for one-shot use
// and tests. Safe for concurrent use with Handler, not with itself.
func (a *Agent) Refresh(ctx context.Context) error {
	a.refreshes.Inc()
	err := a.refresh(ctx)
	if err != nil && ctx.Err() == nil {
		a.errCount.WithLabelValues(errorKind(err)).Inc()
	}
	return err
}

func (a *Agent) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	pool, members, err := fetch(ctx, a.client, a.poolID, a.poolName, a.zone)
	if err != nil {
		return err
	}
	groups, skipped := Build(pool, members, a.port)
	for _, s := range skipped {
		a.log.Debug("member not a target", "instance_id", s.InstanceID, "reason", s.Reason)
	}
	doc, err := Encode(groups)
	if err != nil {
		return err
	}
	a.doc.Store(&doc)
	changed, err := atomicfile.WriteIfChanged(a.output, doc, FileMode)
	if changed {
		a.writes.Inc()
	}
	if err != nil {
		return &publishError{err}
	}
	targets := targetList(groups)
	a.mu.Lock()
	before := a.targets
	a.targets = targets
	a.mu.Unlock()
	if added, removed := diff(before, targets); len(added) > 0 || len(removed) > 0 {
		a.log.Info("targets changed",
			"pool_id", pool.ID, "from", len(before), "to", len(targets), "added", added, "removed", removed)
	}
	a.numTargets.Set(float64(len(targets)))
	a.lastOK.Set(float64(a.clock.Now().UnixNano()) / 1e9)
	return nil
}

// Handler serves:
//
//	GET /targets  the last good target groups as JSON, for http_sd_configs
//	              (503 until the first successful refresh, so Prometheus keeps
//	              what it has rather than dropping every target)
//	GET /metrics  the agent's Prometheus metrics
//	GET /health   200 "OK" while the process runs
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /targets", func(w http.ResponseWriter, r *http.Request) {
		doc := a.doc.Load()
		if doc == nil {
			http.Error(w, "no successful refresh yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*doc) //nolint:errcheck // the client went away; nothing to do
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("OK\n")) //nolint:errcheck // the client went away; nothing to do
	})
	return mux
}
