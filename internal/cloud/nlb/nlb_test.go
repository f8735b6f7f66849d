package nlb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastCheck probes every few milliseconds so tests do not wait for the
// 10s default interval.
func fastCheck(mode string, port uint16, uri string) HealthCheck {
	return HealthCheck{Mode: mode, Port: port, URI: uri, Interval: 5 * time.Millisecond, Timeout: 5 * time.Second}
}

func TestNewRejectsBadConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero target port", Config{Listen: "127.0.0.1:0"}, "target port"},
		{"bad listen address", Config{Listen: "not-an-address", TargetPort: 80}, "listen"},
		{"address in use", Config{Listen: busy.Addr().String(), TargetPort: 80}, "listen"},
		{"unknown check mode", Config{Listen: "127.0.0.1:0", TargetPort: 80, Check: HealthCheck{Mode: "icmp"}}, "mode"},
		{"negative dial timeout", Config{Listen: "127.0.0.1:0", TargetPort: 80, DialTimeout: -time.Second}, "dial timeout"},
		{"unknown data path", Config{Listen: "127.0.0.1:0", TargetPort: 80, DataPath: "io_uring"}, "data path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v) = nil error, want one mentioning %q", tt.cfg, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunTwiceFails(t *testing.T) {
	s := newService(t, Config{TargetPort: 80})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("first Run = %v, want nil", err)
	}
	if err := s.Run(ctx); err == nil {
		t.Fatal("second Run = nil, want an error")
	}
}

func TestRoundRobinOverRealBackends(t *testing.T) {
	tests := []struct {
		name string
		mode string
		uri  string
	}{
		{"tcp check", "tcp", ""},
		{"http check", "http", "/health"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lns := listenSamePort(t, 3)
			var bs []Backend
			for i, ln := range lns {
				bs = append(bs, startHTTPBackend(t, fmt.Sprintf("b%d", i), ln).backend())
			}
			port := addrPort(lns[0].Addr())
			s := newService(t, Config{TargetPort: port, Check: fastCheck(tt.mode, 0, tt.uri)})
			s.SetBackends(bs) // before Run: probed once Run starts
			run(t, s)
			for _, b := range bs {
				waitHealth(t, s, b.ID, true)
			}
			got := spread(t, s, 30)
			want := map[string]int{"b0": 10, "b1": 10, "b2": 10}
			if !maps.Equal(got, want) {
				t.Errorf("answers per backend = %v, want %v", got, want)
			}
		})
	}
}

func TestUnhealthyBackendGetsNoTraffic(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the health check and funcs making member b1 pass or fail it.
		setup func(t *testing.T, backends []*testBackend) (hc HealthCheck, pass, fail func())
	}{
		{"http check answering 503", func(t *testing.T, backends []*testBackend) (HealthCheck, func(), func()) {
			b := backends[1]
			b.health.Store(http.StatusServiceUnavailable)
			return fastCheck("http", 0, "/health"),
				func() { b.health.Store(http.StatusOK) },
				func() { b.health.Store(http.StatusServiceUnavailable) }
		}},
		{"tcp check port closed", func(t *testing.T, backends []*testBackend) (HealthCheck, func(), func()) {
			// One check port Q free on every member IP.
			var lns []net.Listener
			var checkPort uint16
			for _, b := range backends {
				ln, err := net.Listen("tcp", ipPort(b.ip, checkPort))
				if err != nil {
					t.Fatalf("check port listener: %v", err)
				}
				checkPort = addrPort(ln.Addr())
				lns = append(lns, ln)
			}
			acceptCloser(t, lns[0])
			acceptCloser(t, lns[2])
			lns[1].Close() // b1's check port starts closed
			var stop func()
			return fastCheck("tcp", checkPort, ""),
				func() {
					ln, err := net.Listen("tcp", ipPort(backends[1].ip, checkPort))
					if err != nil {
						t.Fatalf("reopen check port: %v", err)
					}
					stop = acceptCloser(t, ln)
				},
				func() { stop() }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lns := listenSamePort(t, 3)
			var backends []*testBackend
			var bs []Backend
			for i, ln := range lns {
				b := startHTTPBackend(t, fmt.Sprintf("b%d", i), ln)
				backends = append(backends, b)
				bs = append(bs, b.backend())
			}
			hc, pass, fail := tt.setup(t, backends)
			s := newService(t, Config{TargetPort: backends[0].port, Check: hc})
			run(t, s)
			s.SetBackends(bs)

			waitHealth(t, s, "b0", true)
			waitHealth(t, s, "b2", true)
			waitHealth(t, s, "b1", false)
			if got, want := spread(t, s, 20), map[string]int{"b0": 10, "b2": 10}; !maps.Equal(got, want) {
				t.Errorf("while b1 fails its check: answers = %v, want %v", got, want)
			}

			pass()
			waitHealth(t, s, "b1", true)
			if got, want := spread(t, s, 30), map[string]int{"b0": 10, "b1": 10, "b2": 10}; !maps.Equal(got, want) {
				t.Errorf("after b1 passes: answers = %v, want %v", got, want)
			}

			fail()
			waitFor(t, "b1 unhealthy again", func() bool {
				st, _ := statusOf(s, "b1")
				return !st.Healthy
			})
			if got, want := spread(t, s, 20), map[string]int{"b0": 10, "b2": 10}; !maps.Equal(got, want) {
				t.Errorf("after b1 fails again: answers = %v, want %v", got, want)
			}
			if st, _ := statusOf(s, "b1"); st.LastError == "" {
				t.Errorf("b1 status %+v: want LastError set after a failed probe", st)
			}
		})
	}
}

