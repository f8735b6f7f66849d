//go:build linux

package nlb

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollSupported tells newDataPath that epollPath runs on this platform.
const epollSupported = true

const (
	loopBufSize     = 64 << 10 // one event loop's read buffer, shared by all its connections
	loopMaxEvents   = 256      // events taken per epoll_wait(2)
	acceptBatch     = 64       // connections accepted per listener event before other events get a turn
	maxScanEvery    = 100 * time.Millisecond
	listenBacklog   = 65535 // the kernel caps it at net.core.somaxconn
	maxSpare        = 32    // pending-write buffers a loop keeps for reuse
	maxReadsPerTurn = 16    // full reads from one socket before the loop's other sockets get a turn
)

// Event masks. Connection sockets are edge-triggered and registered once for
// everything, so no epoll_ctl(2) is needed after EPOLL_CTL_ADD; closing a
// socket removes it from the epoll set.
const (
	// A connected socket is watched for input only; EPOLLOUT is added
	// (EPOLL_CTL_MOD) the first time a write does not go through. Watching
	// it from the start would make every registration of a writable
	// socket an event, i.e. a wake-up of the loop for nothing.
	inEvents     = unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLRDHUP | unix.EPOLLET
	inOutEvents  = inEvents | unix.EPOLLOUT
	listenEvents = unix.EPOLLIN
)

var (
	errConnectTimeout = errors.New("connect: i/o timeout")
	errSelfConnect    = errors.New("connect: connected to itself (nothing listens on the member's port)")
)

// epollPath is the Linux data path: one event loop per GOMAXPROCS, each a
// goroutine with an epoll instance and a listening socket of its own (all
// bound to the same address with SO_REUSEPORT, so the kernel spreads new
// connections over the loops and wakes only the one that gets it). The
// loop that accepts a connection connects it to a member and moves its
// bytes until it ends, so a connection's state is only ever touched by one
// goroutine and needs no lock. A loop does not block in epoll_wait(2): its
// epoll descriptor is watched by the Go runtime's network poller, and the
// loop parks on it like a goroutine waiting on a net.Conn (see run).
//
// Compared with a goroutine per direction on net.TCPConn (netPath), a
// connection costs about 15 system calls instead of 26 (HAProxy 2.6: 17):
// accept4, socket, TCP_NODELAY on the member leg (the client leg inherits
// it from the listener), connect, two EPOLL_CTL_ADD, a read and a write per
// exchanged message, shutdown and two closes; no getsockname/getpeername, no
// read that ends in EAGAIN in the usual exchange (edge-triggered events and
// short reads tell when a socket is drained), no EPOLL_CTL_DEL, and one
// goroutine wake-up per batch of events instead of one per message and
// direction. The client's first bytes go out right after connect(2) (see
// sendEarly) and sockets are watched for writability only once a write
// stalls, so a short exchange wakes the loop for the accept, the answer and
// the ends of the connection only.
type epollPath struct {
	lfds  []int        // listening sockets, non-blocking; loop i accepts on lfds[i] if it has one
	laddr *net.TCPAddr // where lfds[0] is bound; the other loops' listeners bind there too
	s     *Service     // set by start

	loops   []*loop
	running sync.WaitGroup // loop goroutines
	conns   sync.WaitGroup // accepted connections not yet closed

	// Requests to the loops; each loop reads them when its eventfd is
	// written (wake).
	stopAccept atomic.Bool
	force      atomic.Bool
	quit       atomic.Bool
	acceptAck  sync.WaitGroup // one per loop still watching its listener

	// heldBack counts writes a socket did not take in full (the rest was
	// held back until it could): how often back-pressure set in.
	heldBack atomic.Uint64

	mu            sync.Mutex // guards started, acceptStopped, closeErr
	started       bool
	acceptStopped bool
	closeErr      error
}

var _ dataPath = (*epollPath)(nil)

// newEpollPath binds listen (as net.Listen("tcp", listen) would: a missing
// or unspecified IPv6 host means every address, IPv4 included).
func newEpollPath(listen string) (dataPath, error) {
	ta, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return nil, err
	}
	fd, err := listenSocket(ta)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s: %w", listen, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen tcp %s: %w", listen, os.NewSyscallError("getsockname", err))
	}
	return &epollPath{lfds: []int{fd}, laddr: tcpAddr(sa)}, nil
}

