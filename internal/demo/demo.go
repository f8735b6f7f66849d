// Package demo runs the whole autoscaling loop on one machine: the local
// cloud with an instance pool and a network load balancer (created through the
// Exoscale API, as Terraform would on Exoscale), the discover agent, the
// autoscaler, real Prometheus and Alertmanager, and a load scenario through the
// load balancer. It samples the system every second and ends with report.html,
// report.png and a printed summary.
//
// Run owns everything it starts: when it returns (or its context is
// cancelled) every process it started has been stopped and every temporary
// resource removed.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"tidepool/internal/autoscaler"
	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/cloud"
	"tidepool/internal/discover"
	"tidepool/internal/exoclient"
	"tidepool/internal/loadgen"
	"tidepool/internal/monitoring"
	"tidepool/internal/promrun"
	"tidepool/internal/provision"
	"tidepool/internal/report"
)

// Defaults for the zero values of Config.
const (
	DefaultProfile       = "fast"
	DefaultOutDir        = "demo-out"
	DefaultMinSize       = 1
	DefaultMaxSize       = 5
	DefaultWork          = 20 * time.Millisecond
	DefaultCPUPerVCPU    = 0.25
	DefaultProgressEvery = 5 * time.Second
	// DefaultServicePort is the load balancer service port.
	DefaultServicePort = 8000
)

// Config configures a demo run. The zero value runs the default demo.
type Config struct {
	// Profile is the monitoring timing profile, "fast" or "seed"; "" means
	// DefaultProfile.
	Profile string
	// OutDir receives report.html, report.png, the load timeline, the
	// rendered monitoring configuration and the logs; "" means DefaultOutDir.
	OutDir string
	// Stages is the load scenario; nil means DefaultScenario(profile).
	Stages []loadgen.Stage
	// MinSize and MaxSize bound the pool; 0 means DefaultMinSize / DefaultMaxSize.
	MinSize, MaxSize int
	// Work is the CPU time each request costs a member; 0 means DefaultWork.
	Work time.Duration
	// CPUPerVCPU is each member's CPU quota in cores (members are 1-vCPU
	// standard.micro); 0 means DefaultCPUPerVCPU.
	CPUPerVCPU float64
	// BootDelay emulates VM start; 0 means 2s with the fast profile and 20s
	// with the seed profile.
	BootDelay time.Duration
	// Settle bounds the wait, after the load ends, for the pool to shrink
	// back to MinSize; 0 means 20 autoscaler ticks.
	Settle time.Duration
	// MemberNet and NLBNet are the loopback ranges of members and load
	// balancers; zero means the local cloud's defaults.
	MemberNet, NLBNet netip.Prefix
	// ServicePort is the load balancer's service port; 0 means DefaultServicePort.
	ServicePort uint16
	// AppCommand is the member program and leading arguments; nil means
	// this binary's "app" subcommand.
	AppCommand []string
	// CgroupParent names the cgroup of the members; "" means "tidepool-demo".
	CgroupParent string
	// ProgressEvery is the period of progress lines; 0 means DefaultProgressEvery.
	ProgressEvery time.Duration
	// Out receives progress lines and the summary; nil discards them.
	Out io.Writer
	// SkipInstall does not try to apt-get install missing Prometheus or
	// Alertmanager (an error is returned instead).
	SkipInstall bool
	// Policy is the autoscaler's scaling policy; nil means the seed's
	// policy.Webhook bounded by MinSize and MaxSize. A policy's own Limits
	// are used as they are (keep them equal to MinSize/MaxSize). The
	// autoscaler reads the pool CPU from the demo's Prometheus for it.
	Policy policy.Policy
	// LiveAddr is where the live page is served (live.go); "" means
	// DefaultLiveAddr, LiveOff serves none. [issue 19 hook]
	LiveAddr string
}

// DefaultScenario is the default load for a profile: a ramp that takes the
// pool past 3 members, a hold, a drop, and a quiet tail in which the pool
// shrinks back. With the fast profile it takes about 3 minutes.
func DefaultScenario(profile string) []loadgen.Stage {
	scale := time.Duration(1)
	if profile == "seed" {
		scale = 6
	}
	return []loadgen.Stage{
		{Kind: loadgen.KindHold, From: 2, Duration: 10 * time.Second * scale},
		{Kind: loadgen.KindRamp, From: 2, To: 36, Duration: 50 * time.Second * scale},
		{Kind: loadgen.KindHold, From: 36, Duration: 50 * time.Second * scale},
		{Kind: loadgen.KindRamp, From: 36, To: 2, Duration: 10 * time.Second * scale},
		{Kind: loadgen.KindHold, From: 2, Duration: 20 * time.Second * scale},
	}
}

