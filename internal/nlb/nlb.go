// Package nlb is the layer-4 (TCP) load balancer behind each Network Load
// Balancer service of the local cloud. A Service listens on one address and
// spreads client connections round-robin over the healthy members of its
// pool, sending the bytes to member IP:TargetPort unchanged (no TLS, no HTTP
// parsing). Members are probed (tcp, http or https) and take traffic only
// while healthy. Members can be replaced at any time; connections already
// open to a removed member run to their end. On shutdown the listener closes
// first and open connections get a grace period to finish.
package nlb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// noKeepAlive leaves TCP keep-alive probes off on both legs of every proxied
// connection, as HAProxy does by default. Every member and client of the
// local cloud is on this machine, where a peer that goes away has its
// sockets closed by the kernel (FIN or RST), so probes find nothing; Go's
// default (15s idle, 15s interval, 9 probes) costs four setsockopt(2) calls
// per socket.
const noKeepAlive = -1

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
	ln      *net.TCPListener
	log     *slog.Logger
	name    string
	drain   time.Duration
	dialer  net.Dialer
	policy  selector
	metrics *metrics

	table    atomic.Pointer[table] // healthy targets, read by the data path
	changed  chan struct{}         // capacity 1; poked when members or checks change
	started  atomic.Bool
	closeLn  sync.Once
	closeErr error
	rejected atomic.Uint64 // client connections closed because no member could take them

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
	lc := net.ListenConfig{KeepAlive: noKeepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Listen)
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
	s := &Service{
		ln:         ln.(*net.TCPListener),
		log:        log.With("service", cfg.Name, "listen", ln.Addr().String()),
		name:       cfg.Name,
		drain:      drain,
		dialer:     net.Dialer{Timeout: dial, KeepAlive: noKeepAlive},
		policy:     &roundRobin{},
		metrics:    newMetrics(cfg.Name),
		changed:    make(chan struct{}, 1),
		members:    make(map[string]*member),
		targetPort: cfg.TargetPort,
		check:      cfg.Check,
		prober:     newProber(cfg.Check.withDefaults(cfg.TargetPort)),
	}
	s.table.Store(&table{})
	return s, nil
}

// Addr returns the bound listener address.
func (s *Service) Addr() net.Addr { return s.ln.Addr() }

// Close closes the listener. It is for a Service whose Run will not be
// called; after Run it is a no-op. Closing during Run stops accepting but Run
// still returns only when its ctx is done.
func (s *Service) Close() error {
	s.closeLn.Do(func() { s.closeErr = s.ln.Close() })
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
	// hard ends dials and open connections; it outlives ctx by the drain timeout.
	hard, forceClose := context.WithCancel(context.WithoutCancel(ctx))
	defer forceClose()

	var conns sync.WaitGroup
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		s.acceptLoop(hard, &conns)
	}()
	checkCtx, stopChecks := context.WithCancel(ctx)
	defer stopChecks()
	checksDone := make(chan struct{})
	go func() {
		defer close(checksDone)
		s.superviseChecks(checkCtx)
	}()
	s.log.Info("load balancer started")

	<-ctx.Done()
	if err := s.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("closing listener failed", "err", err)
	}
	<-acceptDone
	stopChecks()
	<-checksDone

	drained := make(chan struct{})
	go func() {
		conns.Wait()
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
	select {
	case <-drained:
		s.log.Info("load balancer stopped", "forced", false)
	default:
		forceClose()
		<-drained
		s.log.Info("load balancer stopped", "forced", true, "drain_timeout", s.drain)
	}
	return nil
}

// acceptLoop serves each accepted connection in its own goroutine, counted
// in conns, until the listener is closed.
func (s *Service) acceptLoop(hard context.Context, conns *sync.WaitGroup) {
	var delay time.Duration
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE, ECONNABORTED and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		conns.Add(1)
		go func() {
			defer conns.Done()
			s.serve(hard, c)
		}()
	}
}

// serve proxies client to a healthy member and closes client when done. When
// no member can be reached the client is closed at once.
func (s *Service) serve(hard context.Context, client *net.TCPConn) {
	defer client.Close()
	backend, m := s.dial(hard)
	if backend == nil {
		s.rejected.Add(1)
		return
	}
	defer backend.Close()
	m.total.Add(1)
	m.active.Add(1)
	defer m.active.Add(-1)
	stop := context.AfterFunc(hard, func() {
		client.Close()
		backend.Close()
	})
	defer stop()
	pump(client, backend)
}

// dial connects to the member chosen by the policy and, if that fails, to the
// following healthy members in turn. It returns nil when none answered.
func (s *Service) dial(ctx context.Context) (*net.TCPConn, *member) {
	pool := s.table.Load().healthy
	first := s.policy.Select(pool)
	if first < 0 {
		return nil, nil
	}
	for i := range pool {
		t := pool[(first+i)%len(pool)]
		c, err := s.dialer.DialContext(ctx, "tcp", t.addr)
		if err == nil {
			return c.(*net.TCPConn), t.m
		}
		t.m.dialErrors.Add(1)
		if ctx.Err() != nil {
			return nil, nil
		}
		s.log.Warn("backend dial failed", "backend", t.m.id, "addr", t.addr, "err", err)
	}
	return nil, nil
}

// pump copies bytes both ways until both directions are done. A clean EOF
// from one side is passed on as a half-close (FIN) to the other; an error in
// either direction closes both connections. See copyAdaptive for how bytes
// are moved. The caller closes both connections when pump returns.
func pump(client, backend *net.TCPConn) {
	var ended atomic.Bool // one direction has reached a clean EOF
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(backend, client, &ended)
	}()
	copyHalf(client, backend, &ended)
	<-done
}

// copyHalf copies src to dst and passes src's EOF on as a half-close of dst,
// except in the direction that ends last: both connections are closed right
// after it, which sends the same FIN (every byte received has been read, so
// the close cannot turn into a reset) and saves a shutdown(2).
func copyHalf(dst, src *net.TCPConn, ended *atomic.Bool) {
	if err := copyAdaptive(dst, src); err != nil {
		// Reset, timeout or forced close: tear down both directions.
		src.Close()
		dst.Close()
		return
	}
	if ended.Swap(true) {
		return
	}
	if err := dst.CloseWrite(); err != nil {
		src.Close()
		dst.Close()
	}
}

// pumpBufSize is the read/write buffer of one direction of a connection;
// a read that fills it switches that direction to splice(2).
const pumpBufSize = 8 << 10

var pumpBufs = sync.Pool{New: func() any { b := make([]byte, pumpBufSize); return &b }}

// copyAdaptive copies src to dst until EOF (nil) or an error. Small
// exchanges, the usual request/response traffic, go through a pooled 8 KiB
// buffer with read(2) and write(2); once a read fills the buffer, the rest of
// that direction is a bulk transfer and goes to io.Copy, which uses
// splice(2) between TCP connections (no copy to user space). splice costs
// the same number of system calls per transfer as read and write, but every
// copy in flight holds a pipe (two more file descriptors per direction, so
// six instead of two per proxied connection) taken from a pool that every
// garbage collection empties, after which new pipes cost pipe2(2) and
// fcntl(2). The buffer is held while the connection is open.
func copyAdaptive(dst, src *net.TCPConn) error {
	bp := pumpBufs.Get().(*[]byte)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				pumpBufs.Put(bp)
				return werr
			}
		}
		if rerr != nil {
			pumpBufs.Put(bp)
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
		if n == len(buf) {
			pumpBufs.Put(bp)
			_, err := io.Copy(dst, src)
			return err
		}
	}
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