// listenSocket returns a bound, listening, non-blocking socket for ta with
// SO_REUSEADDR, SO_REUSEPORT (the other loops' listeners bind the same
// address) and TCP_NODELAY (inherited by accepted sockets). A missing or
// unspecified IP listens on every IPv4 and IPv6 address, as net.Listen.
func listenSocket(ta *net.TCPAddr) (int, error) {
	family, dual := unix.AF_INET6, false
	var sa unix.Sockaddr
	switch ip4 := ta.IP.To4(); {
	case ta.IP == nil || ta.IP.IsUnspecified():
		dual = true
		sa = &unix.SockaddrInet6{Port: ta.Port}
	case ip4 != nil:
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: ta.Port, Addr: [4]byte(ip4)}
	default:
		sa = &unix.SockaddrInet6{Port: ta.Port, Addr: [16]byte(ta.IP.To16()), ZoneId: zoneIndex(ta.Zone)}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil && dual {
		// No IPv6 here: every IPv4 address instead.
		family, dual = unix.AF_INET, false
		sa = &unix.SockaddrInet4{Port: ta.Port}
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	step := func(name string, err error) error {
		if err != nil {
			return os.NewSyscallError(name, err)
		}
		return nil
	}
	err = errors.Join(
		step("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)),
		step("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)),
		step("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)),
	)
	if err == nil && dual {
		err = step("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0))
	}
	if err == nil {
		err = step("bind", unix.Bind(fd, sa))
	}
	if err == nil {
		err = step("listen", unix.Listen(fd, listenBacklog))
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// zoneIndex returns the interface index of an IPv6 zone ("eth0" or "2").
func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	n, _ := strconv.ParseUint(zone, 10, 32)
	return uint32(n)
}

func tcpAddr(sa unix.Sockaddr) *net.TCPAddr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		a := &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
		if sa.ZoneId != 0 {
			a.Zone = strconv.FormatUint(uint64(sa.ZoneId), 10)
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return &net.TCPAddr{}
}

func (p *epollPath) name() string   { return "epoll" }
func (p *epollPath) addr() net.Addr { return p.laddr }

func (p *epollPath) start(s *Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.s = s
	p.started = true
	if p.acceptStopped {
		return nil // closed before Run: nothing will ever arrive
	}
	var errs []error
	for i := range runtime.GOMAXPROCS(0) {
		lfd := p.lfds[0]
		if i > 0 {
			fd, err := listenSocket(p.laddr)
			if err != nil {
				errs = append(errs, fmt.Errorf("listener of loop %d: %w", i, err))
				continue
			}
			lfd = fd
		}
		l, err := newLoop(p, lfd)
		if err != nil {
			if i == 0 {
				return fmt.Errorf("starting event loop: %w", err)
			}
			// A listener nobody accepts on would hold the connections
			// the kernel gives it: close it.
			unix.Close(lfd)
			errs = append(errs, err)
			continue
		}
		if i > 0 {
			p.lfds = append(p.lfds, lfd)
		}
		p.loops = append(p.loops, l)
	}
	if len(errs) > 0 {
		s.log.Warn("fewer event loops than CPUs", "loops", len(p.loops), "err", errors.Join(errs...))
	}
	p.acceptAck.Add(len(p.loops))
	for _, l := range p.loops {
		p.running.Go(l.run)
	}
	return nil
}

func (p *epollPath) stopAccepting() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.acceptStopped {
		return p.closeErr
	}
	p.acceptStopped = true
	if p.started {
		p.stopAccept.Store(true)
		p.wakeAll()
		p.acceptAck.Wait()
	}
	for _, fd := range p.lfds {
		if err := unix.Close(fd); err != nil && p.closeErr == nil {
			p.closeErr = os.NewSyscallError("close", err)
		}
	}
	return p.closeErr
}

func (p *epollPath) waitConns() { p.conns.Wait() }

func (p *epollPath) forceClose() {
	p.force.Store(true)
	p.wakeAll()
}

func (p *epollPath) stop() {
	p.quit.Store(true)
	p.wakeAll()
	p.running.Wait()
	// Only now: wakeAll may write to a loop's eventfd until here, also
	// after that loop ended on an error.
	for _, l := range p.loops {
		l.close()
	}
}

func (p *epollPath) wakeAll() {
	one := [8]byte{1}
	for _, l := range p.loops {
		unix.Write(l.evfd, one[:]) // only fails when the counter is about to overflow: already woken
	}
}

// loop is one event loop. Everything in it belongs to the goroutine running
// run, except epfd (file) and evfd, which the path closes in stop.
type loop struct {
	p        *epollPath
	epfd     int
	file     *os.File  // epfd, registered with the Go runtime's network poller
	deadline time.Time // file's read deadline
	evfd     int       // eventfd: written by the path to make the loop look at its requests
	lfd      int       // this loop's listening socket; -1 when it has none

	listening   bool // lfd is in the epoll set
	accepting   bool // still to acknowledge a stopAccept request
	acceptDelay time.Duration
	resumeAt    time.Time // when accepting resumes after running out of file descriptors

	buf        []byte
	spare      [][]byte // pending-write buffers for reuse
	sides      []*side  // indexed by file descriptor: both ends of this loop's connections
	gen        uint32   // tags events, so one for a closed and reused descriptor is ignored
	ready      []*side  // readable sockets deferred by transfer (see maxReadsPerTurn)
	readyNext  []*side  // swapped with ready while it is worked through
	connecting []*proxyConn
	checking   []*proxyConn // swapped with connecting when deadlines are checked
	nextScan   time.Time
	scanEvery  time.Duration

	events []unix.EpollEvent
	ev     unix.EpollEvent // argument of epoll_ctl, kept here so it does not escape per call
	rsa4   unix.RawSockaddrInet4
	rsa6   unix.RawSockaddrInet6
	rsaAny unix.RawSockaddrAny // getsockname's result
}

// proxyConn is one client connection and its member connection.
type proxyConn struct {
	client, backend side
	pool            []target // healthy members when the client arrived
	first, tries    int      // policy's pick; members tried so far (ring order from first)
	target          *target  // member being connected to or connected
	m               *member  // set once connected: active and total count it
	connecting      bool
	deadline        time.Time // of the connect in progress
	closed          bool
}

// side is one socket of a proxyConn.
type side struct {
	fd   int // -1 when closed or not yet opened
	gen  uint32
	conn *proxyConn
	peer *side

	pending  []byte // read from peer, not yet written to fd (the peer is not read meanwhile)
	off      int    // written part of pending
	readable bool   // data or EOF may be waiting to be read
	urgent   bool   // TCP urgent data arrived: a read may stop short at its mark, so read until EAGAIN
	outOn    bool   // EPOLLOUT is in the socket's event mask
	queued   bool   // in loop.ready
	rdhup    bool   // the peer shut down its writing: reading goes on until EOF
	eof      bool   // read returned EOF
	shut     bool   // writing to fd has been shut down
}

func (sd *side) pendingLen() int { return len(sd.pending) - sd.off }

// newLoop creates a loop accepting on lfd (none when -1).
func newLoop(p *epollPath, lfd int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile hands it to the network poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		file.Close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	l := &loop{
		p:         p,
		epfd:      epfd,
		file:      file,
		evfd:      evfd,
		lfd:       lfd,
		buf:       make([]byte, loopBufSize),
		events:    make([]unix.EpollEvent, loopMaxEvents),
		scanEvery: min(maxScanEvery, max(p.s.dial/10, time.Millisecond)),
	}
	err = l.ctl(unix.EPOLL_CTL_ADD, evfd, unix.EPOLLIN, 0)
	if err == nil && lfd >= 0 {
		err = l.ctl(unix.EPOLL_CTL_ADD, lfd, listenEvents, 0)
		l.listening, l.accepting = err == nil, err == nil
	}
	if err != nil {
		unix.Close(evfd)
		file.Close()
		return nil, err
	}
	return l, nil
}

// ctl calls epoll_ctl(2). gen 0 marks the listener and the eventfd; a
// connection's sockets carry their side's gen.
func (l *loop) ctl(op, fd int, events uint32, gen uint32) error {
	l.ev = unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(gen)}
	_, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&l.ev)), 0, 0)
	if err := errnoErr(e); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// run handles events until the path asks it to quit, then closes whatever
// is still open and releases the loop's descriptors.
//
// The loop does not block in epoll_wait(2): its epoll descriptor is itself
// watched by the Go runtime's network poller (it becomes readable when one
// of its sockets has an event), so between events the goroutine is parked
// like one waiting on a net.Conn and the thread is free. A goroutine blocked
// in a system call instead holds its thread and, when every P is in a
// system call, makes the runtime's monitor take the Ps away every 20µs;
// on this kind of machine that cost more than the data path itself.
// Deadlines (connect timeouts, resuming accept) are the descriptor's read
// deadline.
func (l *loop) run() {
	defer l.release()
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.p.s.log.Error("event loop failed", "err", err)
		return
	}
	quit := false
	handle := func(uintptr) bool {
		for {
			n, err := epollWaitNow(l.epfd, l.events)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				l.p.s.log.Error("event loop failed", "err", os.NewSyscallError("epoll_wait", err))
				quit = true
				return true
			case n == 0:
				l.setDeadline()
				return false // park until the epoll descriptor is readable or the deadline passes
			}
			level := false // a level-triggered descriptor was reported
			for i := range n {
				ev := &l.events[i]
				fd := int(ev.Fd)
				if ev.Pad == 0 {
					level = true
					switch {
					case fd == l.evfd:
						if l.control() {
							quit = true
							return true
						}
					case fd == l.lfd && l.listening:
						l.accept()
					}
					continue
				}
				if fd < len(l.sides) {
					if sd := l.sides[fd]; sd != nil && sd.gen == uint32(ev.Pad) {
						l.handle(sd, ev.Events)
					}
				}
			}
			l.timers()
			l.runReady()
			if n < len(l.events) && !level && len(l.ready) == 0 {
				// Every edge-triggered event was taken and new ones make
				// the descriptor readable again: park without another
				// epoll_wait. (A level-triggered one may still be ready
				// and is looked at once more first.)
				l.setDeadline()
				return false
			}
		}
	}
	for !quit {
		err := rc.Read(handle)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			l.timers()
			l.setDeadline()
		default:
			l.p.s.log.Error("event loop failed", "err", err)
			return
		}
	}
}

