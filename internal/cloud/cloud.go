// Package cloud is a local cloud speaking the subset of the Exoscale API v2
// that tidepool uses (zones, instance types, templates, instance pools,
// instances, network load balancers, operations), so that every other
// component talks to it with the official egoscale v3 client unchanged.
//
// Instance pool members are real processes (`tidepool app`, each with its own
// loopback IP, CPU cgroup and node-exporter endpoint, see internal/member);
// network load balancer services are real TCP load balancers on their own
// loopback IP (internal/nlb) whose backends follow the pool's running members.
//
// Lifecycle: New loads the state file (if any) and binds nothing. Handler
// serves the API at any time; mutations are recorded at once and carried out
// by Run, which starts members and balancers and reconciles them with the
// desired state until its context is cancelled. Then Run stops every member
// (SIGTERM, SIGKILL after Config.ShutdownGrace) and balancer in parallel,
// saves the state and returns. A later New+Run on the same state directory
// recreates the pools, members (same IDs and IPs) and load balancers.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"tidepool/internal/cloud/member"
	"tidepool/internal/cloud/nlb"
)

// Defaults for the zero values of Config.
const (
	DefaultKey              = "EXOtidepool0000000000000000"
	DefaultSecret           = "tidepool-local-secret"
	DefaultZone             = "ch-gva-2"
	DefaultAppPort          = 8080
	DefaultMetricsPort      = 9100
	DefaultBootDelay        = 3 * time.Second
	DefaultCPUPerVCPU       = 0.25
	DefaultMaxPoolSize      = 20
	DefaultEvictGrace       = 30 * time.Second
	DefaultShutdownGrace    = 3 * time.Second
	DefaultReadyTimeout     = 60 * time.Second
	DefaultOperationTimeout = 5 * time.Minute
	// StateFile is the name of the state file inside Config.StateDir.
	StateFile = "cloud-state.json"
)

// Default address ranges for members and load balancers.
var (
	DefaultMemberNet = netip.MustParsePrefix("127.77.0.0/24")
	DefaultNLBNet    = netip.MustParsePrefix("127.78.0.0/24")
)

