// Package member runs instance-pool members as local processes that look like
// small VMs: each member is a process group running a command (normally
// `tidepool app`) bound to its own loopback IP, CPU-limited through its own
// cgroup, with a node-exporter-compatible metrics endpoint whose CPU counters
// come from that cgroup.
//
// Lifecycle of a Member:
//
//	Start ──> running ──(process exits: crash or signal)──> exited ──┐
//	             │                                                   │
//	             └──── Stop (SIGTERM, then SIGKILL) / Kill (SIGKILL) ─┴─> cleaned up
//
// An exited member (a crashed app on a VM that is still up) keeps serving its
// metrics until Stop or Kill cleans it up: metrics server closed, stray
// processes killed, cgroup removed.
//
// It owns one member's process, cgroup and metrics endpoint, and must not
// import the cloud that drives it (internal/cloud) or the load balancer
// (internal/cloud/nlb).
package member

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"tidepool/internal/cloud/cgroup"
	"tidepool/internal/supervise"
)

// Defaults for Spec fields left zero.
const (
	DefaultAppPort     = 8080
	DefaultMetricsPort = 9100
)

// killWait bounds how long cleanup waits for stray processes to leave the
// member's cgroup after SIGKILL.
const killWait = supervise.KillWait

// waitDelay bounds how long reaping waits for the member's output pipes to
// close after the process exited (a stray descendant may hold them).
const waitDelay = 2 * time.Second

// RunnerConfig configures a Runner. Only Command is required.
type RunnerConfig struct {
	// Command is the argv prefix that starts a member, e.g.
	// {"/path/tidepool", "app"}; Start appends
	// "--listen IP:AppPort --instance-id ID".
	Command []string
	// BaseEnv is the environment (KEY=value) members start from; nil means
	// this process's environment (os.Environ()). The cloud passes its own
	// without its API credentials.
	BaseEnv []string
	// Env is extra environment (KEY=value) for members, on top of BaseEnv.
	Env []string
	// CgroupParent is the cgroup under which member groups are created;
	// "" means "tidepool".
	CgroupParent string
	// Logger receives lifecycle events; nil discards them.
	Logger *slog.Logger

	// CgroupRoot is the cgroup mount root; "" means /sys/fs/cgroup.
	CgroupRoot string
	// DisableCgroups runs members without CPU limits even where cgroups
	// are usable (Mode reports ModeNone, Warning says why).
	DisableCgroups bool
	// Output receives the members' stdout and stderr; nil discards them.
	// It is shared by all members, so it must be safe for concurrent use
	// (an *os.File is).
	Output io.Writer
}

// Runner starts members. It holds no goroutines and needs no closing; it is
// safe for concurrent use.
type Runner struct {
	cfg     RunnerConfig
	log     *slog.Logger
	cg      *cgroup.Manager // nil when running unlimited
	mode    cgroup.Mode
	warning string
}

// NewRunner checks the command and detects the cgroup mode. When no cgroup
// CPU controller is usable it still succeeds: members then run unlimited,
// Warning explains why (also logged) and CPU accounting falls back to
// /proc/<pid>/stat.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("member runner: empty command")
	}
	if _, err := exec.LookPath(cfg.Command[0]); err != nil {
		return nil, fmt.Errorf("member runner: %w", err)
	}
	r := &Runner{cfg: cfg, log: cfg.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	var reason error
	if cfg.DisableCgroups {
		reason = errors.New("cgroups disabled by configuration")
	} else {
		m := cgroup.New(cgroup.Config{Root: cfg.CgroupRoot, Parent: cfg.CgroupParent})
		if reason = m.Err(); reason == nil {
			r.cg, r.mode = m, m.Mode()
		}
	}
	if reason != nil {
		r.warning = "members run without CPU limits, CPU accounting from /proc/<pid>/stat: " + reason.Error()
		r.log.Warn("running members without CPU limits", "reason", reason.Error())
	} else {
		r.log.Info("members limited by cgroups", "mode", r.mode.String())
	}
	return r, nil
}

// Mode reports how members are CPU-limited (cgroup.ModeNone: unlimited).
func (r *Runner) Mode() cgroup.Mode { return r.mode }

// Warning is non-empty, a human sentence, when members run unlimited.
func (r *Runner) Warning() string { return r.warning }