// runReady resumes the sockets transfer deferred.
func (l *loop) runReady() {
	if len(l.ready) == 0 {
		return
	}
	list := l.ready
	l.ready = l.readyNext[:0]
	for _, sd := range list {
		sd.queued = false
		if sd.fd >= 0 && !sd.conn.closed && sd.readable {
			l.transfer(sd, sd.peer)
		}
	}
	clear(list)
	l.readyNext = list[:0]
}

// setDeadline sets the epoll descriptor's read deadline to the next connect
// deadline check or resumption of accept, if any.
func (l *loop) setDeadline() {
	var next time.Time
	if len(l.connecting) > 0 {
		next = l.nextScan
		if next.IsZero() {
			next = time.Now().Add(l.scanEvery)
			l.nextScan = next
		}
	}
	if !l.resumeAt.IsZero() && (next.IsZero() || l.resumeAt.Before(next)) {
		next = l.resumeAt
	}
	if next.Equal(l.deadline) {
		return
	}
	l.deadline = next
	l.file.SetReadDeadline(next) // cannot fail: the file is pollable and open
}

// release closes every connection of the loop. It also acknowledges a stop-accept request the loop can no longer answer.
func (l *loop) release() {
	l.closeAll()
	if l.listening {
		l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0, 0)
		l.listening = false
	}
	if l.accepting {
		l.accepting = false
		l.p.acceptAck.Done()
	}
}

