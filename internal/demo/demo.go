// Package demo runs the whole autoscaling loop on one machine: the local
// cloud with an instance pool and a network load balancer (created through the
// Exoscale API, as Terraform would on Exoscale), the discover agent, the
// autoscaler, real Prometheus and Alertmanager, and a load scenario through the
// load balancer. It samples the system every second and ends with report.html,
// report.png and a printed summary.
//
// Run is a sequence of phases (phases.go), one file each: the live page
// (unless switched off), cloud, pool and load balancer, agents (discover,
// autoscaler), monitoring, load, then the report, which the live page shows
// before it stops. Run owns everything it starts: when it returns (or its
// context is cancelled) every process it started has been stopped and every
// temporary resource removed. It installs nothing: a missing Prometheus or
// Alertmanager is an error before anything starts (`make demo` installs
// them). The package wires components together and must not be imported by
// any of them.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler"
	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/live"
	"tidepool/internal/loadgen"
	"tidepool/internal/monitoring"
	"tidepool/internal/outpath"
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
	// A relative path is taken from the working directory when Run (or
	// Validate) is called; missing directories are created by Run.
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
	// Observer, if set, is told about every sample and event as it is
	// recorded (a live view; the demo's own live page, LiveAddr, is told
	// too); nil means none. See Observer for the rules.
	Observer Observer
	// Policy is the autoscaler's scaling policy; nil means the seed's
	// policy.Webhook bounded by MinSize and MaxSize. A policy's own Limits
	// are used as they are (keep them equal to MinSize/MaxSize). The
	// autoscaler reads the pool CPU from the demo's Prometheus for it.
	Policy policy.Policy
	// LiveAddr is where the live page is served while the demo runs
	// (HOST:PORT; a busy port falls back to a free port of the same host,
	// port 0 picks one); "" means DefaultLiveAddr, LiveOff serves none.
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
	// HTMLPath and PNGPath are the report files (absolute paths).
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

// Validate reports the first error in c (an unknown profile, pool bounds,
// non-positive work or CPU quota, a negative duration, an invalid policy or
// load scenario, an output directory that cannot be created, a live page
// address that is not HOST:PORT or LiveOff) without
// starting or writing anything.
func (c Config) Validate() error {
	_, _, err := c.withDefaults()
	return err
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
	if c.OutDir, err = outpath.Dir(c.OutDir); err != nil {
		return c, prof, fmt.Errorf("output: %w", err)
	}
	if c.Stages == nil {
		c.Stages = DefaultScenario(c.Profile)
	}
	if _, err := loadgen.NewSchedule(c.Stages); err != nil {
		return c, prof, fmt.Errorf("load: %w", err)
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
	if v, ok := c.Policy.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return c, prof, fmt.Errorf("policy: %w", err)
		}
	}
	if c.Work == 0 {
		c.Work = DefaultWork
	}
	if c.CPUPerVCPU == 0 {
		c.CPUPerVCPU = DefaultCPUPerVCPU
	}
	if c.BootDelay == 0 {
		c.BootDelay = DefaultBootDelay(c.Profile)
	}
	if c.Settle == 0 {
		c.Settle = 20 * prof.AutoscalerTick
	}
	switch {
	case c.Work < 0 || !(c.CPUPerVCPU > 0):
		return c, prof, fmt.Errorf("work %s and CPU per vCPU %v must be positive", c.Work, c.CPUPerVCPU)
	case c.BootDelay < 0 || c.Settle < 0 || c.ProgressEvery < 0:
		return c, prof, fmt.Errorf("boot delay %s, settle %s and progress period %s must not be negative", c.BootDelay, c.Settle, c.ProgressEvery)
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
	if c.LiveAddr == "" {
		c.LiveAddr = DefaultLiveAddr
	}
	if err := checkLiveAddr(c.LiveAddr); err != nil {
		return c, prof, err
	}
	return c, prof, nil
}

// session is what the phases of one run share. A phase sets its fields
// before it calls ready; later phases read them only after that (the ready
// channel orders the accesses). The live page phase, stopped last, reads
// the others' fields once they have returned.
type session struct {
	cfg  Config
	prof monitoring.Profile
	log  *slog.Logger
	rec  *recorder
	// addrs is where members, load balancers, Prometheus and Alertmanager
	// listen, chosen before anything starts.
	addrs addrPlan

	client *v3.Client // cloud phase
	poolID v3.UUID    // pool phase
	svc    provision.Service
	// fileSD is the discover agent's output, discoverAddr its HTTP address.
	fileSD, discoverAddr string
	scaler               *autoscaler.Autoscaler
	autoscalerAddr       string
	autoscalerTokenFile  string // the token its webhooks require, for Alertmanager
	monDir, promURL      string // monitoring phase
	load                 loadResult
	// feed tells the live phase what is recorded, live is its page; both
	// nil without a live page.
	feed *liveFeed
	live *live.Server

	// result is the Result and the report, made once (see session.result).
	resultOnce sync.Once
	res        Result
	resErr     error
}

// result writes the report and returns the Result, once: when the live
// phase, stopped after every other phase, shows the report, or when Run
// returns (report.go). Only after every component phase has returned.
func (s *session) result() (Result, error) {
	s.resultOnce.Do(func() { s.res, s.resErr = s.report() })
	return s.res, s.resErr
}

// say prints one line of progress.
func (s *session) say(format string, a ...any) { fmt.Fprintf(s.cfg.Out, format+"\n", a...) }

// Run runs the demo and blocks until the report is written, the settle time
// is over, or ctx is cancelled (then it tears down and returns ctx's error,
// still writing the report of what was measured). A configuration error
// (see Validate) or a missing Prometheus or Alertmanager is returned before
// anything starts.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, prof, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if err := checkBinaries(monitoringBinaries); err != nil {
		return Result{}, err
	}
	if cfg.AppCommand == nil {
		exe, err := os.Executable()
		if err != nil {
			return Result{}, fmt.Errorf("find own binary: %w", err)
		}
		cfg.AppCommand = []string{exe, "app"}
	}
	if err := outpath.Create(cfg.OutDir); err != nil {
		return Result{}, fmt.Errorf("output: %w", err)
	}
	logFile, err := os.Create(filepath.Join(cfg.OutDir, "demo.log"))
	if err != nil {
		return Result{}, fmt.Errorf("log file: %w", err)
	}
	defer logFile.Close()
	s := &session{
		cfg:  cfg,
		prof: prof,
		log:  slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	obs, phases := cfg.Observer, []phase(nil)
	if cfg.LiveAddr != LiveOff {
		s.feed = newLiveFeed()
		obs = joinObservers(obs, s.feed)
		phases = append(phases, phase{"live page", s.runLive})
	}
	s.rec = newRecorder(obs)
	s.say("tidepool demo: profile %s (autoscaler tick %s), output in %s", prof.Name, AutoscalerTick(cfg.Policy, prof), cfg.OutDir)
	if err := s.plan(); err != nil {
		return Result{}, err
	}
	err = runPhases(ctx, append(phases,
		phase{"cloud", s.runCloud},
		phase{"pool and load balancer", s.runPool},
		phase{"discover", s.runDiscover},
		phase{"autoscaler", s.runAutoscaler},
		phase{"monitoring", s.runMonitoring},
		phase{"load", s.runLoad},
	))
	if s.load.start.IsZero() { // stopped before the load: nothing to report
		if err == nil {
			err = errors.New("stopped before the load started")
		}
		return Result{}, err
	}
	res, rerr := s.result()
	return res, errors.Join(err, rerr)
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
