//go:build linux

package nlb

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPortableDataPath runs the behaviour tests on netPath, the data path
// of platforms without epoll (the other tests run on epollPath). On other
// platforms netPath is the default, so every test runs on it there.
func TestPortableDataPath(t *testing.T) {
	usePortable = true
	t.Cleanup(func() { usePortable = false })
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"RoundRobinOverRealBackends", TestRoundRobinOverRealBackends},
		{"UnhealthyBackendGetsNoTraffic", TestUnhealthyBackendGetsNoTraffic},
		{"RemovedBackendFinishesInFlight", TestRemovedBackendFinishesInFlight},
		{"DialFailsOverToNextBackend", TestDialFailsOverToNextBackend},
		{"NoHealthyBackendClosesConnection", TestNoHealthyBackendClosesConnection},
		{"ShutdownLetsInFlightFinish", TestShutdownLetsInFlightFinish},
		{"ShutdownClosesConnectionsAfterDrainTimeout", TestShutdownClosesConnectionsAfterDrainTimeout},
		{"HalfClosePropagates", TestHalfClosePropagates},
		{"ConcurrentUpdatesUnderTraffic", TestConcurrentUpdatesUnderTraffic},
		{"PayloadsBothWays", TestPayloadsBothWays},
		{"NoDescriptorLeak", TestNoDescriptorLeak},
		{"ConnectTimeoutFailsOver", TestConnectTimeoutFailsOver},
		{"IdleTimeout", TestIdleTimeout},
		{"ConnectionCapEvictsIdle", TestConnectionCapEvictsIdle},
	} {
		t.Run(tc.name, tc.test)
	}
}

// TestPayloadsBothWays streams payloads of sizes around the event loop's
// read buffer (64 KiB) and far beyond the sockets' buffers through the
// balancer to an echo server, writing in uneven chunks while the client
// starts reading only after a pause, so the balancer's writes stall and it
// must hold bytes back and resume. Every byte must come back in order, and
// the client's half-close must reach the server and come back as EOF.
func TestPayloadsBothWays(t *testing.T) {
	lns := listenSamePort(t, 1)
	echoBackend(t, lns[0])
	s := newService(t, Config{TargetPort: addrPort(lns[0].Addr()), Check: fastCheck("tcp", 0, "")})
	run(t, s)
	s.SetBackends([]Backend{{ID: "echo", IP: addrIP(lns[0].Addr())}})
	waitHealth(t, s, "echo", true)

	for _, size := range []int{0, 1, 100, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1<<20 + 7, 16 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = byte(rand.IntN(256))
			}
			// A small receive buffer, set before connecting (a window is
			// not shrunk later): it fills up long before 16 MiB.
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<10)
				})
			}}
			c, err := d.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(waitTimeout))
			heldBefore := heldBack(s)
			sent := make(chan error, 1)
			go func() {
				for rest := payload; len(rest) > 0; {
					n := min(len(rest), 1+rand.IntN(200<<10))
					if _, err := c.Write(rest[:n]); err != nil {
						sent <- err
						return
					}
					rest = rest[n:]
				}
				sent <- c.(*net.TCPConn).CloseWrite()
			}()
			if size > 1<<20 {
				time.Sleep(200 * time.Millisecond) // let every buffer on the way fill up
			}
			got, err := io.ReadAll(c) // ends only at the echoed FIN
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-sent; err != nil {
				t.Fatalf("write: %v", err)
			}
			if len(got) != len(payload) || sha256.Sum256(got) != sha256.Sum256(payload) {
				t.Fatalf("received %d bytes, not equal to the %d sent", len(got), len(payload))
			}
			if held := heldBack(s) - heldBefore; size >= 16<<20 && held == 0 && !usePortable {
				t.Errorf("%d bytes went through without the balancer ever holding bytes back: back-pressure not exercised", size)
			}
		})
	}
	waitFor(t, "no active connections left", func() bool {
		v, _ := metricValue(t, s, "tidepool_nlb_connections_active", "echo")
		return v == 0
	})
}

// heldBack returns how often s's event loops held back bytes a socket did
// not take (0 on the portable data path, which blocks instead).
func heldBack(s *Service) uint64 {
	if p, ok := s.dp.(*epollPath); ok {
		return p.heldBack.Load()
	}
	return 0
}

// openFDs counts this process's open sockets, epoll and eventfd
// descriptors: what a data path opens. (Pipes are left out: Go's splice(2)
// keeps a pool of them that garbage collections empty at any time.)
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && (strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "anon_inode:")) {
			n++
		}
	}
	return n
}