// Spec describes one member.
type Spec struct {
	// ID is the instance id: 1-128 characters of [A-Za-z0-9._-]; it also
	// names the member's cgroup.
	ID string
	// IP is the loopback address the app and the metrics endpoint bind.
	IP netip.Addr
	// AppPort is the app's port; 0 means 8080.
	AppPort uint16
	// MetricsPort is the node-exporter port; 0 means 9100.
	MetricsPort uint16
	// CPUs is the CPU quota in cores (e.g. 0.25); the member looks like a
	// VM with ceil(CPUs) vCPUs. 0 means unlimited (a VM with all of this
	// machine's CPUs).
	CPUs float64
	// Env is extra environment (KEY=value) of this member only, after
	// RunnerConfig.Env (a later value of a key wins), e.g. its drain token.
	Env []string
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// normalize returns spec with defaults applied, or why it is invalid.
func (s Spec) normalize() (Spec, error) {
	if !idPattern.MatchString(s.ID) || s.ID == "." || s.ID == ".." {
		return s, fmt.Errorf("invalid member id %q: want 1-128 characters of [A-Za-z0-9._-]", s.ID)
	}
	if !s.IP.IsValid() || !s.IP.IsLoopback() {
		return s, fmt.Errorf("invalid member ip %v: want a loopback address", s.IP)
	}
	if s.CPUs < 0 || math.IsNaN(s.CPUs) || math.IsInf(s.CPUs, 0) || s.CPUs > 1024 {
		return s, fmt.Errorf("invalid member cpus %v: want 0 (unlimited) or a positive number of cores", s.CPUs)
	}
	if s.AppPort == 0 {
		s.AppPort = DefaultAppPort
	}
	if s.MetricsPort == 0 {
		s.MetricsPort = DefaultMetricsPort
	}
	if s.AppPort == s.MetricsPort {
		return s, fmt.Errorf("invalid member ports: app and metrics both %d", s.AppPort)
	}
	return s, nil
}

// Member is one running (or exited) member process group. Its methods are
// safe for concurrent use.
type Member struct {
	spec    Spec
	log     *slog.Logger
	proc    *supervise.Process // the process group; it reaps the leader
	pid     int
	group   *cgroup.Group // nil when unlimited
	base    cgroup.Usage  // group usage at creation (non-zero for an adopted group)
	started time.Time

	mu        sync.Mutex // guards cleaned, last
	cleaned   bool
	last      cgroup.Usage // last good usage, relative to base
	srv       *http.Server
	srvDone   chan struct{}
	cleanOnce sync.Once
	cleanErr  error
}

// Start creates the member's cgroup, starts the command in its own process
// group with Pdeathsig=SIGKILL (the kernel kills it when the starting OS
// thread dies, so members do not outlive a dead cloud), moves it into the
// cgroup (the first instants of the process, before the move, are neither
// limited nor accounted) and serves node-exporter metrics on IP:MetricsPort.
// It returns once the process has started, without waiting for the app to be
// ready (see Ready); a process that exits at once still yields a Member, whose
// Done is closed. ctx only bounds the start. On error nothing is left running.
func (r *Runner) Start(ctx context.Context, spec Spec) (m *Member, err error) {
	spec, err = spec.normalize()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start member %s: %w", spec.ID, err)
	}
	metricsAddr := netip.AddrPortFrom(spec.IP, spec.MetricsPort).String()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("start member %s: metrics listener: %w", spec.ID, err)
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()

	m = &Member{
		spec: spec,
		log:  r.log.With("member", spec.ID),
	}
	if r.cg != nil {
		if m.group, err = r.cg.Create(spec.ID, spec.CPUs); err != nil {
			return nil, fmt.Errorf("start member %s: %w", spec.ID, err)
		}
		if m.base, err = m.group.Usage(); err != nil {
			err = fmt.Errorf("start member %s: %w", spec.ID, err)
			return nil, errors.Join(err, m.group.Remove(context.Background()))
		}
	}

	args := append(append([]string(nil), r.cfg.Command[1:]...),
		"--listen", netip.AddrPortFrom(spec.IP, spec.AppPort).String(),
		"--instance-id", spec.ID)
	m.started = time.Now()
	m.proc, err = supervise.Start(supervise.Config{
		Name:      "member " + spec.ID,
		Args:      append([]string{r.cfg.Command[0]}, args...),
		Env:       memberEnv(r.cfg.BaseEnv, slices.Concat(r.cfg.Env, spec.Env)),
		Stdout:    r.cfg.Output,
		Stderr:    r.cfg.Output,
		Group:     true,
		WaitDelay: waitDelay,
		// A zombie's stat still holds its final times.
		BeforeReap: m.finalUsage,
		Logger:     m.log,
	})
	if err != nil {
		err = fmt.Errorf("start member %s: %w", spec.ID, err)
		if m.group != nil {
			err = errors.Join(err, m.group.Remove(context.Background()))
		}
		return nil, err
	}
	m.pid = m.proc.PID()
	if m.group != nil {
		if err = m.group.Add(m.pid); err != nil && !m.exitedSoon() {
			err = fmt.Errorf("start member %s: %w", spec.ID, err)
			return nil, errors.Join(err, m.Kill())
		}
		err = nil // a process that exited at once is a started member that is Done
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newNodeCollector(m.started, time.Now, spec.CPUs, runtime.NumCPU(), m.CPUUsage, m.log))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.srvDone = make(chan struct{})
	go func() {
		defer close(m.srvDone)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server failed", "err", err)
		}
	}()
	m.log.Info("member started", "pid", m.pid, "app", m.AppAddr().String(), "metrics", metricsAddr,
		"cpus", spec.CPUs, "cgroup", r.mode.String())
	return m, nil
}