// Config configures a Cloud. The zero value works; each field documents its
// default.
type Config struct {
	// Key and Secret are the API credentials requests must be signed with;
	// "" means DefaultKey / DefaultSecret.
	Key, Secret string
	// Zone is the only zone served; "" means DefaultZone.
	Zone string
	// PublicEndpoint is the API URL advertised by GET /zone, e.g.
	// "http://127.0.0.1:8580/v2"; "" derives it from each request's Host.
	PublicEndpoint string
	// StateDir holds the state file; "" keeps state in memory only.
	StateDir string
	// MemberNet is the loopback range members' IPs come from (.2 upward);
	// zero means DefaultMemberNet.
	MemberNet netip.Prefix
	// NLBNet is the loopback range load balancer IPs come from; zero means
	// DefaultNLBNet.
	NLBNet netip.Prefix
	// AppPort and MetricsPort are the member app and node exporter ports;
	// 0 means DefaultAppPort / DefaultMetricsPort.
	AppPort, MetricsPort uint16
	// BootDelay is how long a new member stays "starting" before its process
	// is started; 0 means DefaultBootDelay, negative means none.
	BootDelay time.Duration
	// CPUPerVCPU is the CPU quota in cores a member gets per vCPU of its
	// instance type; 0 means DefaultCPUPerVCPU.
	CPUPerVCPU float64
	// MaxPoolSize bounds pool sizes; 0 means DefaultMaxPoolSize.
	MaxPoolSize int
	// EvictGrace bounds a graceful member stop (evict, scale down) before
	// SIGKILL; 0 means DefaultEvictGrace. It should cover the app's drain.
	EvictGrace time.Duration
	// ShutdownGrace bounds stopping members when Run's context is cancelled;
	// 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// ReadyTimeout bounds the wait for a started member's /health to answer
	// 200; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// OperationTimeout fails an operation still pending after it; 0 means
	// DefaultOperationTimeout.
	OperationTimeout time.Duration
	// AppCommand is the member program and leading arguments; nil means
	// {os.Executable(), "app"}.
	AppCommand []string
	// AppEnv is extra environment for member processes.
	AppEnv []string
	// AppOutput receives the members' stdout and stderr; nil discards them.
	// It must be safe for concurrent use (an *os.File is).
	AppOutput io.Writer
	// CgroupParent is the cgroup under which member groups are created; ""
	// means the member runner's default ("tidepool").
	CgroupParent string
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.Secret == "" {
		cfg.Secret = DefaultSecret
	}
	if cfg.Zone == "" {
		cfg.Zone = DefaultZone
	}
	if !cfg.MemberNet.IsValid() {
		cfg.MemberNet = DefaultMemberNet
	}
	if !cfg.NLBNet.IsValid() {
		cfg.NLBNet = DefaultNLBNet
	}
	for _, p := range []netip.Prefix{cfg.MemberNet, cfg.NLBNet} {
		if !p.Addr().Is4() || !p.Addr().IsLoopback() || p.Bits() > 30 {
			return cfg, fmt.Errorf("address range %s: want an IPv4 loopback prefix of at most /30", p)
		}
	}
	if cfg.MemberNet.Overlaps(cfg.NLBNet) {
		return cfg, fmt.Errorf("member range %s overlaps load balancer range %s", cfg.MemberNet, cfg.NLBNet)
	}
	if cfg.AppPort == 0 {
		cfg.AppPort = DefaultAppPort
	}
	if cfg.MetricsPort == 0 {
		cfg.MetricsPort = DefaultMetricsPort
	}
	if cfg.AppPort == cfg.MetricsPort {
		return cfg, fmt.Errorf("app port and metrics port are both %d", cfg.AppPort)
	}
	switch {
	case cfg.BootDelay == 0:
		cfg.BootDelay = DefaultBootDelay
	case cfg.BootDelay < 0:
		cfg.BootDelay = 0
	}
	if cfg.CPUPerVCPU == 0 {
		cfg.CPUPerVCPU = DefaultCPUPerVCPU
	}
	if cfg.CPUPerVCPU < 0 {
		return cfg, fmt.Errorf("cpu per vcpu %v: must be positive", cfg.CPUPerVCPU)
	}
	if cfg.MaxPoolSize == 0 {
		cfg.MaxPoolSize = DefaultMaxPoolSize
	}
	if cfg.MaxPoolSize < 0 {
		return cfg, fmt.Errorf("max pool size %d: must be positive", cfg.MaxPoolSize)
	}
	defaultDur(&cfg.EvictGrace, DefaultEvictGrace)
	defaultDur(&cfg.ShutdownGrace, DefaultShutdownGrace)
	defaultDur(&cfg.ReadyTimeout, DefaultReadyTimeout)
	defaultDur(&cfg.OperationTimeout, DefaultOperationTimeout)
	if len(cfg.AppCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("app command: %w", err)
		}
		cfg.AppCommand = []string{exe, "app"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func defaultDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Cloud is the local cloud. Its methods are safe for concurrent use.
type Cloud struct {
	cfg         Config
	log         *slog.Logger
	members     memberStarter
	newBalancer balancerFactory
	warning     string
	now         func() time.Time
	secrets     map[string]string
	kick        chan struct{}

	mu        sync.Mutex
	pools     map[string]*pool
	instances map[string]*instance
	nlbs      map[string]*loadBalancer
	ops       map[string]*operation
	opOrder   []string
	memberIPs *ipPool
	nlbIPs    *ipPool
	saved     []byte // last state written
	ran       bool   // Run was called
	stalePIDs map[string]int

	wg sync.WaitGroup // member workers and balancer runs
}

// pool is an instance pool.
type pool struct {
	rec      poolRecord
	deleting bool
	failures int // consecutive member start failures
	lastErr  string
	retryAt  time.Time
}

// instance is a pool member.
type instance struct {
	rec     instanceRecord
	state   string
	leave   leaveReason
	stop    chan struct{} // closed when leave is set
	started bool          // a worker runs for it
}

// loadBalancer is a network load balancer; each service is one listener.
type loadBalancer struct {
	rec      lbRecord
	services []*service
	deleting bool
}

// service is a load balancer service.
type service struct {
	rec      serviceRecord
	lb       balancer // nil while not bound
	cancel   context.CancelFunc
	state    string
	lastErr  string
	retryAt  time.Time
	deleting bool
	backends []nlb.Backend
}

// New returns a Cloud configured by cfg, with the state of cfg.StateDir
// loaded. It starts nothing and holds nothing that needs closing: Run starts
// the members and load balancers and stops them all before it returns.
func New(cfg Config) (*Cloud, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	members, newBalancer, warning, err := realDeps(cfg)
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	c := &Cloud{
		cfg:         cfg,
		log:         cfg.Logger,
		members:     members,
		newBalancer: newBalancer,
		warning:     warning,
		now:         time.Now,
		secrets:     map[string]string{cfg.Key: cfg.Secret},
		kick:        make(chan struct{}, 1),
		pools:       map[string]*pool{},
		instances:   map[string]*instance{},
		nlbs:        map[string]*loadBalancer{},
		ops:         map[string]*operation{},
		memberIPs:   newIPPool(cfg.MemberNet),
		nlbIPs:      newIPPool(cfg.NLBNet),
		stalePIDs:   map[string]int{},
	}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	return c, nil
}

// Warning is non-empty, a human sentence, when members run without CPU
// limits (no usable cgroup CPU controller).
func (c *Cloud) Warning() string { return c.warning }

// poke asks the reconciler for a pass soon; it never blocks.
func (c *Cloud) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// reconcileInterval is the period of reconcile passes when nothing pokes.
const reconcileInterval = time.Second

// Run starts members and load balancers and keeps them matching the API
// state until ctx is cancelled. Then it stops every member and balancer (in
// parallel, each bounded by Config.ShutdownGrace), saves the state and
// returns nil. Run may be called once.
func (c *Cloud) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.ran {
		c.mu.Unlock()
		return errors.New("cloud: Run called twice")
	}
	c.ran = true
	stale := c.stalePIDs
	c.stalePIDs = nil
	c.mu.Unlock()

	c.killStale(ctx, stale)
	c.log.Info("cloud running", "zone", c.cfg.Zone, "member_net", c.cfg.MemberNet, "nlb_net", c.cfg.NLBNet)

	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		c.reconcile(ctx)
		select {
		case <-ctx.Done():
			c.log.Info("cloud shutting down")
			c.wg.Wait()
			c.mu.Lock()
			c.saveLocked()
			c.mu.Unlock()
			c.log.Info("cloud stopped")
			return nil
		case <-c.kick:
		case <-t.C:
		}
	}
}