// close closes the loop's own descriptors (not its listener: the path's).
func (l *loop) close() {
	unix.Close(l.evfd)
	l.file.Close()
}

// control answers the path's requests; it reports whether to quit.
func (l *loop) control() (quit bool) {
	var b [8]byte
	unix.Read(l.evfd, b[:]) // resets the counter; EAGAIN when already reset
	p := l.p
	if p.stopAccept.Load() && l.accepting {
		if l.listening {
			l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0, 0)
			l.listening = false
		}
		l.accepting = false
		p.acceptAck.Done()
	}
	if p.force.Load() {
		l.closeAll()
	}
	return p.quit.Load()
}

// timers resumes accepting and fails connects past their deadline, when due.
func (l *loop) timers() {
	if len(l.connecting) == 0 && l.resumeAt.IsZero() {
		l.nextScan = time.Time{}
		return
	}
	now := time.Now()
	if !l.resumeAt.IsZero() && !now.Before(l.resumeAt) {
		l.resumeAt = time.Time{}
		if l.accepting && !l.listening {
			if err := l.ctl(unix.EPOLL_CTL_ADD, l.lfd, listenEvents, 0); err != nil {
				l.pauseAccept(err)
			} else {
				l.listening = true
			}
		}
	}
	switch {
	case len(l.connecting) == 0:
		l.nextScan = time.Time{}
	case l.nextScan.IsZero():
		l.nextScan = now.Add(l.scanEvery)
	case !now.Before(l.nextScan):
		l.expireConnects(now)
		l.nextScan = now.Add(l.scanEvery)
	}
}

