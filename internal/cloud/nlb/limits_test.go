package nlb

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// roundTrip writes msg on c and reads it back (through an echo backend).
func roundTrip(c net.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}

// closedByPeer reports whether the balancer closed c: a read ends with EOF
// or a reset rather than the short deadline.
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

// dialService connects to s; the connection is closed at cleanup.
func dialService(t *testing.T, s *Service) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoService runs a service in front of one echo backend with cfg's limits.
// On the epoll path it runs one event loop, so that every connection is
// that loop's to evict.
func echoService(t *testing.T, cfg Config) *Service {
	t.Helper()
	lns := listenSamePort(t, 1)
	echoBackend(t, lns[0])
	cfg.TargetPort, cfg.Check = addrPort(lns[0].Addr()), fastCheck("tcp", 0, "")
	s := newService(t, cfg)
	if p, ok := s.dp.(*epollPath); ok {
		p.loopCount = 1
	}
	run(t, s)
	s.SetBackends([]Backend{{ID: "echo", IP: addrIP(lns[0].Addr())}})
	waitHealth(t, s, "echo", true)
	return s
}

// TestIdleTimeout checks that a connection through which nothing moves is
// closed after the idle timeout, while one with traffic in either direction
// only (here the client's, echoed back, and a one-way stream) stays open
// for many times the timeout.
func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	s := echoService(t, Config{IdleTimeout: idle})

	start := time.Now() // before the balancer can stamp the connection
	silent := dialService(t, s)
	if !closedByPeer(silent) {
		t.Fatal("idle connection still open after waiting")
	}
	if d := time.Since(start); d < idle {
		t.Errorf("idle connection closed after %v, before the %v timeout", d, idle)
	}
	// busy: a round trip every idle/3, for 4 idle periods.
	busy := dialService(t, s)
	for range 12 {
		if err := roundTrip(busy, "ping"); err != nil {
			t.Fatalf("connection with traffic closed: %v", err)
		}
		time.Sleep(idle / 3)
	}
	waitFor(t, "idle timeout counted", func() bool {
		v, _ := labelledValue(t, s, "tidepool_nlb_idle_timeouts_total", "", "")
		return v == 1
	})
}

// TestConnectionCapEvictsIdle fills a service's cap with silent
// connections: a new one closes the oldest of them (evicted) and is served.
// A cap full of connections in the middle of exchanges refuses the new one
// instead. The counters and the open-connection gauge follow.
func TestConnectionCapEvictsIdle(t *testing.T) {
	s := echoService(t, Config{MaxConns: 3})
	var silent []net.Conn
	for range 3 {
		silent = append(silent, dialService(t, s))
		waitFor(t, "connection admitted", func() bool { return s.open.Load() == int64(len(silent)) })
	}
	time.Sleep(evictSilentAfter) // let the silent connections become evictable
	fresh := dialService(t, s)
	if err := roundTrip(fresh, "hello"); err != nil {
		t.Fatalf("new connection at the cap: %v", err)
	}
	if !closedByPeer(silent[0]) {
		t.Errorf("the oldest silent connection was not closed")
	}
	if v, _ := labelledValue(t, s, "tidepool_nlb_evicted_connections_total", "", ""); v != 1 {
		t.Errorf("evicted = %v, want 1", v)
	}

	// Now make every open connection active: nothing is evictable.
	for _, c := range silent[1:] {
		if err := roundTrip(c, "busy"); err != nil {
			t.Fatal(err)
		}
	}
	refused := dialService(t, s)
	if !closedByPeer(refused) {
		t.Errorf("connection beyond a cap of active connections was served")
	}
	if v, _ := labelledValue(t, s, "tidepool_nlb_refused_connections_total", "", ""); v != 1 {
		t.Errorf("refused = %v, want 1", v)
	}
	for _, c := range append(silent[1:], fresh) {
		if err := roundTrip(c, "still"); err != nil {
			t.Errorf("active connection after a refusal: %v", err)
		}
		c.Close()
	}
	waitFor(t, "every admission released", func() bool { return s.open.Load() == 0 })
	if v, _ := labelledValue(t, s, "tidepool_nlb_client_connections", "", ""); v != 0 {
		t.Errorf("tidepool_nlb_client_connections = %v, want 0", v)
	}
}

func TestFDReserve(t *testing.T) {
	for _, tt := range []struct{ limit, want uint64 }{
		{256, 64}, {1024, 102}, {20000, 1024}, {1 << 20, 1024},
	} {
		if got := fdReserve(tt.limit); got != tt.want {
			t.Errorf("fdReserve(%d) = %d, want %d", tt.limit, got, tt.want)
		}
	}
}

func TestLocalExhaustion(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.ENFILE)}, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
		{errors.New("http probe: status 503"), false},
	} {
		if got := localExhaustion(tt.err); got != tt.want {
			t.Errorf("localExhaustion(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