// TestRetriesDriveHealthTransitions answers each probe by hand and checks the
// member's health after every result.
func TestRetriesDriveHealthTransitions(t *testing.T) {
	lns := listenSamePort(t, 1)
	b := startHTTPBackend(t, "b0", lns[0])
	b.manualHealth.Store(true)
	hc := HealthCheck{Mode: "http", URI: "/health", Interval: time.Millisecond, Timeout: time.Minute, Retries: 2}
	s := newService(t, Config{TargetPort: b.port, Check: hc})
	run(t, s)
	s.SetBackends([]Backend{b.backend()})

	const ok, bad = http.StatusOK, http.StatusInternalServerError
	steps := []struct {
		code        int
		wantHealthy bool
	}{
		{ok, false}, // 1 of 2 passes
		{ok, true},  // 2 of 2: healthy
		{bad, true}, // 1 of 2 failures
		{ok, true},  // streak broken
		{bad, true},
		{bad, false}, // 2 consecutive failures: unhealthy
		{ok, false},
		{bad, false}, // streak broken
		{ok, false},
		{ok, true},
	}
	for i, step := range steps {
		b.healthCodes <- step.code
		waitFor(t, fmt.Sprintf("probe %d recorded", i+1), func() bool {
			st, _ := statusOf(s, "b0")
			return st.Probes == i+1
		})
		if st, _ := statusOf(s, "b0"); st.Healthy != step.wantHealthy {
			t.Fatalf("after probe %d (status %d): healthy = %v, want %v", i+1, step.code, st.Healthy, step.wantHealthy)
		}
	}
}

// TestSetBackendsProbesNewMembersAtOnce uses an hour-long interval: members
// only become healthy in time if they are probed as soon as they are added.
func TestSetBackendsProbesNewMembersAtOnce(t *testing.T) {
	lns := listenSamePort(t, 3)
	a := startHTTPBackend(t, "a", lns[0])
	b := startHTTPBackend(t, "b", lns[1])
	c := startHTTPBackend(t, "c", lns[2])
	hc := HealthCheck{Mode: "http", URI: "/health", Interval: time.Hour}
	s := newService(t, Config{TargetPort: a.port, Check: hc})
	run(t, s)

	s.SetBackends([]Backend{a.backend()})
	waitHealth(t, s, "a", true)

	s.SetBackends([]Backend{a.backend(), b.backend()})
	if st, _ := statusOf(s, "a"); !st.Healthy {
		t.Errorf("a after re-adding with the same IP: %+v, want it to stay healthy", st)
	}
	if st, _ := statusOf(s, "b"); st.Healthy {
		t.Errorf("b just added: %+v, want unhealthy until probed", st)
	}
	waitHealth(t, s, "b", true)

	// Same ID, new IP: a new member, unhealthy until probed.
	s.SetBackends([]Backend{{ID: "a", IP: c.ip}, b.backend()})
	if st, _ := statusOf(s, "a"); st.Healthy || st.IP != c.ip {
		t.Errorf("a moved to %v: %+v, want unhealthy at the new IP", c.ip, st)
	}
	waitHealth(t, s, "a", true)
	if got, want := spread(t, s, 4), map[string]int{"b": 2, "c": 2}; !maps.Equal(got, want) {
		t.Errorf("answers = %v, want %v (member a now lives at c's IP)", got, want)
	}
	if got := len(s.Status()); got != 2 {
		t.Errorf("Status has %d members, want 2", got)
	}
}