// reconcile makes one pass: pools toward their size, members started,
// balancers bound with current backends, operations evaluated, state saved.
func (c *Cloud) reconcile(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	now := c.now()
	for _, p := range c.sortedPools() {
		c.reconcilePoolLocked(ctx, p, now)
	}
	for _, inst := range c.instances {
		if !inst.started {
			c.startWorkerLocked(ctx, inst)
		}
	}
	for _, lb := range c.sortedNLBs() {
		c.reconcileNLBLocked(ctx, lb, now)
	}
	c.syncBackendsLocked()
	for _, id := range c.opOrder {
		c.evalOpLocked(c.ops[id], now)
	}
	c.saveLocked()
}

func (c *Cloud) sortedPools() []*pool {
	ps := make([]*pool, 0, len(c.pools))
	for _, p := range c.pools {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].rec.CreatedAt.Before(ps[j].rec.CreatedAt) })
	return ps
}

func (c *Cloud) sortedNLBs() []*loadBalancer {
	ls := make([]*loadBalancer, 0, len(c.nlbs))
	for _, l := range c.nlbs {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].rec.CreatedAt.Before(ls[j].rec.CreatedAt) })
	return ls
}

// membersLocked returns the pool's members (leaving ones included) in
// creation order.
func (c *Cloud) membersLocked(poolID string) []*instance {
	var ms []*instance
	for _, inst := range c.instances {
		if inst.rec.PoolID == poolID {
			ms = append(ms, inst)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].rec.Index < ms[j].rec.Index })
	return ms
}

