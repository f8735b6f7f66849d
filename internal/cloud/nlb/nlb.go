// Package nlb is the layer-4 (TCP) load balancer behind each Network Load
// Balancer service of the local cloud. A Service listens on one address and
// spreads client connections round-robin over the healthy members of its
// pool, sending the bytes to member IP:TargetPort unchanged (no TLS, no HTTP
// parsing). Members are probed (tcp, http or https) and take traffic only
// while healthy. Members can be replaced at any time; connections already
// open to a removed member run to their end. On shutdown the listener closes
// first and open connections get a grace period to finish. Each service
// closes connections idle for its idle timeout and caps its open
// connections, making room by closing idle ones; the services of a process
// share a descriptor budget that leaves room for health checks (limits.go).
//
// On Linux the bytes are moved by one epoll event loop per CPU on raw
// non-blocking sockets (epoll_*_linux.go); elsewhere by a goroutine per
// direction on net.TCPConn (netpath.go). Both behave the same; docs/nlb.md
// says why the event loop exists.
//
// It owns the load balancer's data path and health checks, and must not import
// the cloud that drives it (internal/cloud) or any other tidepool package.
package nlb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tidepool/internal/ratelog"
)

// Defaults applied to zero Config fields.
const (
	DefaultDrainTimeout = 10 * time.Second
	DefaultDialTimeout  = 5 * time.Second
)

// Backend is one pool member.
type Backend struct {
	ID string     // instance id; unique within a service
	IP netip.Addr // member IP; traffic goes to IP:TargetPort, probes to IP:HealthCheck.Port
}

// Config configures a Service. Only Listen and TargetPort are required.
type Config struct {
	Listen     string       // "ip:port" to bind; port 0 picks a free port (see Service.Addr)
	TargetPort uint16       // member port that receives client traffic; must not be zero
	Check      HealthCheck  // how members are probed; see HealthCheck for defaults
	Logger     *slog.Logger // nil = discard

	// Name labels this service's metrics (label "service"). Give each
	// Service registered with the same Prometheus registry its own Name.
	Name string
	// DrainTimeout bounds how long Run waits for open connections after ctx
	// is done before closing them. Zero means 10s; negative means no wait.
	DrainTimeout time.Duration
	// DialTimeout bounds one connect attempt to a member. Zero means 5s.
	DialTimeout time.Duration
	// DataPath selects how bytes are moved (see ParseDataPath); "" means
	// DataPathAuto: the epoll event loop on Linux, the portable
	// goroutine-per-connection path elsewhere.
	DataPath DataPath
	// IdleTimeout closes a connection through which no byte has moved,
	// either way, for this long (both sides are closed, as after an
	// error). Zero means DefaultIdleTimeout (350s); negative means never.
	IdleTimeout time.Duration
	// MaxConns bounds the client connections open at once, connecting ones
	// included. A new connection beyond it closes the connection that has
	// been idle longest, if that one has been idle for at least a second;
	// otherwise the new connection is closed at once (counted in
	// tidepool_nlb_refused_connections_total). The same happens when the
	// process's descriptor budget is spent (the descriptor limit, raised to
	// its maximum by the first New, minus a reserve for health checks and
	// the rest of the process). Zero means DefaultMaxConns (4096);
	// negative means no cap but the descriptor budget.
	MaxConns int
}

// BackendStatus is the health of one member as reported by Service.Status.
type BackendStatus struct {
	ID      string
	IP      netip.Addr
	Healthy bool // false until the member passes its first probe(s)

	Probes    int    // probe results recorded with the current health check settings
	LastError string // why the last probe failed; "" when it passed or none ran yet
}

// member is one pool member. Health fields are guarded by Service.mu; the
// counters are updated by the data path without locks.
type member struct {
	id string
	ip netip.Addr

	healthy bool
	probes  int
	lastErr string

	active     atomic.Int64  // open proxied connections
	total      atomic.Uint64 // connections proxied since the member was added
	dialErrors atomic.Uint64 // failed connect attempts
}