func TestRemovedBackendFinishesInFlight(t *testing.T) {
	lns := listenSamePort(t, 2)
	a := startHTTPBackend(t, "a", lns[0])
	b := startHTTPBackend(t, "b", lns[1])
	s := newService(t, Config{TargetPort: a.port, Check: fastCheck("http", 0, "/health")})
	run(t, s)
	s.SetBackends([]Backend{a.backend()})
	waitHealth(t, s, "a", true)

	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		body, err := get(s.Addr().String(), "/slow")
		slow <- result{body, err}
	}()
	<-a.slowEntered

	s.SetBackends([]Backend{b.backend()})
	if _, ok := statusOf(s, "a"); ok {
		t.Errorf("a still listed in Status after removal")
	}
	waitHealth(t, s, "b", true)
	if got, want := spread(t, s, 5), map[string]int{"b": 5}; !maps.Equal(got, want) {
		t.Errorf("answers after removing a = %v, want %v", got, want)
	}
	if v, found := metricValue(t, s, "tidepool_nlb_connections_active", "a"); found {
		t.Errorf("removed member a still reported: active = %v", v)
	}

	close(a.release)
	r := <-slow
	if r.err != nil || r.body != "a" {
		t.Errorf("in-flight request to removed member = %q, %v; want %q, nil", r.body, r.err, "a")
	}
}

func TestDialFailsOverToNextBackend(t *testing.T) {
	// Member x passes its tcp check (port Q open) but nothing listens on
	// the target port, like a member whose app just died.
	lns := listenSamePort(t, 2)
	a := startHTTPBackend(t, "a", lns[0])
	xIP := addrIP(lns[1].Addr())
	lns[1].Close()
	checkA, err := net.Listen("tcp", ipPort(a.ip, 0))
	if err != nil {
		t.Fatal(err)
	}
	checkPort := addrPort(checkA.Addr())
	checkX, err := net.Listen("tcp", ipPort(xIP, checkPort))
	if err != nil {
		t.Fatal(err)
	}
	acceptCloser(t, checkA)
	acceptCloser(t, checkX)

	s := newService(t, Config{TargetPort: a.port, Check: fastCheck("tcp", checkPort, "")})
	run(t, s)
	s.SetBackends([]Backend{a.backend(), {ID: "x", IP: xIP}})
	waitHealth(t, s, "a", true)
	waitHealth(t, s, "x", true)

	if got, want := spread(t, s, 10), map[string]int{"a": 10}; !maps.Equal(got, want) {
		t.Errorf("answers = %v, want %v", got, want)
	}
	checks := []struct {
		name, backend string
		want          float64
	}{
		{"tidepool_nlb_dial_errors_total", "x", 5}, // every other pick starts at x
		{"tidepool_nlb_dial_errors_total", "a", 0},
		{"tidepool_nlb_connections_total", "a", 10},
		{"tidepool_nlb_connections_total", "x", 0},
		{"tidepool_nlb_backend_healthy", "x", 1},
		{"tidepool_nlb_rejected_connections_total", "", 0},
	}
	for _, c := range checks {
		if got, found := metricValue(t, s, c.name, c.backend); !found || got != c.want {
			t.Errorf("%s{backend=%q} = %v (found %v), want %v", c.name, c.backend, got, found, c.want)
		}
	}
	waitFor(t, "no active connections left", func() bool {
		v, _ := metricValue(t, s, "tidepool_nlb_connections_active", "a")
		return v == 0
	})
}