func (c *Cloud) poolCountsLocked(p *pool) poolCounts {
	pc := poolCounts{Size: p.rec.Size, Deleting: p.deleting, EverRunning: p.rec.EverRunning}
	for _, m := range c.membersLocked(p.rec.ID) {
		switch {
		case m.leave != stay:
			pc.Leaving++
		case m.state == stateRunning:
			pc.Active++
			pc.ActiveRunning++
		default:
			pc.Active++
		}
	}
	return pc
}

func (c *Cloud) poolStateLocked(p *pool) string {
	return poolState(c.poolCountsLocked(p))
}

// reconcilePoolLocked removes surplus members and creates missing ones.
func (c *Cloud) reconcilePoolLocked(ctx context.Context, p *pool, now time.Time) {
	members := c.membersLocked(p.rec.ID)
	if p.deleting {
		for _, m := range members {
			c.requestLeaveLocked(m, leavePoolDelete)
		}
		if len(members) == 0 {
			delete(c.pools, p.rec.ID)
			c.log.Info("instance pool deleted", "pool", p.rec.ID, "name", p.rec.Name)
		}
		return
	}
	var active []victim
	for _, m := range members {
		if m.leave == stay {
			active = append(active, victim{ID: m.rec.ID, Running: m.state == stateRunning, Index: m.rec.Index})
		}
	}
	if surplus := len(active) - p.rec.Size; surplus > 0 {
		for _, id := range pickVictims(active, surplus) {
			c.log.Info("scaling down member", "pool", p.rec.ID, "instance", id, "size", p.rec.Size)
			c.requestLeaveLocked(c.instances[id], leaveScaleDown)
		}
		return
	}
	if state := poolState(c.poolCountsLocked(p)); state == poolRunning && !p.rec.EverRunning {
		p.rec.EverRunning = true
	}
	missing := p.rec.Size - len(active)
	if missing <= 0 || now.Before(p.retryAt) {
		return
	}
	for range missing {
		ip, err := c.memberIPs.alloc()
		if err != nil {
			c.poolFailedLocked(p, fmt.Errorf("allocate member address: %w", err), now)
			return
		}
		p.rec.NextIndex++
		inst := &instance{
			rec: instanceRecord{
				ID:             newUUID(),
				Name:           fmt.Sprintf("%s-%s-%d", p.rec.InstancePrefix, p.rec.ID[:5], p.rec.NextIndex),
				PoolID:         p.rec.ID,
				Index:          p.rec.NextIndex,
				IP:             ip,
				InstanceTypeID: p.rec.InstanceTypeID,
				TemplateID:     p.rec.TemplateID,
				DiskSize:       p.rec.DiskSize,
				CreatedAt:      now.UTC(),
			},
			state: stateStarting,
			stop:  make(chan struct{}),
		}
		c.instances[inst.rec.ID] = inst
		c.log.Info("creating member", "pool", p.rec.ID, "instance", inst.rec.ID, "name", inst.rec.Name, "ip", ip)
		c.startWorkerLocked(ctx, inst)
	}
}

// poolFailedLocked records a member failure and delays the next start.
func (c *Cloud) poolFailedLocked(p *pool, err error, now time.Time) {
	p.failures++
	p.lastErr = err.Error()
	p.retryAt = now.Add(restartBackoff(p.failures))
	c.log.Warn("pool member failure", "pool", p.rec.ID, "failures", p.failures, "retry_at", p.retryAt, "err", err)
}

// requestLeaveLocked asks a member's worker to stop it for reason; a member
// already leaving keeps its first reason. The member shows its leaving state
// and is out of its load balancers as soon as this returns.
func (c *Cloud) requestLeaveLocked(inst *instance, reason leaveReason) {
	if inst == nil || inst.leave != stay {
		return
	}
	inst.leave = reason
	close(inst.stop)
	if !inst.started { // no worker: nothing runs, it can go at once
		c.removeInstanceLocked(inst)
		return
	}
	inst.state = leavingState(reason)
	c.syncBackendsLocked()
}

// leavingState is the state of a member leaving for reason.
func leavingState(reason leaveReason) string {
	switch reason {
	case leaveKill:
		return stateDestroying
	case leaveCrash:
		return stateError
	default:
		return stateStopping
	}
}

