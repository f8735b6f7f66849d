// Package cloud is a local cloud speaking the subset of the Exoscale API v2
// that tidepool uses (zones, instance types, templates, instance pools,
// instances, network load balancers, operations), so that every other
// component talks to it with the official egoscale v3 client unchanged. It
// also keeps what the Exoscale CLI and deploy/terraform/exoscale create
// besides (security groups, IAM roles and API keys, SSH keys, standalone
// instances, private networks, elastic IPs, anti-affinity groups) as
// records (resources.go), enforces the IAM policy of API keys created
// through it (iam_policy.go), and offers an HTTPS front for clients with a
// fixed host (httpsfront.go).
//
// Instance pool members are real processes (`tidepool app`, each with its own
// loopback IP, CPU cgroup and node-exporter endpoint, see internal/cloud/member);
// network load balancer services are real TCP load balancers on their own
// loopback IP (internal/cloud/nlb) whose backends follow the pool's running members.
//
// Lifecycle: New loads the state file (if any) and binds nothing. Handler
// serves the API at any time; mutations are recorded at once and carried out
// by Run, which starts members and balancers and reconciles them with the
// desired state until its context is cancelled. Then Run stops every member
// (SIGTERM, SIGKILL after Config.ShutdownGrace) and balancer in parallel,
// saves the state and returns. A later New+Run on the same state directory
// recreates the pools, members (same IDs and IPs) and load balancers.
//
// It owns the local cloud's API, state and reconciling, and must not import
// the agents that use it (autoscaler, discover, demo), the test harnesses
// (cloudtest, buildbin) or promrun.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"tidepool/internal/cloud/nlb"
	"tidepool/internal/httpbody"
	"tidepool/internal/ratelog"
)

// Defaults for the zero values of Config.
const (
	DefaultKey         = "EXOtidepool0000000000000000"
	DefaultSecret      = "tidepool-local-secret"
	DefaultZone        = "ch-gva-2"
	DefaultAppPort     = 8080
	DefaultMetricsPort = 9100
	DefaultBootDelay   = 3 * time.Second
	DefaultCPUPerVCPU  = 0.25
	DefaultMaxPoolSize = 20
	DefaultEvictGrace  = 30 * time.Second
	// DefaultShutdownGrace exceeds the app's default drain (5 s, during which
	// a stopping member keeps serving while its health check fails), so that
	// stopping the cloud lets every member finish instead of SIGKILLing it.
	DefaultShutdownGrace    = 10 * time.Second
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
	// Zone is the zone served under /v2 (one of Zones; the others are
	// served under /zone/<name>/v2); "" means DefaultZone.
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
	// is started; nil means DefaultBootDelay, zero (or negative) none.
	BootDelay *time.Duration
	// CPUPerVCPU is the CPU quota in cores a member gets per vCPU of its
	// instance type; 0 means DefaultCPUPerVCPU.
	CPUPerVCPU float64
	// MaxPoolSize bounds pool sizes; 0 means DefaultMaxPoolSize.
	MaxPoolSize int
	// EvictGrace bounds a graceful member stop (evict, scale down) before
	// SIGKILL; 0 means DefaultEvictGrace. It should cover the app's drain.
	EvictGrace time.Duration
	// ShutdownGrace bounds stopping members when Run's context is cancelled
	// (and draining the load balancers); 0 means DefaultShutdownGrace. It
	// should exceed the members' drain (the app's --drain), else stopping the
	// cloud SIGKILLs them.
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
	// AppEnv is extra environment for member processes, on top of this
	// process's environment. Members never see the API credentials: every
	// variable naming them (EXOSCALE_KEY, TIDEPOOL_CLOUD_SECRET...) or whose
	// value holds Key or Secret is left out of both.
	AppEnv []string
	// AppOutput receives the members' stdout and stderr; nil discards them.
	// It must be safe for concurrent use (an *os.File is).
	AppOutput io.Writer
	// CgroupParent is the cgroup under which member groups are created; ""
	// means the member runner's default ("tidepool").
	CgroupParent string
	// NLBDataPath is how load balancer services move bytes (see
	// nlb.ParseDataPath); "" means nlb.DataPathAuto: the epoll event loop on
	// Linux, else the portable goroutine-per-connection path. Portable is the
	// way out where a kernel or sandbox refuses the event loop.
	NLBDataPath nlb.DataPath
	// NLBIdleTimeout closes a load balancer connection idle (no byte either
	// way) this long; 0 means nlb.DefaultIdleTimeout (350s), negative
	// never.
	NLBIdleTimeout time.Duration
	// NLBMaxConns caps each load balancer service's open client
	// connections (at the cap a new one closes the longest-idle one, or is
	// refused); 0 means nlb.DefaultMaxConns (4096), negative no cap but the
	// process's descriptor budget.
	NLBMaxConns int
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
	if !knownZone(cfg.Zone) {
		return cfg, fmt.Errorf("zone %q: want one of %s", cfg.Zone, strings.Join(Zones, ", "))
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
	dp, err := nlb.ParseDataPath(string(cfg.NLBDataPath))
	if err != nil {
		return cfg, fmt.Errorf("load balancer %w", err)
	}
	cfg.NLBDataPath = dp
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
	case cfg.BootDelay == nil:
		cfg.BootDelay = new(DefaultBootDelay)
	case *cfg.BootDelay < 0:
		cfg.BootDelay = new(time.Duration(0))
	default:
		cfg.BootDelay = new(*cfg.BootDelay) // not shared with the caller
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
	bodies      *httpbody.Reader // request bodies, read only for requests that pass checkHeader
	rejectLog   *ratelog.Limiter // "request rejected" lines
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
	res       *resourceStore // records-only resources (resources.go)

	wg sync.WaitGroup // member workers and balancer runs
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
		bodies:      httpbody.New(httpbody.Limits{Max: MaxBody, Concurrent: bodyConcurrent}),
		rejectLog:   ratelog.New(rejectLogEvery),
		kick:        make(chan struct{}, 1),
		pools:       map[string]*pool{},
		instances:   map[string]*instance{},
		nlbs:        map[string]*loadBalancer{},
		ops:         map[string]*operation{},
		memberIPs:   newIPPool(cfg.MemberNet),
		nlbIPs:      newIPPool(cfg.NLBNet),
		stalePIDs:   map[string]int{},
		res:         newResourceStore(),
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