// Service is one load-balanced TCP service. Create it with New, then call Run
// once. SetBackends, SetConfig and Status are safe to call from any goroutine
// at any time, before, during or after Run.
type Service struct {
	dp      dataPath
	log     *slog.Logger
	name    string
	drain   time.Duration
	dial    time.Duration
	policy  selector
	metrics *metrics

	table    atomic.Pointer[table] // healthy targets, read by the data path
	changed  chan struct{}         // capacity 1; poked when members or checks change
	started  atomic.Bool
	closeLn  sync.Once
	closeErr error
	rejected atomic.Uint64 // client connections closed because no member could take them

	idle     time.Duration // Config.IdleTimeout with its default; 0: never
	maxConns int64         // Config.MaxConns with its default; 0: no cap
	open     atomic.Int64  // client connections admitted and not yet closed
	refused  atomic.Uint64 // client connections closed at once: limit reached, none idle enough to evict
	evicted  atomic.Uint64 // idle connections closed to make room for a new one
	idled    atomic.Uint64 // connections closed by the idle timeout

	// evictSilentAfter and evictIdleAfter are the constants of the same
	// names (tests shorten them before Run).
	evictSilentAfter, evictIdleAfter time.Duration

	// Rate limits of the data path's warnings, so that a flood of bad
	// connections does not flood the log.
	refuseLog, dialLog, acceptLog, probeLog *ratelog.Limiter

	mu         sync.Mutex
	members    map[string]*member
	targetPort uint16
	check      HealthCheck // as configured, before defaults
	prober     *prober     // built from check with defaults applied
	gen        uint64      // bumped when prober changes; stale probe results are dropped
}

// New validates cfg and binds the listener. It starts no goroutines: call Run
// to serve, or Close to release the listener if Run will not be called.
func New(cfg Config) (*Service, error) {
	if cfg.TargetPort == 0 {
		return nil, errors.New("nlb: target port must not be zero")
	}
	if err := cfg.Check.Validate(); err != nil {
		return nil, fmt.Errorf("nlb: %w", err)
	}
	if cfg.DialTimeout < 0 {
		return nil, fmt.Errorf("nlb: dial timeout %v must not be negative", cfg.DialTimeout)
	}
	want, err := ParseDataPath(string(cfg.DataPath))
	if err != nil {
		return nil, fmt.Errorf("nlb: %w", err)
	}
	dp, err := newDataPath(cfg.Listen, want)
	if err != nil {
		return nil, fmt.Errorf("nlb: listen: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	drain := cfg.DrainTimeout
	if drain == 0 {
		drain = DefaultDrainTimeout
	}
	dial := cfg.DialTimeout
	if dial == 0 {
		dial = DefaultDialTimeout
	}
	idle := cfg.IdleTimeout
	switch {
	case idle == 0:
		idle = DefaultIdleTimeout
	case idle < 0:
		idle = 0
	}
	maxConns := int64(cfg.MaxConns)
	switch {
	case maxConns == 0:
		maxConns = DefaultMaxConns
	case maxConns < 0:
		maxConns = 0
	}
	// The first Service raises the process's descriptor limit (and logs
	// it), unless RaiseFileLimit did already, before any connection arrives.
	RaiseFileLimit(log)
	s := &Service{
		dp:               dp,
		log:              log.With("service", cfg.Name, "listen", dp.addr().String()),
		name:             cfg.Name,
		drain:            drain,
		dial:             dial,
		idle:             idle,
		maxConns:         maxConns,
		evictSilentAfter: evictSilentAfter,
		evictIdleAfter:   evictIdleAfter,
		refuseLog:        ratelog.New(warnEvery),
		dialLog:          ratelog.New(warnEvery),
		acceptLog:        ratelog.New(warnEvery),
		probeLog:         ratelog.New(warnEvery),
		policy:           &roundRobin{},
		metrics:          newMetrics(cfg.Name),
		changed:          make(chan struct{}, 1),
		members:          make(map[string]*member),
		targetPort:       cfg.TargetPort,
		check:            cfg.Check,
		prober:           newProber(cfg.Check.withDefaults(cfg.TargetPort)),
	}
	s.table.Store(&table{})
	return s, nil
}

// Addr returns the bound listener address.
func (s *Service) Addr() net.Addr { return s.dp.addr() }

// DataPath returns the data path serving the Service: DataPathEpoll or
// DataPathPortable, never DataPathAuto.
func (s *Service) DataPath() DataPath { return s.dp.name() }

// Close closes the listener. It is for a Service whose Run will not be
// called; after Run it is a no-op. Closing during Run stops accepting but Run
// still returns only when its ctx is done.
func (s *Service) Close() error {
	s.closeLn.Do(func() { s.closeErr = s.dp.stopAccepting() })
	return s.closeErr
}

// Run accepts and proxies connections and probes members until ctx is done.
// Then it closes the listener, stops probing, waits up to the drain timeout
// for open connections to finish, closes the rest, and returns nil once every
// goroutine it started has returned. Run may be called only once.
func (s *Service) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("nlb: Run called more than once")
	}
	if err := s.dp.start(s); err != nil {
		s.Close()
		return fmt.Errorf("nlb: %w", err)
	}
	checkCtx, stopChecks := context.WithCancel(ctx)
	defer stopChecks()
	checksDone := make(chan struct{})
	go func() {
		defer close(checksDone)
		s.superviseChecks(checkCtx)
	}()
	s.log.Info("load balancer started", "data_path", s.dp.name())

	<-ctx.Done()
	if err := s.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("closing listener failed", "err", err)
	}
	stopChecks()
	<-checksDone

	drained := make(chan struct{})
	go func() {
		s.dp.waitConns()
		close(drained)
	}()
	if s.drain > 0 {
		timer := time.NewTimer(s.drain)
		select {
		case <-drained:
		case <-timer.C:
		}
		timer.Stop()
	}
	forced := false
	select {
	case <-drained:
	default:
		forced = true
		s.dp.forceClose()
		<-drained
	}
	s.dp.stop()
	s.log.Info("load balancer stopped", "forced", forced, "drain_timeout", s.drain)
	return nil
}

