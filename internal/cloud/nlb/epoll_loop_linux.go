//go:build linux

// The epoll data path's event loop: waiting for events, dispatching them, timers and requests from the path.

package nlb

import (
	"errors"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

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

	now           time.Time              // the loop's clock: read once per batch of events, stamps connection activity
	nconns        int                    // connections of this loop not yet finished
	idleEvery     time.Duration          // how often open connections are checked against the idle timeout
	nextIdleScan  time.Time              // zero when no check is due (no connections, or no idle timeout)
	evictable     evictQueue[*proxyConn] // this loop's connections, oldest first
	noEvictBefore time.Time              // after an eviction found nothing: refuse at the cap without looking until then

	events []unix.EpollEvent
	ev     unix.EpollEvent // argument of epoll_ctl, kept here so it does not escape per call
	rsa4   unix.RawSockaddrInet4
	rsa6   unix.RawSockaddrInet6
	rsaAny unix.RawSockaddrAny // getsockname's result
}

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
		idleEvery: min(time.Second, max(p.s.idle/10, 10*time.Millisecond)),
		now:       time.Now(),
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
			case n == 0 && len(l.ready) > 0:
				// No new event, but sockets transfer deferred still have
				// bytes waiting: their edge has been taken and will not
				// come again (under back-pressure their sender is stalled
				// on a full window and sends nothing new). Parking now
				// would lose them.
				l.now = time.Now()
				l.timers()
				l.runReady()
				continue
			case n == 0:
				l.setDeadline()
				return false // park until the epoll descriptor is readable or the deadline passes
			}
			l.now = time.Now()
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
			l.now = time.Now()
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
// deadline check, idle check or resumption of accept, if any.
func (l *loop) setDeadline() {
	var next time.Time
	if len(l.connecting) > 0 {
		next = l.nextScan
		if next.IsZero() {
			next = time.Now().Add(l.scanEvery)
			l.nextScan = next
		}
	}
	if l.nconns > 0 && l.p.s.idle > 0 {
		if l.nextIdleScan.IsZero() {
			l.nextIdleScan = l.now.Add(l.idleEvery)
		}
		if next.IsZero() || l.nextIdleScan.Before(next) {
			next = l.nextIdleScan
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

// timers resumes accepting, fails connects past their deadline and closes
// idle connections, when due. l.now must be current.
func (l *loop) timers() {
	now := l.now
	if l.nconns == 0 || l.p.s.idle <= 0 {
		l.nextIdleScan = time.Time{}
	} else if due(&l.nextIdleScan, l.idleEvery, now) {
		l.expireIdle(now)
	}
	if len(l.connecting) == 0 && l.resumeAt.IsZero() {
		l.nextScan = time.Time{}
		return
	}
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
	if len(l.connecting) == 0 {
		l.nextScan = time.Time{}
	} else if due(&l.nextScan, l.scanEvery, now) {
		l.expireConnects(now)
	}
}

// due reports whether a periodic check scheduled at *next is due at now;
// when it is, or when none was scheduled (zero), the next one is scheduled
// every later.
func due(next *time.Time, every time.Duration, now time.Time) bool {
	switch {
	case next.IsZero():
		*next = now.Add(every)
	case !now.Before(*next):
		*next = now.Add(every)
		return true
	}
	return false
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

// expireIdle closes the connections through which nothing has moved for
// the idle timeout (checked every idleEvery, so they go within idleEvery
// after it).
func (l *loop) expireIdle(now time.Time) {
	idle := l.p.s.idle
	for _, sd := range l.sides {
		if sd == nil || sd != &sd.conn.client {
			continue // each connection once, by its client side
		}
		if pc := sd.conn; now.Sub(pc.lastActive) >= idle {
			l.p.s.idled.Add(1)
			l.finish(pc)
		}
	}
}

// evictIdle closes the oldest connection of this loop that may be closed
// to make room for a new one (see evictable) and reports whether it found
// one. When it finds none, it does not look again for evictBackoff.
func (l *loop) evictIdle() bool {
	now, s := l.now, l.p.s
	if now.Before(l.noEvictBefore) {
		return false
	}
	victim, ok := l.evictable.pick(func(pc *proxyConn) evictState {
		switch {
		case pc.closed:
			return evictGone
		case s.evictable(now, pc.lastActive, pc.moved):
			return evictTake
		}
		return evictKeep
	})
	if !ok {
		l.noEvictBefore = now.Add(evictBackoff)
		return false
	}
	s.evicted.Add(1)
	l.finish(victim)
	return true
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

// closeAll ends every connection of the loop.
func (l *loop) closeAll() {
	for _, sd := range l.sides {
		if sd != nil {
			l.finish(sd.conn)
		}
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