// Result is what a demo run measured.
type Result struct {
	Summary report.Summary
	// HTMLPath and PNGPath are the report files.
	HTMLPath, PNGPath string
	// Load is the load generator's summary.
	Load loadgen.Summary
	// Samples are the per-second samples of the report.
	Samples []report.Sample
	// Events are the scaling events of the report.
	Events []report.Event
	// PeakPool and FinalPool are the largest and the last observed pool size.
	PeakPool, FinalPool int
	// Queries are the Grafana dashboard and alert rule expressions, each run
	// against the live Prometheus right after the load ended.
	Queries []QueryCheck
}

// QueryCheck is one Grafana expression run against the demo's Prometheus.
type QueryCheck struct {
	Where, Expr string
	// Series is the number of series returned; Err is set when the query failed.
	Series int
	Err    string
}

func (c Config) withDefaults() (Config, monitoring.Profile, error) {
	if c.Profile == "" {
		c.Profile = DefaultProfile
	}
	prof, err := monitoring.ProfileByName(c.Profile)
	if err != nil {
		return c, prof, err
	}
	if c.OutDir == "" {
		c.OutDir = DefaultOutDir
	}
	if c.Stages == nil {
		c.Stages = DefaultScenario(c.Profile)
	}
	if c.MinSize == 0 {
		c.MinSize = DefaultMinSize
	}
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MinSize < 1 || c.MaxSize < c.MinSize {
		return c, prof, fmt.Errorf("bad pool bounds: min %d, max %d (want 1 <= min <= max)", c.MinSize, c.MaxSize)
	}
	if c.Policy == nil {
		c.Policy = policy.Webhook{Limits: policy.Limits{Min: c.MinSize, Max: c.MaxSize}}
	}
	if c.Work == 0 {
		c.Work = DefaultWork
	}
	if c.CPUPerVCPU == 0 {
		c.CPUPerVCPU = DefaultCPUPerVCPU
	}
	if c.BootDelay == 0 {
		c.BootDelay = 2 * time.Second
		if c.Profile == "seed" {
			c.BootDelay = 20 * time.Second
		}
	}
	if c.Settle == 0 {
		c.Settle = 20 * prof.AutoscalerTick
	}
	if c.ServicePort == 0 {
		c.ServicePort = DefaultServicePort
	}
	if c.CgroupParent == "" {
		c.CgroupParent = "tidepool-demo"
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return c, prof, nil
}

// stack is everything a run started, torn down in reverse order by stop.
type stack struct {
	stops []func()
}

func (s *stack) add(f func()) { s.stops = append(s.stops, f) }

func (s *stack) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

// Run runs the demo and blocks until the report is written, the settle time
// is over, or ctx is cancelled (then it tears down and returns ctx's error,
// still writing the report of what was measured).
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, prof, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("output directory: %w", err)
	}
	if !cfg.SkipInstall {
		if err := ensureMonitoringBinaries(ctx, cfg.Out); err != nil {
			return Result{}, err
		}
	}
	logFile, err := os.Create(filepath.Join(cfg.OutDir, "demo.log"))
	if err != nil {
		return Result{}, fmt.Errorf("log file: %w", err)
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	say := func(format string, a ...any) { fmt.Fprintf(cfg.Out, format+"\n", a...) }

	var st stack
	defer st.stop()
	// Components run until stackCtx is cancelled by the teardown.
	stackCtx, cancelStack := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	st.add(func() { cancelStack(); wg.Wait() })
	goRun := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(stackCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("component failed", "component", name, "err", err)
			}
		}()
	}

	// 1. The local cloud.
	say("tidepool demo: profile %s (autoscaler tick %s), output in %s", prof.Name, prof.AutoscalerTick, cfg.OutDir)
	lv, err := startLive(&st, cfg, say) // [issue 19 hook] live page, fed from the recorder below
	if err != nil {
		return Result{}, err
	}
	key, secret := "EXO"+randomHex(12), randomHex(20)
	membersLog, err := os.Create(filepath.Join(cfg.OutDir, "members.log"))
	if err != nil {
		return Result{}, fmt.Errorf("members log: %w", err)
	}
	defer membersLog.Close()
	plan := planAddrs(cfg.ServicePort)
	if cfg.MemberNet.IsValid() || cfg.NLBNet.IsValid() {
		plan.memberNet, plan.lbNet = cfg.MemberNet, cfg.NLBNet
	} else if plan.memberNet != cloud.DefaultMemberNet {
		say("note: %s is in use (another demo?); members use %s and load balancers %s", cloud.DefaultMemberNet, plan.memberNet, plan.lbNet)
	}
	if plan.appPort != cloud.DefaultAppPort {
		say("note: ports %d/%d are taken on every address (a system service?); members use %d (app) and %d (node exporter)",
			cloud.DefaultAppPort, cloud.DefaultMetricsPort, plan.appPort, plan.metricsPort)
	}
	if cfg.AppCommand == nil {
		exe, err := os.Executable()
		if err != nil {
			return Result{}, fmt.Errorf("find own binary: %w", err)
		}
		cfg.AppCommand = []string{exe, "app"}
	}
	cloudLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, fmt.Errorf("cloud listener: %w", err)
	}
	endpoint := "http://" + cloudLn.Addr().String() + "/v2"
	// The cloud's state from an earlier demo would bring back its pool.
	if err := os.RemoveAll(filepath.Join(cfg.OutDir, "cloud")); err != nil {
		cloudLn.Close()
		return Result{}, fmt.Errorf("remove old cloud state: %w", err)
	}
	cl, err := cloud.New(cloud.Config{
		Key: key, Secret: secret,
		PublicEndpoint: endpoint,
		StateDir:       filepath.Join(cfg.OutDir, "cloud"),
		MemberNet:      plan.memberNet,
		NLBNet:         plan.lbNet,
		AppPort:        plan.appPort,
		MetricsPort:    plan.metricsPort,
		BootDelay:      cfg.BootDelay,
		CPUPerVCPU:     cfg.CPUPerVCPU,
		EvictGrace:     15 * time.Second,
		AppCommand:     cfg.AppCommand,
		AppEnv:         []string{"TIDEPOOL_APP_WORK=" + cfg.Work.String(), "TIDEPOOL_APP_DRAIN=2s"},
		AppOutput:      membersLog,
		CgroupParent:   cfg.CgroupParent,
		Logger:         log.With("component", "cloud"),
	})
	if err != nil {
		cloudLn.Close()
		return Result{}, fmt.Errorf("local cloud: %w", err)
	}
	if w := cl.Warning(); w != "" {
		say("warning: %s", w)
	}
	cloudSrv := &http.Server{Handler: cl.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go cloudSrv.Serve(cloudLn)
	cloudDone := make(chan struct{})
	go func() {
		defer close(cloudDone)
		if err := cl.Run(stackCtx); err != nil {
			log.Error("cloud failed", "err", err)
		}
	}()
	st.add(func() {
		cancelStack()
		<-cloudDone
		cloudSrv.Close()
	})

	transport := &http.Transport{}
	st.add(transport.CloseIdleConnections)
	client, err := exoclient.New(exoclient.Config{Key: key, Secret: secret, Endpoint: endpoint, UserAgent: "tidepool-demo", Transport: transport})
	if err != nil {
		return Result{}, err
	}

	// 2. The deployment, through the API.
	setupCtx, cancelSetup := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelSetup()
	poolID, err := provision.CreatePool(setupCtx, client, provision.PoolSpec{Name: "tidepool-demo", Size: cfg.MinSize})
	if err != nil {
		return Result{}, err
	}
	svc, err := provision.CreateNLBService(setupCtx, client, provision.ServiceSpec{
		Name: "tidepool-demo", Pool: poolID, Port: cfg.ServicePort, TargetPort: plan.appPort,
		Interval: 1, Timeout: 1, Retries: 1,
	})
	if err != nil {
		return Result{}, err
	}
	say("pool %s running with %d member(s); load balancer service on %s", poolID, cfg.MinSize, svc.Addr)

	// 3. Discovery and the autoscaler.
	fileSD := filepath.Join(cfg.OutDir, "file_sd", "targets.json")
	agent, err := discover.New(discover.Config{
		Client: client, PoolID: string(poolID), Zone: cloud.DefaultZone, Port: int(plan.metricsPort),
		Output: fileSD, Interval: discoverInterval(prof), Logger: log.With("component", "discover"),
	})
	if err != nil {
		return Result{}, fmt.Errorf("discover: %w", err)
	}
	discoverAddr, err := serve(&st, agent.Handler())
	if err != nil {
		return Result{}, err
	}
	goRun("discover", agent.Run)

	promAddr, err := promrun.FreeAddr("127.0.0.1")
	if err != nil {
		return Result{}, err
	}
	asLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, fmt.Errorf("autoscaler listener: %w", err)
	}
	scaler, err := autoscaler.New(autoscaler.Config{
		Cloud:    client,
		PoolID:   string(poolID),
		Policy:   cfg.Policy,
		Metrics:  autoscaler.PrometheusMetrics{URL: "http://" + promAddr},
		Listener: asLn, Interval: prof.AutoscalerTick,
		NLBID: string(svc.NLBID), NLBServiceID: string(svc.ServiceID),
		DrainTimeout: 15 * time.Second, DrainGrace: time.Second,
		Logger: log.With("component", "autoscaler"),
	})
	if err != nil {
		asLn.Close()
		return Result{}, fmt.Errorf("autoscaler: %w", err)
	}
	goRun("autoscaler", scaler.Run)
	autoscalerURL := "http://" + asLn.Addr().String()

	// 4. Prometheus and Alertmanager.
	amAddr, err := promrun.FreeAddr("127.0.0.1")
	if err != nil {
		return Result{}, err
	}
	monDir := filepath.Join(cfg.OutDir, "monitoring")
	if err := monitoring.Render(prof, monitoring.Params{
		FileSDPath:        fileSD,
		NodePort:          int(plan.metricsPort),
		AppPort:           int(plan.appPort),
		AutoscalerURL:     autoscalerURL,
		DiscoverTargets:   []string{discoverAddr},
		AlertmanagerAddr:  amAddr,
		PrometheusURL:     "http://" + promAddr,
		AutoscalerTargets: []string{asLn.Addr().String()},
	}, monDir); err != nil {
		return Result{}, fmt.Errorf("render monitoring configuration: %w", err)
	}
	procLog, err := os.Create(filepath.Join(cfg.OutDir, "monitoring.log"))
	if err != nil {
		return Result{}, fmt.Errorf("monitoring log: %w", err)
	}
	defer procLog.Close()
	for _, d := range []string{"alertmanager-data", "prometheus-data"} {
		// Data of an earlier demo would mix into this run's report.
		if err := os.RemoveAll(filepath.Join(cfg.OutDir, d)); err != nil {
			return Result{}, fmt.Errorf("remove old %s: %w", d, err)
		}
		if err := os.MkdirAll(filepath.Join(cfg.OutDir, d), 0o755); err != nil {
			return Result{}, fmt.Errorf("data directory: %w", err)
		}
	}
	am, err := promrun.StartAlertmanager(setupCtx, promrun.Config{
		ConfigFile: filepath.Join(monDir, monitoring.FileAlertmanager),
		DataDir:    filepath.Join(cfg.OutDir, "alertmanager-data"),
		Listen:     amAddr, Output: procLog,
	})
	if err != nil {
		return Result{}, fmt.Errorf("alertmanager: %w", err)
	}
	st.add(am.Stop)
	prom, err := promrun.StartPrometheus(setupCtx, promrun.Config{
		ConfigFile: filepath.Join(monDir, monitoring.FilePrometheus),
		DataDir:    filepath.Join(cfg.OutDir, "prometheus-data"),
		Listen:     promAddr, Output: procLog,
	})
	if err != nil {
		return Result{}, fmt.Errorf("prometheus: %w", err)
	}
	st.add(prom.Stop)
	say("prometheus %s, alertmanager http://%s, autoscaler %s", prom.URL, amAddr, autoscalerURL)
	lv.setLinks(prom.URL, "http://"+amAddr, autoscalerURL) // [issue 19 hook]
	cancelSetup()

	// 5. Load, sampling and progress.
	rec := newRecorder()
	samplerCtx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	start := time.Now()
	rec.addEvent(report.Event{T: 0, Kind: report.KindLoadStart, Reason: "load scenario started"})
	go func() {
		defer close(samplerDone)
		sample(samplerCtx, start, client, poolID, prom.URL, scaler, rec, log)
	}()
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		progress(samplerCtx, cfg.Out, cfg.ProgressEvery, start, rec)
	}()
	liveFed := lv.feed(samplerCtx, rec) // [issue 19 hook]

	say("load: %s through %s", describeStages(cfg.Stages), svc.Addr)
	loadSum, timeline, loadErr := loadgen.Run(ctx, loadgen.Config{
		Target:           "http://" + svc.Addr + "/",
		Stages:           cfg.Stages,
		Timeout:          30 * time.Second,
		DisableKeepAlive: true,
		Logger:           log.With("component", "load"),
	}, func(s loadgen.Second) { rec.addLoad(start, s) })
	loadEnd := time.Since(start)
	if loadErr != nil && ctx.Err() == nil {
		log.Error("load failed", "err", loadErr)
	}
	rec.addEvent(report.Event{T: loadEnd, Kind: report.KindLoadEnd, Reason: "load scenario ended"})
	queries := checkQueries(ctx, monDir, prom.URL)

	// 6. Wait for the pool to shrink back to the minimum.
	if ctx.Err() == nil {
		say("load done after %s; waiting up to %s for the pool to shrink back to %d", loadEnd.Round(time.Second), cfg.Settle, cfg.MinSize)
		waitSettled(ctx, cfg.Settle, cfg.MinSize, rec)
	}
	stopSampler()
	<-samplerDone
	<-progressDone
	liveFed() // [issue 19 hook]

	// 7. Report.
	samples, events := rec.snapshot()
	data := report.Data{
		Title:   "tidepool demo: autoscaling under load (" + prof.Name + " profile)",
		Started: start, Profile: prof.Name,
		Samples: samples, Events: events,
		Totals: &report.Totals{
			Requests: loadSum.Sent, OK: loadSum.OK, Failed: loadSum.Sent - loadSum.OK, Late: loadSum.Late,
			P50: loadSum.P50, P95: loadSum.P95, P99: loadSum.P99,
		},
		Notes: []string{
			fmt.Sprintf("Members: standard.micro with %.2f core each, %s of CPU per request; pool %d..%d.", cfg.CPUPerVCPU, cfg.Work, cfg.MinSize, cfg.MaxSize),
			fmt.Sprintf("Monitoring: scrape %s, rate window %s, alert for %s, autoscaler tick %s.", prof.ScrapeInterval, prof.RateWindow, prof.AlertFor, prof.AutoscalerTick),
			"Latency is measured from each request's planned send time (open workload model).",
		},
	}
	res := Result{Load: loadSum, Samples: samples, Events: events, Queries: queries}
	okQueries := 0
	for _, q := range queries {
		if q.Err == "" && q.Series > 0 {
			okQueries++
		}
	}
	data.Notes = append(data.Notes, fmt.Sprintf("Grafana dashboard and alert expressions checked against the live Prometheus: %d of %d returned data.", okQueries, len(queries)))
	res.Summary = report.Summarize(data)
	for _, s := range samples {
		if s.PoolSize > res.PeakPool {
			res.PeakPool = s.PoolSize
		}
		if s.PoolSize >= 0 {
			res.FinalPool = s.PoolSize
		}
	}
	if res.HTMLPath, res.PNGPath, err = report.WriteFiles(cfg.OutDir, data); err != nil {
		return res, fmt.Errorf("write report: %w", err)
	}
	if err := writeTimeline(cfg.OutDir, timeline, loadSum); err != nil {
		log.Error("write load timeline", "err", err)
	}
	say("%s", res.Summary.Text())
	say("report: %s and %s", res.HTMLPath, res.PNGPath)
	if err := lv.finish(ctx, samples, events, res.HTMLPath); err != nil { // [issue 19 hook]
		log.Warn("live page", "err", err)
	}

	st.stop()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// checkQueries runs every Grafana dashboard and alert rule expression of the
