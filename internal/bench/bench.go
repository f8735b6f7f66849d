// Package bench measures the data path of a tidepool demo on this machine:
// the local cloud's layer-4 load balancer (internal/cloud/nlb) against a direct
// connection and against HAProxy configured the same way, and the accuracy
// of the open-model load generator (internal/loadgen), including a server
// stall that must show up in the latency percentiles (no coordinated
// omission). Run does it all in one go and returns a Report; WriteTable and
// WriteJSON print it.
//
// Fairness: the load generator runs in the calling process; the backends
// (one process serving instant answers on several loopback addresses), the
// NLB and HAProxy each run in a process of their own, so no two of them share
// a Go runtime (scheduler, garbage collector). All of them share the
// machine's CPUs, as they do in a demo. HAProxy gets as many threads as the
// NLB's Go runtime has CPUs (GOMAXPROCS = NumCPU). Both proxies use the same
// backends, round-robin per connection, TCP health checks every 2s with one
// result flipping a backend's state, and a 5s connect timeout. The targets
// are measured in short interleaved windows (direct, nlb, haproxy, rotating),
// so a burst of other work on the machine hits all three alike.
//
// It owns the benchmark and its report, and must not import the local cloud
// beyond its load balancer (internal/cloud/nlb), nor the autoscaler, the demo
// or any agent.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"tidepool/internal/bench/haproxy"
	"tidepool/internal/loadgen"
)

// Defaults applied to zero Config fields.
const (
	DefaultDuration        = 10 * time.Second
	DefaultWindow          = time.Second
	DefaultSearchMax       = 50000
	DefaultSearchDuration  = 2 * time.Second
	DefaultSearchTrials    = 6
	DefaultSearchPrecision = 0.15
	DefaultSearchP99Limit  = time.Second
	DefaultStallRate       = 500
	DefaultStall           = time.Second
	DefaultStallWorkers    = 50
	DefaultBackends        = 3
)

// DefaultRates are the fixed rates measured when Config.Rates is empty.
var DefaultRates = []float64{500, 2000, 5000}

// Connection modes (Config.Conns).
const (
	ConnNew   = "new"   // a new connection per request
	ConnReuse = "reuse" // kept-alive connections
)

// DefaultConns are the connection modes measured when Config.Conns is empty.
var DefaultConns = []string{ConnNew, ConnReuse}

// Goal thresholds from the issue.
const (
	// GoalOverheadRatio: the NLB's added latency may be at most this
	// multiple of HAProxy's, at every rate, at p50 and p99.
	GoalOverheadRatio = 1.2
	// GoalRatePct: the generator's achieved rate must be within this many
	// percent of the requested rate, up to GoalRateMax requests/s.
	GoalRatePct = 1.0
	GoalRateMax = 5000
)

// Config configures Run. The zero value measures the default rates.
type Config struct {
	// Rates are the fixed rates in requests/s for the proxy comparison and
	// the generator accuracy runs; nil means DefaultRates.
	Rates []float64
	// Duration is the measuring time per connection mode, rate and target
	// (proxy comparison) and per mode and rate (generator accuracy); zero
	// means 10s.
	Duration time.Duration
	// Window is the length of one proxy-comparison window; Duration is
	// split into Duration/Window windows per target, interleaved across
	// targets. Zero means 1s.
	Window time.Duration
	// SearchStart is the first rate of the highest-rate search; zero means
	// the largest of Rates. The search doubles until a trial fails, then
	// bisects (see rateSearch).
	SearchStart float64
	// SearchMax caps the search; zero means 50000 req/s.
	SearchMax float64
	// SearchDuration is the length of one search trial; zero means 2s.
	SearchDuration time.Duration
	// SearchTrials bounds the trials per target; zero means 6. Negative
	// skips the search.
	SearchTrials int
	// SearchPrecision ends the search once the highest passing and the
	// lowest failing rate are within this fraction; zero means 0.15.
	SearchPrecision float64
	// SearchP99Limit: a trial fails when its p99 latency from the planned
	// send time exceeds it; it is also the request timeout. Zero means 1s.
	SearchP99Limit time.Duration
	// StallRate, Stall and StallWorkers configure the stall test: a run of
	// 4*Stall at StallRate during which the server holds
	// requests for Stall, once with the generator's default worker limit and
	// once with StallWorkers (so requests wait for workers and are late).
	// Zero means 500 req/s, 1s and 50. A negative Stall skips the test.
	StallRate    float64
	Stall        time.Duration
	StallWorkers int
	// Backends is the number of backend addresses; zero means 3.
	Backends int
	// Conns are the connection modes measured, in order: ConnNew opens a
	// connection per request (as the demo does: every request goes through
	// the balancer's accept, backend choice, connect and pump), ConnReuse
	// keeps connections open (`tidepool load`'s default: only the pump).
	// The proxy comparison and the generator accuracy run in every mode;
	// the rate search in the first. Nil means {ConnNew, ConnReuse}.
	Conns []string
	// HAProxy is the haproxy executable; "" means haproxy.Find().
	HAProxy string
	// TempDir is where HAProxy's temporary config directory goes; "" means
	// os.TempDir().
	TempDir string
	// Helper is the command line that runs RunHelper: Run appends the role
	// and its flags. Nil means {os.Executable(), "bench"} (the tidepool
	// binary's hidden `tidepool bench _backends|_nlb` roles).
	Helper []string
	// Logger receives one line per measurement; nil discards.
	Logger *slog.Logger
}