// exitedSoon reports whether the process exits within a second (Add fails
// for a process that is already exiting).
func (m *Member) exitedSoon() bool {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-m.proc.Done():
		return true
	case <-t.C:
		return false
	}
}

// finalUsage records the CPU times of the exited, not yet reaped leader
// when running unlimited (supervise.Config.BeforeReap).
func (m *Member) finalUsage(pid int) {
	if m.group != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.procUsageLocked(pid); err != nil {
		m.log.Debug("cannot read final cpu usage", "err", err)
	}
}

// ID returns the instance id.
func (m *Member) ID() string { return m.spec.ID }

// Spec returns the member's spec with defaults applied.
func (m *Member) Spec() Spec { return m.spec }

// PID returns the process id of the member's leader process, which is also
// its process group id.
func (m *Member) PID() int { return m.pid }

// AppAddr is where the app listens (IP:AppPort).
func (m *Member) AppAddr() netip.AddrPort { return netip.AddrPortFrom(m.spec.IP, m.spec.AppPort) }

// MetricsAddr is where the node-exporter endpoint listens (IP:MetricsPort).
func (m *Member) MetricsAddr() netip.AddrPort {
	return netip.AddrPortFrom(m.spec.IP, m.spec.MetricsPort)
}

// StartTime is when the member was started (its "boot time").
func (m *Member) StartTime() time.Time { return m.started }

// Done is closed once the process has exited, for any reason, and been
// reaped.
func (m *Member) Done() <-chan struct{} { return m.proc.Done() }

// ExitErr is the process's exit error (nil for exit status 0, an
// *exec.ExitError otherwise, e.g. "signal: killed"). Valid after Done is
// closed; nil before.
func (m *Member) ExitErr() error { return m.proc.Err() }

// Stop stops the member gracefully: SIGTERM to its process group, wait for
// the process to exit until ctx is done, then SIGKILL the group. It then
// stops the metrics server, kills anything left in the cgroup and removes the
// cgroup. It blocks until all that is done (bounded: a process that survives
// SIGKILL for 10 s is reported as an error and its cgroup left in place). Idempotent and safe to call concurrently with Kill: every call
// returns the clean-up result. The process's own exit status is ExitErr's.
func (m *Member) Stop(ctx context.Context) error {
	return m.cleanup(m.proc.Stop(ctx))
}

// Kill stops the member hard, as if its VM crashed: SIGKILL to its process
// group, then the same clean-up as Stop. Idempotent.
func (m *Member) Kill() error {
	return m.cleanup(m.proc.Kill())
}

// cleanup runs once, after the process was stopped (stopErr: it survived
// SIGKILL): metrics server closed, cgroup emptied and removed.
func (m *Member) cleanup(stopErr error) error {
	m.cleanOnce.Do(func() {
		var errs []error
		if stopErr != nil {
			errs = append(errs, stopErr)
		}
		if m.srv != nil {
			if err := m.srv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close metrics server: %w", err))
			}
			<-m.srvDone
		}
		if m.group != nil && len(errs) == 0 {
			errs = append(errs, m.removeGroup())
		}
		m.mu.Lock()
		m.cleaned = true
		m.mu.Unlock()
		m.cleanErr = errors.Join(errs...)
		if m.cleanErr != nil {
			m.log.Error("member clean-up failed", "err", m.cleanErr)
		} else {
			m.log.Info("member cleaned up")
		}
	})
	return m.cleanErr
}