// rendered configuration against the live Prometheus.
func checkQueries(ctx context.Context, monDir, promURL string) []QueryCheck {
	qs, err := monitoring.Queries(monDir)
	if err != nil {
		return []QueryCheck{{Where: "rendered Grafana files", Err: err.Error()}}
	}
	out := make([]QueryCheck, 0, len(qs))
	for _, q := range qs {
		c := QueryCheck{Where: q.File + ": " + q.Where, Expr: q.Expr}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := promrun.Query(qctx, promURL, q.Expr)
		cancel()
		if err != nil {
			c.Err = err.Error()
		}
		c.Series = len(v)
		out = append(out, c)
	}
	return out
}

// addrPlan is where the demo's members and load balancer listen.
type addrPlan struct {
	memberNet, lbNet     netip.Prefix
	appPort, metricsPort uint16
}

// planAddrs returns the local cloud's default ranges and ports (members on
// 127.77.0.N:8080 and :9100, load balancers on 127.78.0.N), or, when they
// are taken, free ones: random 127.x.y.0/24 ranges when another demo holds
// the defaults, and other ports when a system service listens on :8080 or
// :9100 of every address (a node exporter, say).
func planAddrs(servicePort uint16) addrPlan {
	free := func(p addrPlan) bool {
		for _, ap := range []netip.AddrPort{
			netip.AddrPortFrom(p.memberNet.Addr().Next().Next(), p.appPort),
			netip.AddrPortFrom(p.memberNet.Addr().Next().Next(), p.metricsPort),
			netip.AddrPortFrom(p.lbNet.Addr().Next().Next(), servicePort),
		} {
			ln, err := net.Listen("tcp", ap.String())
			if err != nil {
				return false
			}
			ln.Close()
		}
		return true
	}
	ports := [][2]uint16{{cloud.DefaultAppPort, cloud.DefaultMetricsPort}, {18080, 19100}, {28080, 29100}}
	p := addrPlan{memberNet: cloud.DefaultMemberNet, lbNet: cloud.DefaultNLBNet}
	for i := 0; i < 30; i++ {
		p.appPort, p.metricsPort = ports[i%len(ports)][0], ports[i%len(ports)][1]
		if free(p) {
			return p
		}
		if i%len(ports) == len(ports)-1 {
			a, b := byte(100+mrand.IntN(151)), byte(mrand.IntN(128)*2)
			p.memberNet = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, a, b, 0}), 24)
			p.lbNet = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, a, b + 1, 0}), 24)
		}
	}
	return p
}