func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Rates) == 0 {
		cfg.Rates = DefaultRates
	}
	cfg.Rates = append([]float64(nil), cfg.Rates...)
	for _, r := range cfg.Rates {
		if !(r > 0 && r <= loadgen.MaxRate) {
			return cfg, fmt.Errorf("bench: rate %g must be in (0, %g]", r, float64(loadgen.MaxRate))
		}
	}
	if len(cfg.Conns) == 0 {
		cfg.Conns = DefaultConns
	}
	cfg.Conns = append([]string(nil), cfg.Conns...)
	for i, c := range cfg.Conns {
		if c != ConnNew && c != ConnReuse {
			return cfg, fmt.Errorf("bench: connection mode %q: want %s or %s", c, ConnNew, ConnReuse)
		}
		if slices.Contains(cfg.Conns[:i], c) {
			return cfg, fmt.Errorf("bench: connection mode %q given twice", c)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Duration, DefaultDuration)
	def(&cfg.Window, DefaultWindow)
	def(&cfg.SearchDuration, DefaultSearchDuration)
	def(&cfg.SearchP99Limit, DefaultSearchP99Limit)
	def(&cfg.Stall, DefaultStall)
	if cfg.SearchStart == 0 {
		cfg.SearchStart = slices.Max(cfg.Rates)
	}
	if cfg.SearchMax == 0 {
		cfg.SearchMax = max(DefaultSearchMax, cfg.SearchStart)
	}
	if cfg.SearchTrials == 0 {
		cfg.SearchTrials = DefaultSearchTrials
	}
	if cfg.SearchPrecision == 0 {
		cfg.SearchPrecision = DefaultSearchPrecision
	}
	if cfg.StallRate == 0 {
		cfg.StallRate = DefaultStallRate
	}
	if cfg.StallWorkers == 0 {
		cfg.StallWorkers = DefaultStallWorkers
	}
	if cfg.Backends == 0 {
		cfg.Backends = DefaultBackends
	}
	switch {
	case cfg.Duration < 0 || cfg.Window < 0 || cfg.SearchDuration < 0 || cfg.SearchP99Limit < 0:
		return cfg, errors.New("bench: durations must not be negative")
	case cfg.Window > cfg.Duration:
		return cfg, fmt.Errorf("bench: window %s longer than duration %s", cfg.Window, cfg.Duration)
	case cfg.SearchStart <= 0 || cfg.SearchStart > cfg.SearchMax || cfg.SearchMax > loadgen.MaxRate:
		return cfg, fmt.Errorf("bench: search from %g to %g req/s: want 0 < start <= max <= %g", cfg.SearchStart, cfg.SearchMax, float64(loadgen.MaxRate))
	case cfg.SearchPrecision < 0 || cfg.SearchPrecision >= 1:
		return cfg, fmt.Errorf("bench: search precision %g must be in (0, 1)", cfg.SearchPrecision)
	case cfg.StallRate < 0 || cfg.StallRate > loadgen.MaxRate || cfg.StallWorkers < 0:
		return cfg, errors.New("bench: stall rate and workers must not be negative")
	case cfg.Stall > time.Minute:
		return cfg, fmt.Errorf("bench: stall %s longer than 1m", cfg.Stall)
	case cfg.Backends < 1 || cfg.Backends > 250:
		return cfg, fmt.Errorf("bench: backends %d out of range 1..250", cfg.Backends)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Helper == nil {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("bench: find own executable for helper processes: %w", err)
		}
		cfg.Helper = []string{exe, "bench"}
	}
	if cfg.HAProxy == "" {
		bin, err := haproxy.Find()
		if err != nil {
			return cfg, fmt.Errorf("bench: %w", err)
		}
		cfg.HAProxy = bin
	}
	return cfg, nil
}