func TestNoHealthyBackendClosesConnection(t *testing.T) {
	tests := []struct {
		name     string
		failing  bool // one member failing its check, else no members at all
		rejected float64
	}{
		{"no members", false, 1},
		{"only member failing its check", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lns := listenSamePort(t, 1)
			b := startHTTPBackend(t, "b", lns[0])
			s := newService(t, Config{TargetPort: b.port, Check: fastCheck("http", 0, "/health")})
			run(t, s)
			if tt.failing {
				b.health.Store(http.StatusServiceUnavailable)
				s.SetBackends([]Backend{b.backend()})
				waitHealth(t, s, "b", false)
			}

			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatalf("dial load balancer: %v", err)
			}
			defer c.Close()
			if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(make([]byte, 1))
			if n != 0 || err == nil || isTimeout(err) {
				t.Errorf("read from load balancer = %d, %v; want 0 bytes and the connection closed", n, err)
			}
			if got, _ := metricValue(t, s, "tidepool_nlb_rejected_connections_total", ""); got != tt.rejected {
				t.Errorf("rejected connections = %v, want %v", got, tt.rejected)
			}
			if b.hits.Load() != 0 {
				t.Errorf("backend got %d requests, want 0", b.hits.Load())
			}
		})
	}
}

func TestShutdownLetsInFlightFinish(t *testing.T) {
	lns := listenSamePort(t, 1)
	a := startHTTPBackend(t, "a", lns[0])
	s := newService(t, Config{TargetPort: a.port, Check: fastCheck("tcp", 0, ""), DrainTimeout: time.Hour})
	cancel, done := run(t, s)
	s.SetBackends([]Backend{a.backend()})
	waitHealth(t, s, "a", true)

	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		body, err := get(s.Addr().String(), "/slow")
		slow <- result{body, err}
	}()
	<-a.slowEntered

	cancel()
	waitFor(t, "listener closed", func() bool {
		c, err := net.Dial("tcp", s.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned %v with a request in flight and an hour of drain time left", err)
	default:
	}

	close(a.release)
	if r := <-slow; r.err != nil || r.body != "a" {
		t.Errorf("in-flight request during shutdown = %q, %v; want %q, nil", r.body, r.err, "a")
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestShutdownClosesConnectionsAfterDrainTimeout(t *testing.T) {
	lns := listenSamePort(t, 1)
	a := startHTTPBackend(t, "a", lns[0])
	s := newService(t, Config{TargetPort: a.port, Check: fastCheck("tcp", 0, ""), DrainTimeout: 10 * time.Millisecond})
	cancel, done := run(t, s)
	s.SetBackends([]Backend{a.backend()})
	waitHealth(t, s, "a", true)

	slow := make(chan error, 1)
	go func() {
		_, err := get(s.Addr().String(), "/slow")
		slow <- err
	}()
	<-a.slowEntered // never released

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if err := <-slow; err == nil || isTimeout(err) {
		t.Errorf("request cut by the drain timeout: err = %v, want the connection closed", err)
	}
}

func TestSetConfigChangesProbesAndTarget(t *testing.T) {
	lns := listenSamePort(t, 1)
	a := startHTTPBackend(t, "a", lns[0])
	altLn, err := net.Listen("tcp", ipPort(a.ip, 0))
	if err != nil {
		t.Fatal(err)
	}
	alt := startHTTPBackend(t, "a-alt", altLn)
	closedLn, err := net.Listen("tcp", ipPort(a.ip, 0))
	if err != nil {
		t.Fatal(err)
	}
	closedPort := addrPort(closedLn.Addr())
	closedLn.Close()

	s := newService(t, Config{TargetPort: a.port, Check: fastCheck("http", 0, "/health")})
	run(t, s)
	s.SetBackends([]Backend{a.backend()})
	waitHealth(t, s, "a", true)

	steps := []struct {
		name        string
		port        uint16
		hc          HealthCheck
		wantHealthy bool
		wantErr     string // substring of LastError when unhealthy
		wantBody    string // answer through the load balancer when healthy
	}{
		{"uri answering 404", a.port, fastCheck("http", 0, "/missing"), false, "status 404", ""},
		{"uri back to /health", a.port, fastCheck("http", 0, "/health"), true, "", "a"},
		{"target port moved, check follows it", alt.port, fastCheck("http", 0, "/health"), true, "", "a-alt"},
		{"tcp check on a closed port", alt.port, fastCheck("tcp", closedPort, ""), false, "refused", ""},
		{"tcp check on the target port", a.port, fastCheck("tcp", 0, ""), true, "", "a"},
	}
	for _, step := range steps {
		s.SetConfig(step.port, step.hc)
		waitHealth(t, s, "a", step.wantHealthy)
		st, _ := statusOf(s, "a")
		if !strings.Contains(st.LastError, step.wantErr) {
			t.Errorf("%s: LastError = %q, want it to contain %q", step.name, st.LastError, step.wantErr)
		}
		if !step.wantHealthy {
			continue
		}
		if body, err := get(s.Addr().String(), "/"); err != nil || body != step.wantBody {
			t.Errorf("%s: answer = %q, %v; want %q", step.name, body, err, step.wantBody)
		}
	}

	// An invalid health check is ignored: probing continues unchanged.
	s.SetConfig(a.port, HealthCheck{Mode: "bogus"})
	if st, _ := statusOf(s, "a"); !st.Healthy || st.Probes == 0 {
		t.Errorf("after an invalid health check: %+v, want still healthy with its probes kept", st)
	}
}

// halfCloseBackend serves one kind of conversation per connection on ln:
// it reads until EOF, answers how many bytes it got, and closes. Connections
// from tcp health checks get the same treatment (0 bytes).
func halfCloseBackend(t *testing.T, ln net.Listener, serve func(c *net.TCPConn)) {
	t.Helper()
	done := make(chan struct{})
	conns := make(chan struct{}, 1024)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- struct{}{}
			go func() {
				defer func() { <-conns }()
				defer c.Close()
				serve(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for range cap(conns) {
			conns <- struct{}{} // wait until every handler returned
		}
	})
}

func TestHalfClosePropagates(t *testing.T) {
	payload := bytes.Repeat([]byte("tidepool"), 128<<10) // 1 MiB: several splice rounds
	tests := []struct {
		name   string
		serve  func(c *net.TCPConn, got chan<- string)
		client func(c *net.TCPConn) (string, error)
		want   string // what the client must read
		wantSv string // what the backend must read
	}{
		{
			name: "client finishes sending first",
			serve: func(c *net.TCPConn, got chan<- string) {
				n, err := io.Copy(io.Discard, c)
				if err != nil {
					return
				}
				fmt.Fprintf(c, "got %d bytes", n)
				if n > 0 {
					got <- fmt.Sprint(n)
				}
			},
			client: func(c *net.TCPConn) (string, error) {
				if _, err := c.Write(payload); err != nil {
					return "", err
				}
				if err := c.CloseWrite(); err != nil {
					return "", err
				}
				b, err := io.ReadAll(c)
				return string(b), err
			},
			want:   fmt.Sprintf("got %d bytes", len(payload)),
			wantSv: fmt.Sprint(len(payload)),
		},
		{
			name: "backend finishes sending first",
			serve: func(c *net.TCPConn, got chan<- string) {
				if _, err := io.WriteString(c, "hello"); err != nil {
					return
				}
				if err := c.CloseWrite(); err != nil {
					return
				}
				b, err := io.ReadAll(c)
				if err == nil && len(b) > 0 {
					got <- string(b)
				}
			},
			client: func(c *net.TCPConn) (string, error) {
				b, err := io.ReadAll(c) // EOF only after the backend's FIN
				if err != nil {
					return "", err
				}
				if _, err := io.WriteString(c, "bye after your FIN"); err != nil {
					return "", err
				}
				return string(b), c.CloseWrite()
			},
			want:   "hello",
			wantSv: "bye after your FIN",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lns := listenSamePort(t, 1)
			got := make(chan string, 1)
			halfCloseBackend(t, lns[0], func(c *net.TCPConn) { tt.serve(c, got) })
			s := newService(t, Config{TargetPort: addrPort(lns[0].Addr()), Check: fastCheck("tcp", 0, "")})
			run(t, s)
			s.SetBackends([]Backend{{ID: "b", IP: addrIP(lns[0].Addr())}})
			waitHealth(t, s, "b", true)

			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
				t.Fatal(err)
			}
			read, err := tt.client(c.(*net.TCPConn))
			if err != nil || read != tt.want {
				t.Errorf("client read %q, %v; want %q", read, err, tt.want)
			}
			select {
			case sv := <-got:
				if sv != tt.wantSv {
					t.Errorf("backend read %q, want %q", sv, tt.wantSv)
				}
			case <-time.After(waitTimeout):
				t.Errorf("backend never read the client's data")
			}
		})
	}
}

func TestStatusSortedByID(t *testing.T) {
	s := newService(t, Config{TargetPort: 80})
	lns := listenSamePort(t, 3)
	s.SetBackends([]Backend{
		{ID: "c", IP: addrIP(lns[2].Addr())},
		{ID: "a", IP: addrIP(lns[0].Addr())},
		{ID: "bad"}, // invalid IP: skipped
		{ID: "b", IP: addrIP(lns[1].Addr())},
	})
	var ids []string
	for _, st := range s.Status() {
		ids = append(ids, st.ID)
		if st.Healthy {
			t.Errorf("%s healthy before any probe", st.ID)
		}
	}
	if got, want := strings.Join(ids, ","), "a,b,c"; got != want {
		t.Errorf("Status IDs = %s, want %s", got, want)
	}
	for _, ln := range lns {
		ln.Close()
	}
}

func TestHTTPSCheckSendsSNI(t *testing.T) {
	lns := listenSamePort(t, 1)
	a := startHTTPBackend(t, "a", lns[0])
	tlsLn, err := net.Listen("tcp", ipPort(a.ip, 0))
	if err != nil {
		t.Fatal(err)
	}
	sni := make(chan string, 1)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		select {
		case sni <- r.TLS.ServerName:
		default:
		}
	}))
	tlsSrv.Listener.Close()
	tlsSrv.Listener = tlsLn
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	hc := fastCheck("https", addrPort(tlsLn.Addr()), "/status")
	hc.TLSSNI = "pool.example"
	s := newService(t, Config{TargetPort: a.port, Check: hc})
	run(t, s)
	s.SetBackends([]Backend{a.backend()})
	waitHealth(t, s, "a", true)
	if got := <-sni; got != hc.TLSSNI {
		t.Errorf("probe SNI = %q, want %q", got, hc.TLSSNI)
	}
	if body, err := get(s.Addr().String(), "/"); err != nil || body != "a" {
		t.Errorf("answer = %q, %v; want %q", body, err, "a")
	}
}