// discoverInterval refreshes targets a few times per autoscaler tick.
func discoverInterval(p monitoring.Profile) time.Duration {
	d := p.AutoscalerTick / 5
	if d < time.Second {
		d = time.Second
	}
	if d > 10*time.Second {
		d = 10 * time.Second
	}
	return d
}

// serve serves h on a new 127.0.0.1 listener until the stack stops and
// returns its address.
func serve(st *stack, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	st.add(func() { srv.Close() })
	return ln.Addr().String(), nil
}

func waitSettled(ctx context.Context, settle time.Duration, min int, rec *recorder) {
	deadline := time.NewTimer(settle)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stable := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
		size, running := rec.lastPool()
		if size == min && running == min {
			stable++
		} else {
			stable = 0
		}
		// A few seconds at the minimum, so the report shows the end state.
		if stable >= 5 {
			return
		}
	}
}

func describeStages(stages []loadgen.Stage) string {
	var total time.Duration
	peak := 0.0
	for _, s := range stages {
		total += s.Duration
		peak = math.Max(peak, math.Max(s.From, s.To+s.Amplitude))
	}
	return fmt.Sprintf("%d stages over %s, peak %.0f req/s", len(stages), total, peak)
}

// writeTimeline saves the load generator's per-second timeline as CSV and
// JSON next to the report.
func writeTimeline(dir string, tl []loadgen.Second, sum loadgen.Summary) error {
	if err := loadgen.SaveCSV(filepath.Join(dir, "load.csv"), tl); err != nil {
		return err
	}
	return loadgen.SaveJSON(filepath.Join(dir, "load.json"), tl, sum)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("crypto/rand: %w", err))
	}
	return hex.EncodeToString(b)
}

// Shown reports whether the run showed autoscaling: the pool grew to at
// least 3 members, shrank back to min (0 means DefaultMinSize), and no
// request failed.
func Shown(r Result, min int) bool {
	if min == 0 {
		min = DefaultMinSize
	}
	return r.PeakPool >= 3 && r.FinalPool == min && r.Load.Sent-r.Load.OK == 0
}

// Verdict says in one line whether the run showed autoscaling (see Shown).
func Verdict(r Result, min int) string {
	if min == 0 {
		min = DefaultMinSize
	}
	failed := r.Load.Sent - r.Load.OK
	mark := "OK"
	if !Shown(r, min) {
		mark = "NOT SHOWN"
	}
	return fmt.Sprintf("autoscaling %s: pool grew to %d (want >= 3), ended at %d (want %d), %d failed requests (want 0)",
		mark, r.PeakPool, r.FinalPool, min, failed)
}