// removeInstanceLocked forgets a member whose process is gone.
func (c *Cloud) removeInstanceLocked(inst *instance) {
	delete(c.instances, inst.rec.ID)
	c.memberIPs.release(inst.rec.IP)
}

func (c *Cloud) startWorkerLocked(ctx context.Context, inst *instance) {
	if ctx.Err() != nil {
		return
	}
	inst.started = true
	inst.state = stateStarting
	c.wg.Add(1)
	go c.runMember(ctx, inst)
}

// memberSpecLocked returns the process spec of inst.
func (c *Cloud) memberSpecLocked(inst *instance) member.Spec {
	cpus := c.cfg.CPUPerVCPU
	if t, ok := findInstanceType(inst.rec.InstanceTypeID); ok {
		cpus = float64(t.CPUs) * c.cfg.CPUPerVCPU
	}
	return member.Spec{ID: inst.rec.ID, IP: inst.rec.IP, AppPort: c.cfg.AppPort, MetricsPort: c.cfg.MetricsPort, CPUs: cpus}
}

// memberEnd is why a member's serving phase ended.
type memberEnd int

const (
	endStop     memberEnd = iota // a leave was requested
	endExited                    // the process exited on its own after it was ready
	endShutdown                  // Run's context was cancelled
	endFailed                    // it could not start or become ready
)

// runMember is one member's worker: boot delay, start, wait for health,
// serve, then stop as asked. It owns the process; the record is updated
// under c.mu.
func (c *Cloud) runMember(ctx context.Context, inst *instance) {
	defer c.wg.Done()
	log := c.log.With("instance", inst.rec.ID, "name", inst.rec.Name)

	if d := c.cfg.BootDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-inst.stop:
			t.Stop()
			c.finishMember(inst, endStop)
			return
		case <-ctx.Done():
			t.Stop()
			c.finishMember(inst, endShutdown)
			return
		}
	}
	c.mu.Lock()
	spec := c.memberSpecLocked(inst)
	c.mu.Unlock()
	proc, err := c.members.Start(ctx, spec)
	if err != nil {
		end := endFailed
		if ctx.Err() != nil {
			end = endShutdown
		} else {
			c.mu.Lock()
			c.markFailedLocked(inst, end, fmt.Errorf("start member: %w", err))
			c.mu.Unlock()
		}
		c.finishMember(inst, end)
		return
	}
	c.mu.Lock()
	inst.rec.PID = proc.PID()
	c.mu.Unlock()
	c.poke()
	log.Info("member process started", "pid", proc.PID(), "ip", spec.IP, "cpus", spec.CPUs)

	ready, end, err := c.awaitReady(ctx, inst, proc)
	if ready {
		c.mu.Lock()
		inst.state = stateRunning
		if p := c.pools[inst.rec.PoolID]; p != nil {
			p.failures, p.lastErr = 0, ""
		}
		c.syncBackendsLocked()
		c.mu.Unlock()
		c.poke()
		log.Info("member running")
		select {
		case <-inst.stop:
			end = endStop
		case <-proc.Done():
			end, err = endExited, fmt.Errorf("member process exited: %v", exitStatus(proc.ExitErr()))
		case <-ctx.Done():
			end = endShutdown
		}
	}
	c.stopMember(ctx, inst, proc, end, err, log)
	c.finishMember(inst, end)
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// awaitReady waits until proc's /health answers 200. When it returns
// false, end says why it gave up (err explains a failure).
func (c *Cloud) awaitReady(ctx context.Context, inst *instance, proc memberProc) (ready bool, end memberEnd, err error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	readyc := make(chan error, 1)
	go func() { readyc <- proc.Ready(rctx, "/health") }()
	select {
	case err := <-readyc:
		switch {
		case err == nil:
			return true, 0, nil
		case ctx.Err() != nil:
			return false, endShutdown, nil
		default:
			return false, endFailed, fmt.Errorf("member not ready: %w", err)
		}
	case <-inst.stop:
		end = endStop
	case <-ctx.Done():
		end = endShutdown
	}
	cancel()
	<-readyc
	return false, end, nil
}

