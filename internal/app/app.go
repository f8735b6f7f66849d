// Package app is the deliberately slow web application that runs on every
// pool member: each request to / burns a fixed amount of real CPU time, so the
// member's CPU usage rises with load exactly as node exporter would see it.
//
// Lifecycle: Run serves until its context is cancelled (SIGTERM), then drains:
// /health answers 503 at once, requests are still served for the drain period
// so a load balancer's health check can take the member out of rotation, and
// finally in-flight requests are finished and Run returns nil.
//
// While draining (after SIGTERM or POST /drain) every response carries
// "Connection: close", so a keep-alive client finishes the request it sent
// and opens its next connection through the load balancer, which no longer
// picks this member. Idle keep-alive connections are left open until the
// drain period is over (the load balancer has stopped sending and a grace
// period has passed): closing them at once would fail the request a client
// that does not retry sends on one at that moment.
//
// It owns what runs on every pool member (the work, /health, /metrics, the
// drain) and must not import any other tidepool package: the same binary runs
// on a real VM.
package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults for the zero values of Config.
const (
	DefaultWork            = 20 * time.Millisecond
	DefaultLoadDuration    = 10 * time.Second
	DefaultDrain           = 5 * time.Second
	DefaultShutdownTimeout = 4 * time.Second
	// MaxWork bounds the per-request ?work= override.
	MaxWork = 2 * time.Second
	// MaxLoadDuration bounds the /load ?seconds= override.
	MaxLoadDuration = 5 * time.Minute
)

// Config configures a Server. The zero value is usable: each field documents
// its default.
type Config struct {
	// InstanceID names this member in responses and metrics; "" means the hostname-free "local".
	InstanceID string
	// Work is the CPU time burned per GET / request; 0 means DefaultWork, negative means none.
	Work time.Duration
	// LoadDuration is how long GET /load keeps all CPUs busy; 0 means DefaultLoadDuration.
	LoadDuration time.Duration
	// Drain is how long requests keep being served after shutdown starts while
	// /health answers 503; 0 means DefaultDrain, negative means no drain.
	Drain time.Duration
	// ShutdownTimeout bounds waiting for in-flight requests after the drain
	// period; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Concurrency bounds the requests burning CPU at once; more wait in
	// arrival order. 0 means GOMAXPROCS at New. A small bound keeps the Go
	// scheduler from sharing a saturated CPU quota among every request, so
	// /health (and requests already running) still answer promptly.
	Concurrency int
	// DrainToken is the credential POST /drain and DELETE /drain require as
	// "Authorization: Bearer TOKEN". "" disables both endpoints (403): a
	// member drains only when asked by the holder of its token (the local
	// cloud issues one per member; see docs/autoscaler.md). SIGTERM drains
	// whatever the token.
	DrainToken string
	// Logger receives lifecycle logs; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.InstanceID == "" {
		c.InstanceID = "local"
	}
	switch {
	case c.Work == 0:
		c.Work = DefaultWork
	case c.Work < 0:
		c.Work = 0
	}
	if c.LoadDuration <= 0 {
		c.LoadDuration = DefaultLoadDuration
	}
	switch {
	case c.Drain == 0:
		c.Drain = DefaultDrain
	case c.Drain < 0:
		c.Drain = 0
	}
	if c.Concurrency <= 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server is the slow web app. Create it with New and serve with Run.
type Server struct {
	cfg      Config
	draining atomic.Bool
	// drainMu orders drain transitions; stopping (set once shutdown has
	// begun: a drain then cannot be undone) is guarded by it.
	drainMu  sync.Mutex
	stopping bool
	reg      *prometheus.Registry
	metrics  metrics
	burner   burner
	handler  http.Handler
	// slots holds one token per request allowed to burn CPU at once.
	slots chan struct{}
}

type metrics struct {
	arrivals *prometheus.CounterVec
	requests *prometheus.CounterVec
	inFlight prometheus.Gauge
	duration *prometheus.HistogramVec
	cpuWork  prometheus.Counter
	draining prometheus.Gauge
}

