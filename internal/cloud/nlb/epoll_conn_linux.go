//go:build linux

// The epoll data path's connections: connecting a client to a member and moving bytes both ways.

package nlb

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	errConnectTimeout = errors.New("connect: i/o timeout")
	errSelfConnect    = errors.New("connect: connected to itself (nothing listens on the member's port)")
)

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
	lastActive      time.Time // when bytes last moved either way (the loop's clock); set at accept
	moved           bool      // bytes have moved through it (see evictable)
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

// open starts proxying the accepted client socket cfd, once the service's
// cap and the descriptor budget admit it (closing this loop's longest-idle
// connection to make room if needed); a connection not admitted is closed
// at once.
func (l *loop) open(cfd int) {
	s := l.p.s
	if !s.admit() && !(l.evictIdle() && s.admit()) {
		s.refuse()
		closeFD(cfd)
		return
	}
	l.p.conns.Add(1)
	l.nconns++
	pc := &proxyConn{lastActive: l.now}
	l.evictable.push(pc, l.nconns, connGone)
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
		pc.moved = true
		l.hold(&pc.backend, l.buf[:n])
		pc.client.readable = n == len(l.buf) || pc.client.urgent
	}
	l.connectNext(pc)
}

// connGone reports whether pc has been closed (for evictQueue).
func connGone(pc *proxyConn) bool { return pc.closed }

// hold keeps p in sd.pending, to be written when sd takes it.
func (l *loop) hold(sd *side, p []byte) {
	if sd.pending == nil {
		if k := len(l.spare); k > 0 {
			sd.pending, l.spare = l.spare[k-1], l.spare[:k-1]
		}
	}
	sd.pending, sd.off = append(sd.pending[:0], p...), 0
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
	l.nconns--
	l.p.s.release()
	l.p.conns.Done()
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
		s.warnDial(t, err)
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
	l.p.s.warnDial(t, err)
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
		if reads == l.p.readsPerTurn {
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
		pc.lastActive, pc.moved = l.now, true
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
		dst.conn.lastActive, dst.conn.moved = l.now, true
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