// TestNoDescriptorLeak proxies many short connections (answered, failed
// over from a member that refuses, refused for lack of a member, and cut by
// the client mid-way), then stops the service: every descriptor it opened
// (listeners, sockets, event loops) must be closed once Run has returned,
// as must a service closed without running.
func TestNoDescriptorLeak(t *testing.T) {
	// Member "echo" answers; member "x" passes its health check (port
	// check) but refuses connections on the target port, so every other
	// connection fails over from x to echo.
	lns := listenSamePort(t, 2)
	echoBackend(t, lns[0])
	xIP := addrIP(lns[1].Addr())
	lns[1].Close()
	var checkPort uint16
	for _, ip := range []netip.Addr{addrIP(lns[0].Addr()), xIP} {
		ln, err := net.Listen("tcp", ipPort(ip, checkPort))
		if err != nil {
			t.Fatal(err)
		}
		checkPort = addrPort(ln.Addr())
		acceptCloser(t, ln)
	}
	before := openFDs(t)

	// A service closed without running releases its listener.
	unused := newService(t, Config{TargetPort: 1})
	if err := unused.Close(); err != nil {
		t.Fatalf("Close before Run: %v", err)
	}

	s := newService(t, Config{TargetPort: addrPort(lns[0].Addr()), Check: fastCheck("tcp", checkPort, "")})
	cancel, done := run(t, s)
	s.SetBackends([]Backend{{ID: "echo", IP: addrIP(lns[0].Addr())}, {ID: "x", IP: xIP}})
	waitHealth(t, s, "echo", true)
	waitHealth(t, s, "x", true)
	roundTrip := func(msg string, closeEarly bool) {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitTimeout))
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		if closeEarly {
			return // close with the echo unread: the balancer sees a reset or EOF at any point
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
	for i := range 200 {
		roundTrip("ping "+strconv.Itoa(i), i%4 == 3)
	}
	s.SetBackends(nil)
	for range 20 { // no member: closed at once
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(waitTimeout))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("read %d bytes from a service without members", n)
		}
		c.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	// The echo server closes its ends when it sees the balancer's close:
	// give it a moment; a leak does not go away.
	deadline := time.Now().Add(5 * time.Second)
	after := openFDs(t)
	for after != before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		after = openFDs(t)
	}
	if after != before {
		t.Errorf("open descriptors (sockets, epoll, eventfd): %d before New, %d after Run returned", before, after)
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			t.Logf("fd %s -> %s", e.Name(), l)
		}
	}
}

// TestConnectTimeoutFailsOver points the balancer at a member whose accept
// queue is full, so connects to it hang (the kernel drops their SYNs): after
// DialTimeout the connect is abandoned, counted as a dial error, and the
// client is served by the next member.
func TestConnectTimeoutFailsOver(t *testing.T) {
	lns := listenSamePort(t, 2)
	a := startHTTPBackend(t, "a", lns[0])
	stuckIP := addrIP(lns[1].Addr())
	lns[1].Close()
	stuck := fullAcceptQueue(t, ipPort(stuckIP, a.port))
	checkA, err := net.Listen("tcp", ipPort(a.ip, 0))
	if err != nil {
		t.Fatal(err)
	}
	checkPort := addrPort(checkA.Addr())
	checkX, err := net.Listen("tcp", ipPort(stuckIP, checkPort))
	if err != nil {
		t.Fatal(err)
	}
	acceptCloser(t, checkA)
	acceptCloser(t, checkX)

	s := newService(t, Config{TargetPort: a.port, Check: fastCheck("tcp", checkPort, ""), DialTimeout: 300 * time.Millisecond})
	run(t, s)
	s.SetBackends([]Backend{a.backend(), {ID: "x", IP: stuckIP}})
	waitHealth(t, s, "a", true)
	waitHealth(t, s, "x", true)

	for i := range 2 { // one of the two picks starts at x
		if body, err := get(s.Addr().String(), "/"); err != nil || body != "a" {
			t.Fatalf("request %d: got %q, %v; want a", i, body, err)
		}
	}
	if got, found := metricValue(t, s, "tidepool_nlb_dial_errors_total", "x"); !found || got != 1 {
		t.Errorf("dial errors of x = %v (found %v), want 1", got, found)
	}
	stuck()
}

// fullAcceptQueue listens on addr with a backlog of 0 and fills its accept
// queue with one connection it never accepts, so that further connects hang.
// The returned func closes everything.
func fullAcceptQueue(t *testing.T, addr string) (closeAll func()) {
	t.Helper()
	ln, err := listenBacklog0(addr)
	if err != nil {
		t.Skipf("cannot listen with a zero backlog: %v", err)
	}
	filler, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		ln.Close()
		t.Fatalf("filling the accept queue: %v", err)
	}
	// Check that the queue is full: a second connect must hang (not be
	// refused, as with net.ipv4.tcp_abort_on_overflow=1, nor complete).
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); !isTimeout(err) {
		if c != nil {
			c.Close()
		}
		filler.Close()
		ln.Close()
		t.Skipf("a connect beyond the accept queue does not hang here (err %v)", err)
	}
	var once sync.Once
	closeAll = func() {
		once.Do(func() {
			filler.Close()
			ln.Close()
		})
	}
	t.Cleanup(closeAll)
	return closeAll
}

// listenBacklog0 is net.Listen("tcp4", addr) with a zero backlog, which
// net.Listen does not offer.
func listenBacklog0(addr string) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "backlog0")
	defer f.Close() // FileListener dups it
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		return nil, err
	}
	if err := unix.Listen(fd, 0); err != nil {
		return nil, err
	}
	return net.FileListener(f)
}

// TestSelfConnected checks the self-connect guard: a socket bound to a port
// of the ephemeral range and connected to that same address (TCP
// simultaneous open with itself, what a connect to a member's closed port
// can turn into) is recognised; an ordinary connection is not.
func TestSelfConnected(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port // picked from the ephemeral range
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Skipf("no self-connect on this kernel: %v", err)
	}
	l := &loop{}
	self := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
	if !l.selfConnected(fd, self) {
		t.Errorf("selfConnected(socket connected to itself at %v) = false, want true", self)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got bool
	raw.Control(func(cfd uintptr) { got = l.selfConnected(int(cfd), ln.Addr().(*net.TCPAddr).AddrPort()) })
	if got {
		t.Errorf("selfConnected(ordinary connection to %v) = true, want false", ln.Addr())
	}
}