func (cfg Config) settings() Settings {
	return Settings{
		Rates: cfg.Rates, DurationS: cfg.Duration.Seconds(), WindowS: cfg.Window.Seconds(), Conns: cfg.Conns,
		Backends: cfg.Backends, CheckIntervalS: helperCheckInterval.Seconds(),
		SearchStart: cfg.SearchStart, SearchMax: cfg.SearchMax, SearchDurationS: cfg.SearchDuration.Seconds(),
		SearchTrials: max(cfg.SearchTrials, 0), SearchPrecision: cfg.SearchPrecision, SearchP99LimitMS: msOf(cfg.SearchP99Limit),
		StallRate: cfg.StallRate, StallMS: msOf(max(cfg.Stall, 0)), StallWorkers: cfg.StallWorkers,
	}
}

// Target names.
const (
	TargetDirect  = "direct"
	TargetNLB     = "nlb"
	TargetHAProxy = "haproxy"
)

// target is one way of reaching the backends.
type target struct {
	name string
	url  string
	pid  int // process whose CPU time is charged to it; 0 = none
}

// Run starts the backends, the local NLB and HAProxy, measures (proxy
// comparison at each rate, highest-rate search, generator accuracy, stall
// test), stops every process it started (by PID; each is reaped, HAProxy's
// temporary directory removed) and returns the report with its goals
// evaluated. It blocks for the whole run (about 2.5 minutes with the
// defaults). When ctx is cancelled, or a measurement fails, it stops
// everything the same way and returns the error together with a partial
// report (for diagnosis only: what was measured so far and the processes,
// no goals; do not publish it). The report is nil only when nothing was
// started (invalid cfg, haproxy missing).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now(), Settings: cfg.settings()}
	rep.Host = Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	if rep.Host.HAProxy, err = haproxy.Version(ctx, cfg.HAProxy); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}

	e, err := startEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, env: e, log: cfg.Logger, control: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	err = r.measure(ctx, rep)
	rep.Processes = e.stop()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("bench: interrupted: %w", ctx.Err())
		}
		return rep, err
	}
	rep.Host.LoadAvgEnd = loadAvg()
	rep.ElapsedS = time.Since(rep.Started).Round(time.Millisecond).Seconds()
	rep.Goals = evaluateGoals(rep, cfg)
	return rep, nil
}

// env holds the helper processes of a run.
type env struct {
	backends     *child
	backendAddrs []string
	nlb          *child
	nlbAddr      string
	haproxy      *haproxy.Proxy
	started      []Process
}

// startEnv starts the backends, then the NLB and HAProxy in front of them.
// On failure everything already started is stopped and the error returned
// with a nil env.
func startEnv(ctx context.Context, cfg Config) (e *env, err error) {
	e = &env{}
	defer func() {
		if err != nil {
			e.stop()
			e = nil
		}
	}()
	var br backendsReady
	argv := append(append([]string(nil), cfg.Helper...), RoleBackends, "-n", strconv.Itoa(cfg.Backends))
	if e.backends, err = startChild(ctx, "backends", argv, &br); err != nil {
		return e, err
	}
	e.started = append(e.started, Process{Name: "backends", PID: e.backends.pid()})
	if len(br.Addrs) != cfg.Backends {
		return e, fmt.Errorf("bench: backends helper reported %d addresses, want %d", len(br.Addrs), cfg.Backends)
	}
	e.backendAddrs = br.Addrs

	var nr nlbReady
	argv = append(append([]string(nil), cfg.Helper...), RoleNLB, "-backends", strings.Join(br.Addrs, ","))
	if e.nlb, err = startChild(ctx, "nlb", argv, &nr); err != nil {
		return e, err
	}
	e.started = append(e.started, Process{Name: "nlb", PID: e.nlb.pid()})
	e.nlbAddr = nr.Addr

	e.haproxy, err = haproxy.Start(ctx, haproxy.Config{
		Bin: cfg.HAProxy, Backends: br.Addrs, CheckInterval: helperCheckInterval,
		Threads: runtime.NumCPU(), TempDir: cfg.TempDir,
	})
	if err != nil {
		return e, fmt.Errorf("bench: %w", err)
	}
	e.started = append(e.started, Process{Name: "haproxy", PID: e.haproxy.PID()})
	return e, nil
}