// expireConnects fails the connects past their deadline (the next member is
// tried) and drops the connections that are no longer connecting.
func (l *loop) expireConnects(now time.Time) {
	list := l.connecting
	l.connecting = l.checking[:0]
	for _, pc := range list {
		switch {
		case pc.closed || !pc.connecting:
		case now.Before(pc.deadline):
			l.connecting = append(l.connecting, pc)
		default:
			l.connectFailed(pc, errConnectTimeout)
		}
	}
	clear(list)
	l.checking = list[:0]
}

// accept takes new connections from the listener and starts connecting them.
func (l *loop) accept() {
	for range acceptBatch {
		fd, err := raw6(unix.SYS_ACCEPT4, uintptr(l.lfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if err != nil {
			switch err {
			case unix.EAGAIN:
				return
			case unix.EINTR, unix.ECONNABORTED, unix.EPROTO, unix.EPERM:
				continue // this connection only (EPERM: a firewall rule)
			}
			// EMFILE, ENFILE, ENOBUFS, ENOMEM: the listener stays readable,
			// so stop watching it for a while instead of spinning.
			l.pauseAccept(os.NewSyscallError("accept4", err))
			return
		}
		l.acceptDelay = 0
		l.open(int(fd))
	}
}

// pauseAccept stops watching the listener and resumes after a delay that
// doubles from 5ms to 1s while the cause persists, as net/http does.
func (l *loop) pauseAccept(err error) {
	l.acceptDelay = min(max(2*l.acceptDelay, 5*time.Millisecond), time.Second)
	l.p.s.log.Warn("accept failed", "err", err, "retry_in", l.acceptDelay)
	if l.listening {
		l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0, 0)
		l.listening = false
	}
	l.resumeAt = time.Now().Add(l.acceptDelay)
}

// open starts proxying the accepted client socket cfd.
func (l *loop) open(cfd int) {
	s := l.p.s
	l.p.conns.Add(1)
	pc := &proxyConn{}
	pc.client = side{fd: cfd, conn: pc, peer: &pc.backend}
	pc.backend = side{fd: -1, conn: pc, peer: &pc.client}
	l.track(&pc.client)
	pc.pool = s.table.Load().healthy
	pc.first = s.policy.Select(pc.pool)
	if pc.first < 0 {
		s.rejected.Add(1)
		l.finish(pc)
		return
	}
	// The client usually sent its first bytes right after connecting,
	// before this accept: take them now, so they can go out with the
	// member's connect (see connectNext). They wait in pc.backend.pending,
	// which is kept when a connect fails and the next member is tried.
	n, err := rawRead(cfd, l.buf)
	switch {
	case err == unix.EAGAIN:
		// Nothing yet: the registration will report it.
	case err != nil:
		l.finish(pc) // reset before anything arrived
		return
	case n == 0:
		pc.client.readable = true // EOF, read again once connected
	default:
		l.hold(&pc.backend, l.buf[:n])
		pc.client.readable = n == len(l.buf) || pc.client.urgent
	}
	l.connectNext(pc)
}

// hold keeps p in sd.pending, to be written when sd takes it.
func (l *loop) hold(sd *side, p []byte) {
	if sd.pending == nil {
		if k := len(l.spare); k > 0 {
			sd.pending, l.spare = l.spare[k-1], l.spare[:k-1]
		}
	}
	sd.pending, sd.off = append(sd.pending[:0], p...), 0
}

// register adds sd's socket to the epoll set, with EPOLLOUT if out.
func (l *loop) register(sd *side, out bool) error {
	ev := uint32(inEvents)
	if out {
		ev = inOutEvents
	}
	sd.outOn = out
	return l.ctl(unix.EPOLL_CTL_ADD, sd.fd, ev, sd.gen)
}

// wantOut adds EPOLLOUT to sd's event mask (once); false when that failed
// and the connection was closed.
func (l *loop) wantOut(sd *side) bool {
	if sd.outOn {
		return true
	}
	if err := l.ctl(unix.EPOLL_CTL_MOD, sd.fd, inOutEvents, sd.gen); err != nil {
		l.finish(sd.conn)
		return false
	}
	sd.outOn = true
	return true
}

// track records sd under its descriptor with a fresh gen.
func (l *loop) track(sd *side) {
	l.gen++
	if l.gen == 0 {
		l.gen = 1
	}
	sd.gen = l.gen
	if sd.fd >= len(l.sides) {
		grown := make([]*side, max(2*len(l.sides), sd.fd+1, 64))
		copy(grown, l.sides)
		l.sides = grown
	}
	l.sides[sd.fd] = sd
}

// closeSide closes sd's socket, which also removes it from the epoll set.
func (l *loop) closeSide(sd *side) {
	if sd.fd < 0 {
		return
	}
	l.sides[sd.fd] = nil
	closeFD(sd.fd)
	sd.fd = -1
	if sd.pending != nil && sd.conn.closed { // else: the client's first bytes, for the next member
		if len(l.spare) < maxSpare {
			l.spare = append(l.spare, sd.pending[:0])
		}
		sd.pending, sd.off = nil, 0
	}
}

// finish closes both sockets of pc; it is how every connection ends, cleanly
// or not (the kernel resets a socket closed with unread data).
func (l *loop) finish(pc *proxyConn) {
	if pc.closed {
		return
	}
	pc.closed = true
	pc.connecting = false
	l.closeSide(&pc.client)
	l.closeSide(&pc.backend)
	if pc.m != nil {
		pc.m.active.Add(-1)
	}
	l.p.conns.Done()
}

// closeAll ends every connection of the loop.
func (l *loop) closeAll() {
	for _, sd := range l.sides {
		if sd != nil {
			l.finish(sd.conn)
		}
	}
}

// connectNext starts connecting pc to the next member in ring order from the
// policy's pick; when every member has been tried the client is closed.
func (l *loop) connectNext(pc *proxyConn) {
	s := l.p.s
	for pc.tries < len(pc.pool) {
		t := &pc.pool[(pc.first+pc.tries)%len(pc.pool)]
		pc.tries++
		pc.target = t
		fd, err := l.connect(t.ap)
		if err == nil && l.selfConnected(fd, t.ap) {
			closeFD(fd)
			err = errSelfConnect
		}
		if err == nil {
			pc.backend.fd = fd
			l.track(&pc.backend)
			var up bool
			if up, err = l.sendEarly(pc); err == nil {
				if err = l.register(&pc.backend, !up || pc.backend.pendingLen() > 0); err == nil {
					if up {
						l.established(pc)
						return
					}
					pc.connecting = true
					pc.deadline = time.Now().Add(s.dial)
					l.connecting = append(l.connecting, pc)
					return
				}
			}
			l.closeSide(&pc.backend)
		}
		t.m.dialErrors.Add(1)
		s.log.Warn("backend dial failed", "backend", t.m.id, "addr", t.addr, "err", err)
	}
	s.rejected.Add(1)
	l.finish(pc)
}

// sendEarly writes the client's first bytes (held in pc.backend.pending) to
// the member socket whose connect was just started. On loopback the
// handshake is usually complete by the time connect(2) returns (with
// EINPROGRESS): then the write goes through and up is true, and the loop
// need not wait for the connect to be reported. EAGAIN means still
// connecting (up false, nil); another error means the connect failed.
// Nothing is tried without bytes to send.
func (l *loop) sendEarly(pc *proxyConn) (up bool, err error) {
	sd := &pc.backend
	if sd.pendingLen() == 0 {
		return false, nil
	}
	for {
		n, err := rawWrite(sd.fd, sd.pending[sd.off:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false, nil
		case err != nil:
			return false, os.NewSyscallError("connect", err)
		}
		sd.off += n
		if sd.pendingLen() == 0 {
			sd.pending, sd.off = sd.pending[:0], 0
		}
		return true, nil
	}
}

// connect starts a non-blocking connect to ap and returns the socket.
func (l *loop) connect(ap netip.AddrPort) (int, error) {
	ip := ap.Addr()
	family := unix.AF_INET
	if !ip.Is4() {
		family = unix.AF_INET6
	}
	r, err := raw(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fd := int(r)
	if _, _, e := syscall.RawSyscall6(unix.SYS_SETSOCKOPT, r, unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&optOn)), 4, 0); e != 0 {
		closeFD(fd)
		return -1, os.NewSyscallError("setsockopt", e)
	}
	port := ap.Port()
	var e syscall.Errno
	if family == unix.AF_INET {
		l.rsa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		*(*[2]byte)(unsafe.Pointer(&l.rsa4.Port)) = [2]byte{byte(port >> 8), byte(port)}
		_, _, e = syscall.RawSyscall(unix.SYS_CONNECT, r, uintptr(unsafe.Pointer(&l.rsa4)), unix.SizeofSockaddrInet4)
	} else {
		l.rsa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16(), Scope_id: zoneIndex(ip.Zone())}
		*(*[2]byte)(unsafe.Pointer(&l.rsa6.Port)) = [2]byte{byte(port >> 8), byte(port)}
		_, _, e = syscall.RawSyscall(unix.SYS_CONNECT, r, uintptr(unsafe.Pointer(&l.rsa6)), unix.SizeofSockaddrInet6)
	}
	if e != 0 && e != unix.EINPROGRESS {
		closeFD(fd)
		return -1, os.NewSyscallError("connect", e)
	}
	// Connected at once or in progress: either way the first EPOLLOUT
	// (or EPOLLERR) tells.
	return fd, nil
}

