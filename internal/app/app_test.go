package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"tidepool/internal/buildbin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { buildbin.Cleanup() }))
}

func TestHandlers(t *testing.T) {
	s := New(Config{InstanceID: "i-1", Work: 2 * time.Millisecond, LoadDuration: 50 * time.Millisecond})
	tests := []struct {
		name     string
		method   string
		path     string
		wantCode int
		wantBody string
	}{
		{"health", "GET", "/health", 200, "OK"},
		{"work", "GET", "/", 200, `"instance":"i-1"`},
		{"work override", "GET", "/?work=1ms", 200, `"cpu_ms":1`},
		{"work too big", "GET", "/?work=1h", 400, "bad work"},
		{"work negative", "GET", "/?work=-1s", 400, "bad work"},
		{"work garbage", "GET", "/?work=abc", 400, "bad work"},
		{"load", "GET", "/load?seconds=0.05", 200, "loaded"},
		{"load bad", "GET", "/load?seconds=-3", 400, "bad seconds"},
		{"metrics", "GET", "/metrics", 200, "tidepool_app_requests_total"},
		{"unknown", "GET", "/nope", 404, ""},
		{"post work", "POST", "/", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s: code = %d, want %d (body %q)", tt.method, tt.path, rec.Code, tt.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("%s %s: body %q does not contain %q", tt.method, tt.path, rec.Body, tt.wantBody)
			}
			if tt.name == "health" && rec.Body.String() != "OK" {
				t.Errorf("GET /health: body %q, want exactly \"OK\" (no newline)", rec.Body)
			}
		})
	}
	s.burner.stop()
}

func TestWorkResponseReportsCost(t *testing.T) {
	s := New(Config{InstanceID: "i-2", Work: 5 * time.Millisecond})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var got WorkResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if got.Instance != "i-2" || got.CPUMillis != 5 || got.ElapsedMs < 5 || got.Digest == "" {
		t.Errorf("response = %+v, want instance i-2, cpu_ms 5, elapsed >= 5ms, a digest", got)
	}
}

func TestBurnConsumesThreadCPU(t *testing.T) {
	for _, cost := range []time.Duration{0, 3 * time.Millisecond, 15 * time.Millisecond} {
		before := processCPU(t)
		Burn(context.Background(), cost)
		used := processCPU(t) - before
		// CPU time cannot be less than asked (wall time may be more under contention).
		if used < cost-time.Millisecond {
			t.Errorf("Burn(%s) used %s of process CPU, want at least the cost", cost, used)
		}
	}
}

// TestDrainEndpoint walks POST and DELETE /drain through their credential
// checks: without a configured token both are disabled (403), a wrong or
// missing token is refused (401), and only the right one drains or undoes
// the drain.
func TestDrainEndpoint(t *testing.T) {
	steps := []struct {
		name         string
		token        string // the app's DrainToken
		method, auth string
		wantCode     int
		wantDraining bool
	}{
		{"no token configured refuses POST", "", "POST", "Bearer ", 403, false},
		{"no token configured refuses an empty bearer", "", "POST", "", 403, false},
		{"no token configured refuses DELETE", "", "DELETE", "Bearer x", 403, false},
		{"missing token", "secret", "POST", "", 401, false},
		{"wrong token", "secret", "POST", "Bearer wrong", 401, false},
		{"token as basic auth", "secret", "POST", "Basic c2VjcmV0", 401, false},
		{"right token drains", "secret", "POST", "Bearer secret", 200, true},
		{"draining twice is fine", "secret", "POST", "Bearer secret", 200, true},
		{"wrong token cannot undo", "secret", "DELETE", "Bearer nope", 401, true},
		{"right token undoes", "secret", "DELETE", "Bearer secret", 200, false},
		{"GET is not a drain", "secret", "GET", "Bearer secret", 405, false},
	}
	servers := map[string]*Server{}
	for _, st := range steps {
		s := servers[st.token]
		if s == nil {
			s = New(Config{DrainToken: st.token})
			servers[st.token] = s
		}
		req := httptest.NewRequest(st.method, "/drain", nil)
		if st.auth != "" {
			req.Header.Set("Authorization", st.auth)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != st.wantCode || s.Draining() != st.wantDraining {
			t.Fatalf("%s: %s /drain = %d, draining %v; want %d, draining %v", st.name, st.method, rec.Code, s.Draining(), st.wantCode, st.wantDraining)
		}
		health := httptest.NewRecorder()
		s.Handler().ServeHTTP(health, httptest.NewRequest("GET", "/health", nil))
		if want := map[bool]int{true: 503, false: 200}[st.wantDraining]; health.Code != want {
			t.Errorf("%s: health = %d, want %d", st.name, health.Code, want)
		}
		// Work is served either way; while draining it says Connection: close.
		work := httptest.NewRecorder()
		s.Handler().ServeHTTP(work, httptest.NewRequest("GET", "/?work=1ms", nil))
		if work.Code != 200 {
			t.Errorf("%s: work = %d, want 200", st.name, work.Code)
		}
		if got, want := work.Header().Get("Connection") == "close", st.wantDraining; got != want {
			t.Errorf("%s: work response Connection %q, want close only while draining", st.name, work.Header().Get("Connection"))
		}
	}
}

// TestRunDrains checks the in-process lifecycle: cancel -> health 503 while
// still serving -> Run returns nil.
func TestRunDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Work: time.Millisecond, Drain: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(client.CloseIdleConnections)
	if code := get(t, client, base+"/health"); code != 200 {
		t.Fatalf("health before cancel = %d", code)
	}
	cancel()
	waitFor(t, func() bool { return s.Draining() })
	if code := get(t, client, base+"/health"); code != 503 {
		t.Errorf("health while draining = %d, want 503", code)
	}
	if code := get(t, client, base+"/"); code != 200 {
		t.Errorf("work while draining = %d, want 200", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after drain")
	}
}

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBurnStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := processCPU(t)
	if _, err := Burn(ctx, time.Second); err == nil {
		t.Fatal("Burn with a cancelled context: want an error")
	}
	if used := processCPU(t) - before; used > 200*time.Millisecond {
		t.Errorf("Burn with a cancelled context used %s of CPU, want it to stop at once", used)
	}
}

func TestWorkAbandonedByClient(t *testing.T) {
	s := New(Config{Work: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if got := testutilCount(t, s, "499"); got != 1 {
		t.Errorf("requests_total{code=499} = %v, want 1", got)
	}
}

func testutilCount(t *testing.T, s *Server, code string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tidepool_app_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestConcurrencyQueuesWork checks that with every work slot taken, further
// requests wait in line while /health still answers.
func TestConcurrencyQueuesWork(t *testing.T) {
	s := New(Config{Concurrency: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/?work=1s", nil).WithContext(ctx))
		first <- rec.Code
	}()
	waitFor(t, func() bool { return len(s.slots) == 1 })
	second := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/?work=1ms", nil).WithContext(ctx))
		second <- rec.Code
	}()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	if rec.Code != 200 {
		t.Fatalf("health with all slots busy = %d, want 200", rec.Code)
	}
	select {
	case code := <-second:
		t.Fatalf("second request finished (%d) while the only slot was busy", code)
	default:
	}
	cancel() // the first gives up its slot; the second, cancelled too, leaves the queue
	if code := <-first; code != 499 {
		t.Errorf("cancelled first request: code %d, want 499", code)
	}
	if code := <-second; code != 499 {
		t.Errorf("cancelled queued request: code %d, want 499", code)
	}
}