// stop stops every process in reverse start order and returns them, each
// marked stopped once it has been reaped and cleaned up (not: one that
// survived SIGKILL, HAProxy whose temporary directory stayed).
func (e *env) stop() []Process {
	failed := map[string]bool{}
	if e.haproxy != nil {
		failed["haproxy"] = e.haproxy.Stop() != nil
	}
	if e.nlb != nil {
		failed["nlb"] = e.nlb.stop() != nil
	}
	if e.backends != nil {
		failed["backends"] = e.backends.stop() != nil
	}
	for i := range e.started {
		e.started[i].Stopped = !failed[e.started[i].Name]
	}
	return e.started
}

// runner performs the measurements of one Run.
type runner struct {
	cfg     Config
	env     *env
	log     *slog.Logger
	control *http.Client // for the backends' control paths; no idle connections
}

func (r *runner) targets() []target {
	return []target{
		{TargetDirect, "http://" + r.env.backendAddrs[0] + "/", 0},
		{TargetNLB, "http://" + r.env.nlbAddr + "/", r.env.nlb.pid()},
		{TargetHAProxy, "http://" + r.env.haproxy.Addr() + "/", r.env.haproxy.PID()},
	}
}

func (r *runner) measure(ctx context.Context, rep *Report) error {
	for _, conn := range r.cfg.Conns {
		rates, err := r.compare(ctx, conn)
		if err != nil {
			return err
		}
		rep.Proxy.Modes = append(rep.Proxy.Modes, ModeReport{Conn: conn, Rates: rates})
	}
	if r.cfg.SearchTrials > 0 {
		m, err := r.search(ctx, r.cfg.Conns[0])
		if err != nil {
			return err
		}
		rep.Proxy.MaxRate = &m
	}
	for _, conn := range r.cfg.Conns {
		acc, err := r.accuracy(ctx, conn)
		if err != nil {
			return err
		}
		rep.Generator.Rates = append(rep.Generator.Rates, acc...)
	}
	if r.cfg.Stall > 0 && r.cfg.StallRate > 0 {
		var err error
		if rep.Generator.Stall, err = r.stall(ctx, r.cfg.Conns[0]); err != nil {
			return err
		}
	}
	return nil
}

// load runs one constant-rate loadgen run against url and returns its
// summary; ctx cancellation is an error.
func (r *runner) load(ctx context.Context, conn, url string, rate float64, d, timeout time.Duration, workers int) (loadgen.Summary, error) {
	sum, _, err := loadgen.Run(ctx, loadgen.Config{
		Target:           url,
		Stages:           []loadgen.Stage{{Kind: loadgen.KindHold, From: rate, Duration: d}},
		Timeout:          timeout,
		MaxWorkers:       workers,
		DisableKeepAlive: conn == ConnNew,
	}, nil)
	if err != nil {
		return sum, fmt.Errorf("bench: load %s: %w", url, err)
	}
	if sum.Cancelled {
		return sum, ctx.Err()
	}
	return sum, nil
}

// fixedTimeout is the request timeout of fixed-rate runs.
const fixedTimeout = 5 * time.Second