// markFailedLocked records that inst's process failed, so that the pool
// replaces it at once; a failure to start or become ready (endFailed) also
// counts toward the pool's backoff and failing operations.
func (c *Cloud) markFailedLocked(inst *instance, end memberEnd, err error) {
	inst.state = stateError
	if inst.leave == stay {
		inst.leave = leaveCrash
		close(inst.stop)
	}
	c.log.Warn("member failed", "instance", inst.rec.ID, "pid", inst.rec.PID, "err", err)
	if p := c.pools[inst.rec.PoolID]; p != nil && end == endFailed {
		c.poolFailedLocked(p, err, c.now())
	}
}

// stopMember stops proc as end and the leave reason require. The member is
// taken out of its load balancers before it is signalled.
func (c *Cloud) stopMember(ctx context.Context, inst *instance, proc memberProc, end memberEnd, err error, log *slog.Logger) {
	c.mu.Lock()
	switch {
	case end == endExited || end == endFailed:
		c.markFailedLocked(inst, end, err)
	case end == endShutdown && inst.leave == stay:
		inst.state = stateStopping
	default:
		inst.state = leavingState(inst.leave)
	}
	reason := inst.leave
	c.syncBackendsLocked() // before any signal: new connections go elsewhere
	c.mu.Unlock()
	c.poke()

	grace := c.cfg.EvictGrace
	if end == endShutdown || reason == leavePoolDelete {
		grace = c.cfg.ShutdownGrace
	}
	sctx, cancel := stopContext(ctx, grace, c.cfg.ShutdownGrace)
	defer cancel()
	if reason == leaveKill {
		log.Info("killing member", "pid", proc.PID())
		if err := proc.Kill(); err != nil {
			log.Warn("member kill failed", "err", err)
		}
	} else if end != endExited {
		log.Info("stopping member", "pid", proc.PID(), "reason", reason.String(), "shutdown", end == endShutdown, "grace", grace)
	}
	if err := proc.Stop(sctx); err != nil { // also cleans up after Kill or an exit
		log.Warn("member stop failed", "err", err)
	}
}

// stopContext bounds a stop by grace; if ctx (Run's) is cancelled meanwhile,
// by at most shutdownGrace more, so that shutdown stays quick.
func stopContext(ctx context.Context, grace, shutdownGrace time.Duration) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	stopAfter := context.AfterFunc(ctx, func() {
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-sctx.Done():
		}
	})
	return sctx, func() {
		stopAfter()
		cancel()
	}
}

// finishMember records the end of a member's worker: a member shut down
// with the cloud (not leaving) is kept for the next Run; any other is
// forgotten and its address released.
func (c *Cloud) finishMember(inst *instance, end memberEnd) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.poke()
	if end == endShutdown && inst.leave == stay {
		inst.state = stateStopped
		inst.rec.PID = 0
		inst.started = false
		return
	}
	c.removeInstanceLocked(inst)
	c.log.Info("member gone", "instance", inst.rec.ID, "reason", inst.leave.String())
}

// backendsLocked returns the pool's members a load balancer may use: those
// running and not leaving, by address.
func (c *Cloud) backendsLocked(poolID string) []nlb.Backend {
	var bs []nlb.Backend
	for _, m := range c.membersLocked(poolID) {
		if m.state == stateRunning && m.leave == stay {
			bs = append(bs, nlb.Backend{ID: m.rec.ID, IP: m.rec.IP})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].IP.Less(bs[j].IP) })
	return bs
}

// syncBackendsLocked gives every bound balancer its pool's current backends.
func (c *Cloud) syncBackendsLocked() {
	for _, lb := range c.nlbs {
		for _, s := range lb.services {
			if s.lb == nil {
				continue
			}
			bs := c.backendsLocked(s.rec.PoolID)
			if !equalBackends(bs, s.backends) {
				s.lb.SetBackends(bs)
				s.backends = bs
				c.log.Info("load balancer backends", "service", s.rec.ID, "count", len(bs))
			}
		}
	}
}

