package nlb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tidepool/internal/loopback"
)

// waitTimeout bounds every wait in these tests: generous, the machine is
// shared and noisy. It is a deadline for polling, not a timing assertion.
const waitTimeout = 30 * time.Second

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// listenSamePort binds one TCP listener on each of n addresses 127.a.b.1..n
// (random a, b, so concurrent test packages do not collide), all on the same
// port, and returns them. Members of a service share the target port, so
// test backends must too.
func listenSamePort(t testing.TB, n int) []net.Listener {
	t.Helper()
	lns, err := loopback.ListenSamePort(n)
	if err != nil {
		t.Fatal(err)
	}
	return lns
}

func addrIP(a net.Addr) netip.Addr { return a.(*net.TCPAddr).AddrPort().Addr() }
func addrPort(a net.Addr) uint16   { return a.(*net.TCPAddr).AddrPort().Port() }
func ipPort(ip netip.Addr, port uint16) string {
	return netip.AddrPortFrom(ip, port).String()
}

// testBackend is a pool member's web server: GET / answers its id, /health
// answers the status code in health (or, when manualHealth is set, the next
// code received from healthCodes), /slow blocks until release is closed.
type testBackend struct {
	id           string
	ip           netip.Addr
	port         uint16
	hits         atomic.Int64 // requests to / and /slow
	health       atomic.Int32
	manualHealth atomic.Bool
	healthCodes  chan int
	slowEntered  chan struct{}
	release      chan struct{}
	stop         chan struct{} // closed at cleanup: unblocks every handler
}

// startHTTPBackend serves a testBackend on ln until the test ends.
func startHTTPBackend(t testing.TB, id string, ln net.Listener) *testBackend {
	t.Helper()
	b := &testBackend{
		id:          id,
		ip:          addrIP(ln.Addr()),
		port:        addrPort(ln.Addr()),
		healthCodes: make(chan int),
		slowEntered: make(chan struct{}, 16),
		release:     make(chan struct{}),
		stop:        make(chan struct{}),
	}
	b.health.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.WriteString(w, b.id)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if !b.manualHealth.Load() {
			w.WriteHeader(int(b.health.Load()))
			return
		}
		select {
		case code := <-b.healthCodes:
			w.WriteHeader(code)
		case <-r.Context().Done():
		case <-b.stop:
		}
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.slowEntered <- struct{}{}
		select {
		case <-b.release:
			io.WriteString(w, b.id)
		case <-r.Context().Done():
		case <-b.stop:
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close) // runs after close(b.stop) below: cleanups are LIFO
	t.Cleanup(func() { close(b.stop) })
	return b
}

func (b *testBackend) backend() Backend { return Backend{ID: b.id, IP: b.ip} }

// acceptCloser accepts connections on ln and closes them at once: an open
// port for tcp health checks. The returned func closes ln and waits for the
// goroutine; it is also run at cleanup.
func acceptCloser(t testing.TB, ln net.Listener) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// testLogger writes the service's logs into the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// usePortable makes newService build services on the portable data path;
// TestPortableDataPath sets it while it runs the behaviour tests again.
var usePortable bool

// newService calls New with test defaults (loopback port 0, test logger,
// short drain) and closes the listener at cleanup.
func newService(t testing.TB, cfg Config) *Service {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	if usePortable {
		cfg.DataPath = DataPathPortable
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// run starts s.Run. The returned cancel stops it; done yields Run's result.
// At cleanup Run is cancelled and must return nil.
func run(t testing.TB, s *Service) (cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- s.Run(ctx) }()
	var result error
	var once sync.Once
	wait := func() error {
		once.Do(func() { result = <-ch })
		return result
	}
	t.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
	out := make(chan error, 1)
	go func() { out <- wait() }()
	return cancel, out
}

func statusOf(s *Service, id string) (BackendStatus, bool) {
	for _, st := range s.Status() {
		if st.ID == id {
			return st, true
		}
	}
	return BackendStatus{}, false
}

// waitHealth waits until member id has been probed with the current health
// check and its health is want.
func waitHealth(t testing.TB, s *Service, id string, want bool) {
	t.Helper()
	waitFor(t, fmt.Sprintf("member %s healthy=%v after a probe", id, want), func() bool {
		st, ok := statusOf(s, id)
		return ok && st.Probes > 0 && st.Healthy == want
	})
}

// get fetches path through addr on a fresh TCP connection and returns the
// body; a status other than 200 is an error.
func get(addr, path string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: waitTimeout}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(body), nil
}

// spread sends n requests for / through s, each on its own connection, and
// counts the answers by backend id.
func spread(t testing.TB, s *Service, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for i := range n {
		body, err := get(s.Addr().String(), "/")
		if err != nil {
			t.Fatalf("request %d through the load balancer: %v", i, err)
		}
		got[body]++
	}
	return got
}

// metricValue gathers s's metrics and returns the value of name for the
// given backend label ("" for series without one); found is false if absent.
func metricValue(t testing.TB, s *Service, name, backend string) (v float64, found bool) {
	t.Helper()
	return labelledValue(t, s, name, "backend", backend)
}

// labelledValue gathers s's metrics and returns the value of the series
// name whose label is value ("" for series without that label); found is
// false if absent.
func labelledValue(t testing.TB, s *Service, name, label, value string) (v float64, found bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s); err != nil {
		t.Fatalf("register collector: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var got string
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					got = lp.GetValue()
				}
			}
			if got != value {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// quietLogger keeps only warnings and errors in the test output (for tests
// whose info lines would be thousands).
func quietLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