// compare measures every target at every rate in interleaved windows, with
// connections opened as conn says.
func (r *runner) compare(ctx context.Context, conn string) ([]RateComparison, error) {
	targets := r.targets()
	// Warm up each path (first connections, allocator, haproxy threads).
	for _, t := range targets {
		if _, err := r.load(ctx, conn, t.url, r.cfg.Rates[0], min(r.cfg.Window, 500*time.Millisecond), fixedTimeout, 0); err != nil {
			return nil, err
		}
	}
	windows := max(1, int(r.cfg.Duration/r.cfg.Window))
	var out []RateComparison
	for _, rt := range r.cfg.Rates {
		type acc struct {
			res TargetResult
			cpu time.Duration
		}
		accs := make([]acc, len(targets))
		for w := range windows {
			for j := range targets {
				i := (w + j) % len(targets)
				t := targets[i]
				var cpu0 time.Duration
				if t.pid > 0 {
					cpu0, _ = cpuTime(t.pid) // a failure shows as 0 CPU, not as a failed run
				}
				sum, err := r.load(ctx, conn, t.url, rt, r.cfg.Window, fixedTimeout, 0)
				if err != nil {
					return nil, err
				}
				if t.pid > 0 {
					if cpu1, err := cpuTime(t.pid); err == nil {
						accs[i].cpu += cpu1 - cpu0
					}
				}
				a := &accs[i]
				a.res.Sent += sum.Sent
				a.res.OK += sum.OK
				a.res.Errors += sum.Sent - sum.OK
				a.res.Missed += sum.Missed
				a.res.Late += sum.Late
				a.res.WorstP99MS = max(a.res.WorstP99MS, msOf(sum.P99))
				a.res.Windows = append(a.res.Windows, WindowResult{
					P50MS: msOf(sum.P50), P99MS: msOf(sum.P99), MaxMS: msOf(sum.Max), Sent: sum.Sent, OK: sum.OK})
			}
		}
		for i := range accs {
			a := &accs[i]
			a.res.P50MS = round3(median(windowValues(a.res, windowP50)))
			a.res.P99MS = round3(median(windowValues(a.res, windowP99)))
			if targets[i].pid > 0 && a.res.Sent > 0 {
				a.res.CPUUSPerReq = round3(float64(a.cpu.Microseconds()) / float64(a.res.Sent))
			}
		}
		c := RateComparison{Rate: rt, Direct: accs[0].res, NLB: accs[1].res, HAProxy: accs[2].res}
		c.NLBAddedP50MS = round3(c.NLB.P50MS - c.Direct.P50MS)
		c.NLBAddedP99MS = round3(c.NLB.P99MS - c.Direct.P99MS)
		c.HAProxyAddedP50MS = round3(c.HAProxy.P50MS - c.Direct.P50MS)
		c.HAProxyAddedP99MS = round3(c.HAProxy.P99MS - c.Direct.P99MS)
		c.RatioP50 = ratioOf(c.NLBAddedP50MS, c.HAProxyAddedP50MS)
		c.RatioP99 = ratioOf(c.NLBAddedP99MS, c.HAProxyAddedP99MS)
		c.ExcessP50 = excessOf(windowValues(c.Direct, windowP50), windowValues(c.NLB, windowP50), windowValues(c.HAProxy, windowP50))
		c.ExcessP99 = excessOf(windowValues(c.Direct, windowP99), windowValues(c.NLB, windowP99), windowValues(c.HAProxy, windowP99))
		r.log.Info("proxy latency measured", "conn", conn, "rate", rt,
			"direct_p50_ms", c.Direct.P50MS, "direct_p99_ms", c.Direct.P99MS,
			"nlb_p50_ms", c.NLB.P50MS, "nlb_p99_ms", c.NLB.P99MS,
			"haproxy_p50_ms", c.HAProxy.P50MS, "haproxy_p99_ms", c.HAProxy.P99MS,
			"nlb_cpu_us_per_req", c.NLB.CPUUSPerReq, "haproxy_cpu_us_per_req", c.HAProxy.CPUUSPerReq,
			"excess_p50", c.ExcessP50.Verdict, "excess_p99", c.ExcessP99.Verdict)
		out = append(out, c)
	}
	return out, nil
}

// windowValues picks one figure of each of tr's windows, in window order.
func windowValues(tr TargetResult, pick func(WindowResult) float64) []float64 {
	vs := make([]float64, len(tr.Windows))
	for i, w := range tr.Windows {
		vs[i] = pick(w)
	}
	return vs
}

func windowP50(w WindowResult) float64 { return w.P50MS }
func windowP99(w WindowResult) float64 { return w.P99MS }

// ratioOf is nlb/ha, or nil when ha <= 0 (HAProxy added nothing measurable).
func ratioOf(nlb, ha float64) *float64 {
	if ha <= 0 {
		return nil
	}
	v := round3(nlb / ha)
	return &v
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// settle is the pause between search trials, so connections of a failed
// trial are gone before the next one starts.
const settle = 300 * time.Millisecond

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// loadAvg is the 1-minute load average (0 if unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