// removeGroup kills processes that left the member's process group but not
// its cgroup, then removes the cgroup.
func (m *Member) removeGroup() error {
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if u, err := m.group.Usage(); err == nil {
		m.mu.Lock()
		m.last = monotonic(m.last, sub(u, m.base))
		m.mu.Unlock()
	}
	for {
		pids, err := m.group.Procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			// These are in our member's cgroup, so they are ours to end.
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("kill stray pid %d: %w", pid, err)
			}
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cgroup of member %s still holds processes %v", m.spec.ID, pids)
		case <-t.C:
		}
	}
	return m.group.Remove(ctx)
}

// CPUUsage returns the CPU time used by the member since Start: from its
// cgroup, or from /proc/<pid>/stat when running unlimited (10 ms precision,
// covers the leader and its reaped children only). After the process is
// reaped or cleaned up it returns the last value read. The values never
// decrease.
func (m *Member) CPUUsage() (user, system time.Duration, err error) {
	if m.group == nil {
		// Read /proc only while the pid is still the member's.
		m.proc.WithPID(func(pid int) {
			m.mu.Lock()
			defer m.mu.Unlock()
			err = m.procUsageLocked(pid)
		})
		if err != nil {
			return 0, 0, err
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.last.User, m.last.System, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cleaned {
		return m.last.User, m.last.System, nil
	}
	u, err := m.group.Usage()
	if err != nil {
		return 0, 0, fmt.Errorf("cpu usage of member %s: %w", m.spec.ID, err)
	}
	m.last = monotonic(m.last, sub(u, m.base))
	return m.last.User, m.last.System, nil
}

// procUsageLocked refreshes m.last from /proc/pid. m.mu must be held.
func (m *Member) procUsageLocked(pid int) error {
	u, err := cgroup.ProcessUsage("", pid)
	if err != nil {
		return fmt.Errorf("cpu usage of member %s: %w", m.spec.ID, err)
	}
	m.last = monotonic(m.last, u)
	return nil
}

func sub(a, b cgroup.Usage) cgroup.Usage {
	return cgroup.Usage{Total: a.Total - b.Total, User: a.User - b.User, System: a.System - b.System}
}

// monotonic returns next with each field no lower than in prev (the v1
// user/system split is re-derived from tick ratios and may wobble).
func monotonic(prev, next cgroup.Usage) cgroup.Usage {
	return cgroup.Usage{
		Total:  max(prev.Total, next.Total),
		User:   max(prev.User, next.User),
		System: max(prev.System, next.System),
	}
}

// Ready polls http://IP:AppPort<healthPath> every 100 ms until it answers
// 200. It fails when ctx is done or the process exits first.
func (m *Member) Ready(ctx context.Context, healthPath string) error {
	if len(healthPath) == 0 || healthPath[0] != '/' {
		healthPath = "/" + healthPath
	}
	url := "http://" + m.AppAddr().String() + healthPath
	// Attempts are cut short when the process exits.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.proc.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("member %s ready: %w", m.spec.ID, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = errors.New("GET " + healthPath + ": " + resp.Status)
		} else if ctx.Err() == nil || last == nil {
			last = err // keep a real answer over the one cut short by ctx
		}
		select {
		case <-m.proc.Done():
			return fmt.Errorf("member %s exited before it was ready: %s", m.spec.ID, supervise.ExitStatus(m.proc.Err()))
		default:
		}
		select {
		case <-m.proc.Done():
			return fmt.Errorf("member %s exited before it was ready: %s", m.spec.ID, supervise.ExitStatus(m.proc.Err()))
		case <-ctx.Done():
			return fmt.Errorf("member %s not ready: %w (last attempt: %v)", m.spec.ID, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// String returns "member ID (pid N)".
func (m *Member) String() string { return "member " + m.spec.ID + " (pid " + strconv.Itoa(m.pid) + ")" }

// memberEnv is base (nil: this process's environment) followed by extra.
func memberEnv(base, extra []string) []string {
	if base == nil {
		base = os.Environ()
	}
	return append(append(make([]string, 0, len(base)+len(extra)), base...), extra...)
}