func equalBackends(a, b []nlb.Backend) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// reconcileNLBLocked binds missing service listeners and tears down a
// deleted load balancer.
func (c *Cloud) reconcileNLBLocked(ctx context.Context, lb *loadBalancer, now time.Time) {
	if lb.deleting {
		c.teardownNLBLocked(lb)
		return
	}
	for _, s := range lb.services {
		if !s.deleting && s.lb == nil && !now.Before(s.retryAt) {
			c.bindServiceLocked(ctx, lb, s, now)
		}
	}
}

// teardownNLBLocked unbinds the services of a deleted load balancer; it goes
// once they are all gone.
func (c *Cloud) teardownNLBLocked(lb *loadBalancer) {
	for _, s := range append([]*service(nil), lb.services...) {
		s.deleting = true
		if s.lb != nil {
			s.cancel()
		} else {
			c.removeServiceLocked(lb, s)
		}
	}
	if len(lb.services) == 0 {
		delete(c.nlbs, lb.rec.ID)
		c.nlbIPs.release(lb.rec.IP)
		c.log.Info("load balancer deleted", "nlb", lb.rec.ID)
	}
}

func (c *Cloud) removeServiceLocked(lb *loadBalancer, s *service) {
	for i, x := range lb.services {
		if x == s {
			lb.services = append(lb.services[:i], lb.services[i+1:]...)
			c.log.Info("load balancer service deleted", "nlb", lb.rec.ID, "service", s.rec.ID)
			return
		}
	}
}

func (c *Cloud) bindServiceLocked(ctx context.Context, lb *loadBalancer, s *service, now time.Time) {
	listen := netip.AddrPortFrom(lb.rec.IP, uint16(s.rec.Port)).String()
	b, err := c.newBalancer(s.rec.ID, listen, uint16(s.rec.TargetPort), checkOf(s.rec))
	if err != nil {
		s.state = "error"
		s.lastErr = err.Error()
		s.retryAt = now.Add(5 * time.Second)
		c.log.Warn("load balancer bind failed", "service", s.rec.ID, "listen", listen, "err", err)
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	s.lb, s.cancel, s.state, s.lastErr, s.backends = b, cancel, "running", "", nil
	c.log.Info("load balancer service listening", "nlb", lb.rec.ID, "service", s.rec.ID, "listen", listen, "target_port", s.rec.TargetPort)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := b.Run(sctx)
		cancel()
		c.mu.Lock()
		defer c.mu.Unlock()
		s.lb, s.cancel = nil, nil
		if err != nil && ctx.Err() == nil {
			s.state, s.lastErr = "error", err.Error()
			c.log.Warn("load balancer stopped", "service", s.rec.ID, "err", err)
		}
		if s.deleting {
			c.removeServiceLocked(lb, s)
		}
		c.poke()
	}()
}

// checkOf converts a service's spec health check (seconds) for nlb.
func checkOf(s serviceRecord) nlb.HealthCheck {
	hc := s.Healthcheck
	return nlb.HealthCheck{
		Mode:     hc.Mode,
		Port:     uint16(hc.Port),
		URI:      hc.URI,
		Interval: time.Duration(hc.Interval) * time.Second,
		Timeout:  time.Duration(hc.Timeout) * time.Second,
		Retries:  int(hc.Retries),
		TLSSNI:   hc.TLSSNI,
	}
}

// killStale ends member processes of a previous run still alive: only PIDs
// whose command line still matches that member.
func (c *Cloud) killStale(ctx context.Context, pids map[string]int) {
	for id, pid := range pids {
		if !isMemberProcess(pid, id) {
			continue
		}
		c.log.Warn("killing member process left by a previous run", "instance", id, "pid", pid)
		if err := killAndWait(ctx, pid, c.cfg.ShutdownGrace); err != nil {
			c.log.Warn("stale member kill failed", "instance", id, "pid", pid, "err", err)
		}
	}
}

// statusLocked returns the live health of a service's backends by address.
func (s *service) statusLocked() []apiServerStatus {
	out := []apiServerStatus{}
	if s.lb == nil {
		return out
	}
	for _, st := range s.lb.Status() {
		status := "failure"
		if st.Healthy {
			status = "success"
		}
		out = append(out, apiServerStatus{PublicIP: st.IP.String(), Status: status})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PublicIP < out[j].PublicIP })
	return out
}