// TestConcurrentUpdatesUnderTraffic changes members and settings while
// clients send requests (run with -race). Member a stays in every set and
// healthy, so every request must succeed.
func TestConcurrentUpdatesUnderTraffic(t *testing.T) {
	lns := listenSamePort(t, 3)
	a := startHTTPBackend(t, "a", lns[0])
	b := startHTTPBackend(t, "b", lns[1])
	c := startHTTPBackend(t, "c", lns[2])
	s := newService(t, Config{TargetPort: a.port, Check: fastCheck("http", 0, "/health")})
	run(t, s)
	s.SetBackends([]Backend{a.backend()})
	waitHealth(t, s, "a", true)

	stop := make(chan struct{})
	var updates sync.WaitGroup
	updates.Go(func() {
		sets := [][]Backend{
			{a.backend(), b.backend()},
			{a.backend(), b.backend(), c.backend()},
			{a.backend(), c.backend()},
			{a.backend()},
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.SetBackends(sets[i%len(sets)])
			if i%7 == 0 {
				// Same effective check, different spelling: no restart.
				s.SetConfig(a.port, fastCheck("http", a.port, "/health"))
			}
			s.Status()
			time.Sleep(time.Millisecond) // let probes and requests interleave
		}
	})

	const clients, perClient = 4, 25
	errs := make(chan error, clients*perClient)
	var traffic sync.WaitGroup
	for range clients {
		traffic.Go(func() {
			for range perClient {
				if _, err := get(s.Addr().String(), "/"); err != nil {
					errs <- err
				}
			}
		})
	}
	traffic.Wait()
	close(stop)
	updates.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("request failed while members changed: %v", err)
	}
}
