//go:build linux

// The epoll data path's listeners: binding (SO_REUSEPORT, one per loop) and accepting.

package nlb

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

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
	return &epollPath{lfds: []int{fd}, laddr: tcpAddr(sa), readsPerTurn: maxReadsPerTurn}, nil
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
	l.p.s.warnAccept(err, l.acceptDelay)
	if l.listening {
		l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0, 0)
		l.listening = false
	}
	l.resumeAt = time.Now().Add(l.acceptDelay)
}