// New returns a Server with its own Prometheus registry.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg.withDefaults(), reg: prometheus.NewRegistry()}
	s.slots = make(chan struct{}, s.cfg.Concurrency)
	s.metrics = metrics{
		arrivals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidepool_app_arrivals_total", Help: "HTTP requests received, by path, counted when they arrive (before they wait for a work slot): the offered load.",
		}, []string{"path"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidepool_app_requests_total", Help: "HTTP requests answered, by path and status code.",
		}, []string{"path", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tidepool_app_in_flight_requests", Help: "Requests being served.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tidepool_app_request_duration_seconds", Help: "Request latency in seconds, by path.",
			Buckets: []float64{.005, .01, .02, .03, .05, .075, .1, .15, .2, .3, .5, .75, 1, 2, 5, 10},
		}, []string{"path"}),
		cpuWork: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tidepool_app_cpu_work_seconds_total", Help: "CPU time burned by request work.",
		}),
		draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tidepool_app_draining", Help: "1 while the app is draining (health answers 503).",
		}),
	}
	// The instance is named by an info metric rather than a label on every
	// series: Prometheus' own target labels (e.g. instance_id from service
	// discovery) would clash with it.
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tidepool_app_info", Help: "Always 1; the id label names this member.",
		ConstLabels: prometheus.Labels{"id": s.cfg.InstanceID},
	})
	info.Set(1)
	s.reg.MustRegister(info, s.metrics.arrivals, s.metrics.requests, s.metrics.inFlight, s.metrics.duration, s.metrics.cpuWork, s.metrics.draining,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.instrument("/", s.handleWork))
	mux.HandleFunc("GET /load", s.instrument("/load", s.handleLoad))
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("POST /drain", s.handleDrain)
	mux.HandleFunc("DELETE /drain", s.handleUndrain)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.handler = s.closeWhileDraining(mux)
	return s
}

// closeWhileDraining makes every response written while the app drains
// carry "Connection: close" (net/http then closes the connection after the
// response), also for requests that started before the drain.
func (s *Server) closeWhileDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			// Also for a handler that writes nothing.
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(&closingWriter{ResponseWriter: w, s: s}, r)
	})
}

// closingWriter adds "Connection: close" to a response whose header is
// written while the app drains.
type closingWriter struct {
	http.ResponseWriter
	s           *Server
	wroteHeader bool
}