// SetBackends replaces the member set. Members are matched by ID: one whose
// IP is unchanged keeps its health state; new members (or a changed IP)
// start unhealthy and are probed at once (when Run is active). Removed
// members get no new connections; their open connections run to the end.
// Entries with an invalid IP are skipped; for duplicate IDs the last wins.
func (s *Service) SetBackends(bs []Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*member, len(bs))
	for _, b := range bs {
		if !b.IP.IsValid() {
			s.log.Warn("backend skipped", "backend", b.ID, "reason", "invalid IP")
			continue
		}
		if m, ok := s.members[b.ID]; ok && m.ip == b.IP {
			next[b.ID] = m
			continue
		}
		next[b.ID] = &member{id: b.ID, ip: b.IP}
	}
	for id := range s.members {
		if _, ok := next[id]; !ok {
			s.log.Info("backend removed", "backend", id)
		}
	}
	for id, m := range next {
		if s.members[id] != m {
			s.log.Info("backend added", "backend", id, "ip", m.ip)
		}
	}
	s.members = next
	s.table.Store(buildTable(s.members, s.targetPort))
	s.poke()
}

// SetConfig updates the target port and health check live. New connections
// use the new port at once; open connections are untouched. If the effective
// health check changed, every member is probed at once with it, keeping its
// current health until the probes decide otherwise. An invalid hc is logged
// and the previous health check stays in force.
func (s *Service) SetConfig(targetPort uint16, hc HealthCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if targetPort == 0 {
		s.log.Error("config update ignored", "reason", "target port must not be zero")
		return
	}
	if err := hc.Validate(); err != nil {
		s.log.Error("health check update ignored", "err", err)
		hc = s.check
	}
	if targetPort != s.targetPort {
		s.log.Info("target port changed", "from", s.targetPort, "to", targetPort)
		s.targetPort = targetPort
		s.table.Store(buildTable(s.members, s.targetPort))
	}
	s.check = hc
	if eff := hc.withDefaults(targetPort); eff != s.prober.hc {
		s.log.Info("health check changed", "mode", eff.Mode, "port", eff.Port, "uri", eff.URI,
			"interval", eff.Interval, "timeout", eff.Timeout, "retries", eff.Retries)
		s.prober = newProber(eff)
		s.gen++
		for _, m := range s.members {
			m.probes = 0
		}
		s.poke()
	}
}

// poke tells the health check supervisor to reconcile. It never blocks.
func (s *Service) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Status returns the members with their health, sorted by ID.
func (s *Service) Status() []BackendStatus {
	s.mu.Lock()
	out := make([]BackendStatus, 0, len(s.members))
	for _, m := range s.members {
		out = append(out, BackendStatus{ID: m.id, IP: m.ip, Healthy: m.healthy, Probes: m.probes, LastError: m.lastErr})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b BackendStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}