// connectFailed counts and logs a failed connect of pc and tries the next
// member.
func (l *loop) connectFailed(pc *proxyConn, err error) {
	t := pc.target
	t.m.dialErrors.Add(1)
	l.p.s.log.Warn("backend dial failed", "backend", t.m.id, "addr", t.addr, "err", err)
	pc.connecting = false
	l.closeSide(&pc.backend)
	l.connectNext(pc)
}

// ephemeralPorts returns the kernel's range of local ports for outgoing
// connections (net.ipv4.ip_local_port_range).
var ephemeralPorts = sync.OnceValues(func() (lo, hi uint16) {
	lo, hi = 32768, 60999 // the kernel's default
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var l, h uint16
	if _, err := fmt.Sscan(string(b), &l, &h); err == nil && l <= h {
		return l, h
	}
	return lo, hi
})

// selfConnected reports whether the socket fd, whose connect to target has
// been started, connects to itself: when nothing listens on a member's port
// and the port is one the kernel picks as local port, a connect to the
// machine's own address can get that very port and connect to itself (TCP
// simultaneous open). As net.Dial does, treat that as a failed connect. The
// local port is known once connect(2) returned; only for a target port in
// that range does the check cost a getsockname(2).
func (l *loop) selfConnected(fd int, target netip.AddrPort) bool {
	if lo, hi := ephemeralPorts(); target.Port() < lo || target.Port() > hi {
		return false
	}
	n := uint32(unix.SizeofSockaddrAny)
	_, _, e := syscall.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&l.rsaAny)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return false
	}
	var local netip.AddrPort
	switch l.rsaAny.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&l.rsaAny))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		local = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&l.rsaAny))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		local = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	default:
		return false
	}
	return local.Port() == target.Port() && local.Addr().Unmap() == target.Addr().Unmap()
}