func (c *closingWriter) WriteHeader(code int) {
	if !c.wroteHeader {
		c.wroteHeader = true
		if c.s.draining.Load() {
			c.Header().Set("Connection", "close")
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *closingWriter) Write(b []byte) (int, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *closingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Handler returns the app's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Draining reports whether the app is draining.
func (s *Server) Draining() bool { return s.draining.Load() }

// StartDrain turns /health to 503 without stopping the server; requests are
// still served, each response with "Connection: close". It is what SIGTERM
// and POST /drain do first.
func (s *Server) StartDrain(reason string) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if s.draining.CompareAndSwap(false, true) {
		s.metrics.draining.Set(1)
		s.cfg.Logger.Info("draining", "instance", s.cfg.InstanceID, "reason", reason)
	}
}

// CancelDrain undoes a drain started by POST /drain or StartDrain: /health
// answers 200 again and connections are kept alive. It reports false, and
// changes nothing, once shutdown has begun (a SIGTERM drain is final).
func (s *Server) CancelDrain(reason string) bool {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if s.stopping {
		return false
	}
	if s.draining.CompareAndSwap(true, false) {
		s.metrics.draining.Set(0)
		s.cfg.Logger.Info("serving again", "instance", s.cfg.InstanceID, "reason", reason)
	}
	return true
}

// Run serves on ln until ctx is cancelled, then drains (see the package doc)
// and returns nil once in-flight requests are done, or an error if serving
// failed. Run closes ln.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.cfg.Logger.Info("serving", "instance", s.cfg.InstanceID, "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.drainMu.Lock()
	s.stopping = true
	s.drainMu.Unlock()
	s.StartDrain("shutdown")
	// Responses now say "Connection: close", so busy keep-alive connections
	// end after their next response. Idle ones stay open through the drain
	// period: srv.SetKeepAlivesEnabled(false) would close them at once, and
	// a client sending on one at that moment would see its request fail.
	// Shutdown closes what is still idle once the load balancer has long
	// stopped sending here.
	if s.cfg.Drain > 0 {
		t := time.NewTimer(s.cfg.Drain)
		select {
		case <-t.C:
		case err := <-serveErr:
			t.Stop()
			return fmt.Errorf("serve: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.burner.stop()
	if err != nil {
		// A supervisor expects exit 0 after SIGTERM: requests still running
		// now are cut off (their clients have usually given up already).
		s.cfg.Logger.Warn("closing requests still in flight after the shutdown timeout", "instance", s.cfg.InstanceID, "timeout", s.cfg.ShutdownTimeout, "err", err)
		srv.Close()
	}
	s.cfg.Logger.Info("stopped", "instance", s.cfg.InstanceID)
	return nil
}

func (s *Server) instrument(path string, h func(http.ResponseWriter, *http.Request) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.metrics.arrivals.WithLabelValues(path).Inc()
		s.metrics.inFlight.Inc()
		start := time.Now()
		code := h(w, r)
		s.metrics.duration.WithLabelValues(path).Observe(time.Since(start).Seconds())
		s.metrics.requests.WithLabelValues(path, strconv.Itoa(code)).Inc()
		s.metrics.inFlight.Dec()
	}
}

// statusClientClosed records a request whose client went away before it was
// answered (nginx's 499).
const statusClientClosed = 499

// WorkResponse is the JSON body of GET /.
type WorkResponse struct {
	// Instance is the serving member's instance id.
	Instance string `json:"instance"`
	// Addr is the local address the request arrived on (the member's IP:port).
	Addr string `json:"addr"`
	// CPUMillis is the CPU time burned for the request, in milliseconds.
	CPUMillis float64 `json:"cpu_ms"`
	// ElapsedMs is the wall time from the start of the work (including the
	// wait for a work slot) to its end, in milliseconds.
	ElapsedMs float64 `json:"elapsed_ms"`
	// Digest is the start of the final hash, proof that the work was done.
	Digest string `json:"digest"`
}

func (s *Server) handleWork(w http.ResponseWriter, r *http.Request) int {
	cost := s.cfg.Work
	if v := r.URL.Query().Get("work"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxWork {
			http.Error(w, fmt.Sprintf("bad work %q: want a duration between 0 and %s", v, MaxWork), http.StatusBadRequest)
			return http.StatusBadRequest
		}
		cost = d
	}
	start := time.Now()
	select {
	case s.slots <- struct{}{}:
	case <-r.Context().Done():
		w.WriteHeader(statusClientClosed)
		return statusClientClosed
	}
	sum, err := Burn(r.Context(), cost)
	<-s.slots
	elapsed := time.Since(start)
	if err != nil {
		// The client went away: stop burning CPU for nobody.
		w.WriteHeader(statusClientClosed)
		return statusClientClosed
	}
	s.metrics.cpuWork.Add(cost.Seconds())
	addr := ""
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		addr = a.String()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(WorkResponse{
		Instance:  s.cfg.InstanceID,
		Addr:      addr,
		CPUMillis: float64(cost) / float64(time.Millisecond),
		ElapsedMs: float64(elapsed) / float64(time.Millisecond),
		Digest:    hex.EncodeToString(sum[:8]),
	})
	return http.StatusOK
}

func (s *Server) handleLoad(w http.ResponseWriter, r *http.Request) int {
	d := s.cfg.LoadDuration
	if v := r.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 || time.Duration(n*float64(time.Second)) > MaxLoadDuration {
			http.Error(w, fmt.Sprintf("bad seconds %q: want a number in (0, %g]", v, MaxLoadDuration.Seconds()), http.StatusBadRequest)
			return http.StatusBadRequest
		}
		d = time.Duration(n * float64(time.Second))
	}
	until := time.Now().Add(d)
	s.burner.extend(until)
	select {
	case <-time.After(time.Until(until)):
	case <-r.Context().Done():
	}
	fmt.Fprintf(w, "loaded %d CPUs for %s on %s\n", runtime.NumCPU(), d, s.cfg.InstanceID)
	return http.StatusOK
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	// Exactly "OK", no newline: the course's check compares the body.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "OK")
}

func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	if !s.drainAuthorized(w, r) {
		return
	}
	s.StartDrain("drain request")
	fmt.Fprintln(w, "draining")
}

func (s *Server) handleUndrain(w http.ResponseWriter, r *http.Request) {
	if !s.drainAuthorized(w, r) {
		return
	}
	if !s.CancelDrain("drain cancelled by request") {
		http.Error(w, "shutting down: the drain cannot be undone", http.StatusConflict)
		return
	}
	fmt.Fprintln(w, "serving")
}

// drainAuthorized checks the drain credential in constant time and answers
// 403 when no token is configured, 401 when the request lacks it.
func (s *Server) drainAuthorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.DrainToken == "" {
		http.Error(w, "drain disabled: no drain token configured", http.StatusForbidden)
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.cfg.DrainToken))
	if !ok || subtle.ConstantTimeCompare(g[:], want[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tidepool-app"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		s.cfg.Logger.Warn("drain request refused: wrong or missing token", "instance", s.cfg.InstanceID, "remote", r.RemoteAddr)
		return false
	}
	return true
}

// burner keeps every CPU busy until a deadline that concurrent /load requests
// extend, so many /load calls share one set of NumCPU busy goroutines.
type burner struct {
	mu      sync.Mutex
	until   time.Time
	live    int // burning goroutines
	stopped bool
	wg      sync.WaitGroup
}

func (b *burner) extend(until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	if until.After(b.until) {
		b.until = until
	}
	if b.live > 0 {
		return
	}
	n := runtime.NumCPU()
	b.live = n
	b.wg.Add(n)
	for i := 0; i < n; i++ {
		go b.burn()
	}
}

func (b *burner) burn() {
	defer b.wg.Done()
	var sum [32]byte
	for {
		b.mu.Lock()
		done := b.stopped || !time.Now().Before(b.until)
		if done {
			b.live--
		}
		b.mu.Unlock()
		if done {
			return
		}
		sum = chain(sum, 5000)
	}
}

func (b *burner) stop() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	b.wg.Wait()
}