// socketError returns the pending error of a socket whose connect failed.
func socketError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		return os.NewSyscallError("getsockopt", err)
	case v != 0:
		return os.NewSyscallError("connect", syscall.Errno(v))
	}
	return errors.New("connect: connection closed")
}

// established starts proxying pc once its member connection is up.
func (l *loop) established(pc *proxyConn) {
	pc.connecting = false
	pc.m = pc.target.m
	pc.m.total.Add(1)
	pc.m.active.Add(1)
	// What the client sent beyond its first bytes (open read them), or its
	// EOF, goes now; whatever comes later is reported by epoll from the
	// registration on.
	if pc.client.readable {
		l.transfer(&pc.client, &pc.backend)
		if pc.closed {
			return
		}
	}
	if err := l.register(&pc.client, false); err != nil {
		l.p.s.log.Warn("client connection dropped", "err", err)
		l.finish(pc)
	}
}

// handle acts on the events of one socket.
func (l *loop) handle(sd *side, ev uint32) {
	pc := sd.conn
	if pc.connecting { // only the member socket is registered while connecting
		switch {
		case ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0:
			l.connectFailed(pc, socketError(sd.fd))
			return
		case ev&unix.EPOLLOUT == 0:
			return
		}
		l.established(pc)
		if pc.closed {
			return
		}
	}
	if ev&unix.EPOLLPRI != 0 {
		sd.urgent = true
	}
	if ev&(unix.EPOLLIN|unix.EPOLLPRI|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// An error is read too: read(2) returns it and the connection ends.
		sd.readable = true
		if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
			sd.rdhup = true
		}
	}
	if ev&unix.EPOLLOUT != 0 && sd.pendingLen() > 0 {
		l.flush(sd)
		if pc.closed {
			return
		}
	}
	if sd.readable {
		l.transfer(sd, sd.peer)
	}
}

// transfer moves what src has to dst until src is drained, dst stops taking
// bytes (the rest waits in dst.pending and src is not read until it is
// written), src ends (EOF: passed on as a half-close) or fails (both close).
//
// After maxReadsPerTurn full reads src is put on the loop's ready list and
// resumed after the other ready sockets: one fast stream does not hold the
// loop (the edge that reported it will not come again).
func (l *loop) transfer(src, dst *side) {
	pc := src.conn
	for reads := 0; src.readable && !pc.closed; reads++ {
		if reads == maxReadsPerTurn {
			if !src.queued {
				src.queued = true
				l.ready = append(l.ready, src)
			}
			return
		}
		if src.eof {
			src.readable = false
			return
		}
		if dst.pendingLen() > 0 {
			return // flush resumes
		}
		n, err := rawRead(src.fd, l.buf)
		switch {
		case err == unix.EAGAIN:
			src.readable = false
			return
		case err == unix.EINTR:
			continue
		case err != nil:
			l.finish(pc)
			return
		case n == 0:
			src.readable, src.eof = false, true
			l.endDirection(src, dst)
			return
		}
		if !l.write(dst, l.buf[:n]) {
			return
		}
		// A short read took everything there was; more data (or the FIN)
		// arrives as a new edge. Unless the FIN is known to be there: then
		// read on to the EOF now.
		if n < len(l.buf) && !src.rdhup && !src.urgent {
			src.readable = false
		}
	}
}

// write writes p to dst, keeping what dst does not take now in dst.pending.
// It returns false when the connection failed and was closed.
func (l *loop) write(dst *side, p []byte) bool {
	for len(p) > 0 {
		n, err := rawWrite(dst.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			l.p.heldBack.Add(1)
			l.hold(dst, p)
			return l.wantOut(dst)
		case err != nil:
			l.finish(dst.conn)
			return false
		}
		p = p[n:]
	}
	return true
}

// flush writes dst.pending; once it is all written, the peer is read again.
func (l *loop) flush(dst *side) {
	for dst.pendingLen() > 0 {
		n, err := rawWrite(dst.fd, dst.pending[dst.off:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil:
			l.finish(dst.conn)
			return
		}
		dst.off += n
	}
	dst.pending, dst.off = dst.pending[:0], 0
	if src := dst.peer; src.readable {
		l.transfer(src, dst)
	}
}

// endDirection passes src's EOF on to dst (every byte src sent is written:
// EOF is only read when nothing is pending): as a half-close (shutdown(2))
// while the other direction is open, or by closing both sockets when this is
// the direction that ends last (every byte received has been read, so the
// close sends the same FIN, not a reset).
func (l *loop) endDirection(src, dst *side) {
	if dst.eof {
		l.finish(src.conn)
		return
	}
	if !dst.shut {
		dst.shut = true
		if _, err := raw(unix.SYS_SHUTDOWN, uintptr(dst.fd), unix.SHUT_WR, 0); err != nil {
			l.finish(src.conn)
		}
	}
}

// The data path's system calls go through RawSyscall: on non-blocking
// sockets none of them blocks, so the scheduler need not be told (Syscall's
// entersyscall/exitsyscall). Telling it cost more than the calls: a
// goroutine leaving a system call can wake the runtime's monitor thread,
// which then polls every 20µs for a while. With it, the loops used 1.7x
// HAProxy's CPU per request on kept-alive connections; without, the same.

// optOn is the int 1 passed to setsockopt(2).
var optOn int32 = 1

// errnoErr returns nil for 0, else e (as an error, without allocating:
// errno values are small).
func errnoErr(e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// raw is a non-blocking system call without pointer arguments; err is nil
// or a syscall.Errno. (Calls passing pointers call syscall.RawSyscall
// directly, which keeps the pointed-to memory alive during the call.)
func raw(trap, a1, a2, a3 uintptr) (uintptr, error) {
	r, _, e := syscall.RawSyscall(trap, a1, a2, a3)
	return r, errnoErr(e)
}

// raw6 is raw with six arguments.
func raw6(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	r, _, e := syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	return r, errnoErr(e)
}

// closeFD closes a socket (never blocks: no SO_LINGER is set).
func closeFD(fd int) { raw(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(r), errnoErr(e)
}

// rawWrite is write(2) on a non-blocking socket, as send(2) with
// MSG_NOSIGNAL: a peer that reset the connection gives EPIPE without a
// SIGPIPE to deliver (and ignore).
func rawWrite(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	return int(r), errnoErr(e)
}

// epollWaitNow is epoll_wait(2) with a zero timeout: it never blocks.
func epollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	return int(r), errnoErr(e)
}
