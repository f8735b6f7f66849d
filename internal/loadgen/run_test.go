package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server starts an httptest server on loopback port 0 that counts requests.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }

func stages(t *testing.T, specs ...string) []Stage {
	t.Helper()
	return mustSchedule(t, specs...).Stages()
}

// checkInvariants checks what must hold for every run: the timeline is
// consecutive, its sums are the summary's counts, every planned request is
// sent or missed, every sent one is OK or has exactly one error kind.
func checkInvariants(t *testing.T, sum Summary, tl []Second) {
	t.Helper()
	var sent, missed, answered, ok, late int
	errs := map[string]int{}
	for i, s := range tl {
		if s.Offset != time.Duration(i)*time.Second {
			t.Errorf("timeline[%d].Offset = %s; want %ds", i, s.Offset, i)
		}
		nerr := 0
		for k, n := range s.Errors {
			errs[k] += n
			nerr += n
		}
		if s.Sent != s.OK+nerr {
			t.Errorf("second %d: sent %d != ok %d + errors %d (%v)", i, s.Sent, s.OK, nerr, s.Errors)
		}
		if s.Answered > s.Sent || s.OK > s.Answered || s.Late > s.Sent {
			t.Errorf("second %d: want ok <= answered <= sent and late <= sent, got %+v", i, s)
		}
		if s.Sent > 0 && !(s.P50 <= s.P95 && s.P95 <= s.P99 && s.P99 <= s.Max) {
			t.Errorf("second %d: percentiles not ordered: %+v", i, s)
		}
		sent, missed, answered, ok, late = sent+s.Sent, missed+s.Missed, answered+s.Answered, ok+s.OK, late+s.Late
	}
	if sent != sum.Sent || missed != sum.Missed || answered != sum.Answered || ok != sum.OK || late != sum.Late {
		t.Errorf("timeline sums sent=%d missed=%d answered=%d ok=%d late=%d; summary %+v", sent, missed, answered, ok, late, sum)
	}
	if sum.Planned != sum.Sent+sum.Missed {
		t.Errorf("summary planned %d != sent %d + missed %d", sum.Planned, sum.Sent, sum.Missed)
	}
	for k, n := range errs {
		if sum.Errors[k] != n {
			t.Errorf("summary errors %v; timeline sums %v", sum.Errors, errs)
			break
		}
	}
	if want := int((sum.Stopped + time.Second - 1) / time.Second); len(tl) != want {
		t.Errorf("timeline has %d seconds; want %d for a stop at %s", len(tl), want, sum.Stopped)
	}
}

// planned counts the requests the schedule plans in [from, to).
func planned(s *Schedule, from, to time.Duration) int {
	n := 0
	for k := uint64(0); ; k++ {
		p, ok := s.PlannedAt(k)
		if !ok || p >= to {
			return n
		}
		if p >= from {
			n++
		}
	}
}

func TestRunInstantServer(t *testing.T) {
	srv, served := server(t, okHandler)
	cfg := Config{Target: srv.URL + "/", Stages: stages(t, "ramp:20-200:2s", "hold:150:1s")}
	sched, _ := NewSchedule(cfg.Stages)

	var got []Second
	sum, tl, err := Run(context.Background(), cfg, func(s Second) { got = append(got, s) })
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if want := int(sched.Requests()); sum.Planned != want {
		t.Errorf("planned %d; want %d", sum.Planned, want)
	}
	// Loose: an instant server on loopback answers nearly everything.
	if sum.OK < sum.Planned*95/100 || int64(sum.Sent) != served.Load() {
		t.Errorf("ok %d of %d planned, sent %d, server saw %d; want >= 95%% ok and sent == seen", sum.OK, sum.Planned, sum.Sent, served.Load())
	}
	if len(tl) != 3 || len(got) != len(tl) {
		t.Fatalf("timeline %d seconds, onSecond called %d times; want 3 and 3", len(tl), len(got))
	}
	for i, s := range tl {
		if got[i].Offset != s.Offset || got[i].Sent != s.Sent {
			t.Errorf("onSecond #%d = %+v; timeline has %+v", i, got[i], s)
		}
		from := time.Duration(i) * time.Second
		if n := planned(sched, from, from+time.Second); s.Sent+s.Missed != n {
			t.Errorf("second %d: sent %d + missed %d; schedule plans %d", i, s.Sent, s.Missed, n)
		}
	}
	// Offered follows the schedule: 65, 155 (mean of the ramp's halves), 150.
	for i, want := range []float64{65, 155, 150} {
		if d := tl[i].Offered - want; d > 1e-6 || d < -1e-6 {
			t.Errorf("second %d offered %g; want %g", i, tl[i].Offered, want)
		}
	}
	if sum.Cancelled || sum.Stopped != 3*time.Second || sum.Scheduled != 3*time.Second {
		t.Errorf("summary cancelled=%v stopped=%s scheduled=%s; want false, 3s, 3s", sum.Cancelled, sum.Stopped, sum.Scheduled)
	}
}

// TestRunStallNoCoordinatedOmission stalls the server for 500ms in the middle
// of a steady 100 req/s with only two workers. Measured from the planned time,
// every request planned during the stall waits for its end, so about a quarter
// of the requests of that second show >= 250ms; a generator measuring from
// the actual send would show it on the two in-flight requests only.
func TestRunStallNoCoordinatedOmission(t *testing.T) {
	const stall = 500 * time.Millisecond
	var stallUntil atomic.Int64
	var n atomic.Int64
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 121 { // the request planned at 1.2s
			stallUntil.Store(time.Now().Add(stall).UnixNano())
		}
		if d := time.Until(time.Unix(0, stallUntil.Load())); d > 0 {
			time.Sleep(d)
		}
		okHandler(w, r)
	})
	cfg := Config{Target: srv.URL, Stages: stages(t, "hold:100:3s"), MaxWorkers: 2, LateAfter: 50 * time.Millisecond}
	sum, tl, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if sum.Planned != 300 || sum.OK < 290 {
		t.Errorf("planned %d ok %d; want 300 and >= 290", sum.Planned, sum.OK)
	}
	if sum.Max < stall {
		t.Errorf("max latency %s; want >= the %s stall", sum.Max, stall)
	}
	if sum.P99 < 400*time.Millisecond {
		t.Errorf("p99 %s; want >= 400ms (the stall hit ~25 of 300 requests by >= 250ms)", sum.P99)
	}
	if len(tl) == 3 && tl[1].P95 < 250*time.Millisecond {
		t.Errorf("second 1 p95 %s; want >= 250ms: requests planned during the stall waited for it", tl[1].P95)
	}
	// With 2 workers stuck, the requests planned 20ms..450ms into the stall are
	// sent more than 50ms late: about 40.
	if sum.Late < 20 {
		t.Errorf("late %d; want >= 20", sum.Late)
	}
	if sum.Workers != 2 {
		t.Errorf("workers %d; want 2 (the limit)", sum.Workers)
	}
}

// TestRunBacklogAtEndIsMissed: one worker, a server taking 300ms, 10 requests
// in one second: most cannot be sent before the schedule (plus LateAfter)
// ends. They must be counted as missed, not dropped.
func TestRunBacklogAtEndIsMissed(t *testing.T) {
	srv, served := server(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		okHandler(w, r)
	})
	cfg := Config{Target: srv.URL, Stages: stages(t, "hold:10:1s"), MaxWorkers: 1}
	sum, tl, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if sum.Planned != 10 || sum.Missed < 5 || sum.Sent < 1 || int64(sum.Sent) != served.Load() {
		t.Errorf("planned %d sent %d missed %d, server saw %d; want 10 planned, >= 5 missed, sent == seen", sum.Planned, sum.Sent, sum.Missed, served.Load())
	}
	if sum.Late < 1 {
		t.Errorf("late %d; want >= 1 (requests waited for the only worker)", sum.Late)
	}
}

func TestRunErrorKinds(t *testing.T) {
	// A port with nothing listening: bind, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/"
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}

	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
	}
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	reset := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_ = conn.(*net.TCPConn).SetLinger(0) // close with RST
		_ = conn.Close()
	}
	redirect := func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }

	tests := []struct {
		name         string
		handler      http.HandlerFunc // nil: use closedURL
		timeout      time.Duration
		wantKind     string
		wantAnswered bool
	}{
		{"http 500", status(500), 0, ErrHTTP5xx, true},
		{"http 503", status(503), 0, ErrHTTP5xx, true},
		{"http 404", status(404), 0, ErrHTTP4xx, true},
		{"redirect not followed", redirect, 0, ErrOther, true},
		{"connection refused", nil, 0, ErrConnRefused, false},
		{"timeout", hang, 100 * time.Millisecond, ErrTimeout, false},
		{"connection reset", reset, 0, ErrConnReset, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := closedURL
			if tt.handler != nil {
				srv, _ := server(t, tt.handler)
				target = srv.URL + "/"
			}
			cfg := Config{Target: target, Stages: stages(t, "hold:20:1s"), Timeout: tt.timeout}
			sum, tl, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, sum, tl)
			if sum.Sent < 15 || sum.Errors[tt.wantKind] != sum.Sent || sum.OK != 0 {
				t.Errorf("sent %d ok %d errors %v; want >= 15 sent, all %s", sum.Sent, sum.OK, sum.Errors, tt.wantKind)
			}
			if got := sum.Answered == sum.Sent; got != tt.wantAnswered {
				t.Errorf("answered %d of %d sent; want all answered = %v", sum.Answered, sum.Sent, tt.wantAnswered)
			}
			if tt.timeout > 0 && sum.Min < tt.timeout {
				t.Errorf("min latency %s; want >= the %s timeout", sum.Min, tt.timeout)
			}
		})
	}
}

// TestRunCancelPartialTimeline cancels a 60s run from the second progress
// callback and expects a prompt, consistent, partial result.
func TestRunCancelPartialTimeline(t *testing.T) {
	srv, _ := server(t, okHandler)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Target: srv.URL, Stages: stages(t, "hold:50:60s")}
	calls := 0
	sum, tl, err := Run(ctx, cfg, func(s Second) {
		calls++
		if s.Offset == time.Second {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if !sum.Cancelled {
		t.Error("summary not marked cancelled")
	}
	if len(tl) < 2 || len(tl) > 10 || sum.Stopped > 10*time.Second || calls != len(tl) {
		t.Errorf("timeline %d seconds, stopped at %s, %d callbacks; want a partial run stopped soon after 2s", len(tl), sum.Stopped, calls)
	}
	sched, _ := NewSchedule(cfg.Stages)
	if want := planned(sched, 0, sum.Stopped); sum.Planned != want {
		t.Errorf("planned %d; want %d planned before the stop at %s", sum.Planned, want, sum.Stopped)
	}
	last := tl[len(tl)-1]
	if want := sched.Expected(sum.Stopped) - sched.Expected(last.Offset); last.Offered-want > 1e-6 || want-last.Offered > 1e-6 {
		t.Errorf("last second offered %g; want %g (up to the stop)", last.Offered, want)
	}
}

// TestRunCancelAbortsInFlight: requests hanging on the server are aborted by
// the cancel and counted as canceled, not left running.
func TestRunCancelAbortsInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fifth := make(chan struct{})
	var n atomic.Int64
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 5 {
			close(fifth)
		}
		<-r.Context().Done() // hang until the client goes away
	})
	go func() {
		select {
		case <-fifth:
			cancel()
		case <-ctx.Done():
		}
	}()
	cfg := Config{Target: srv.URL, Stages: stages(t, "hold:20:60s")}
	sum, tl, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if sum.Sent < 5 || sum.Errors[ErrCanceled] != sum.Sent || !sum.Cancelled {
		t.Errorf("sent %d errors %v cancelled %v; want >= 5 sent, all canceled", sum.Sent, sum.Errors, sum.Cancelled)
	}
}

func TestRunInvalidConfig(t *testing.T) {
	good := stages(t, "hold:1:1s")
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no target", Config{Stages: good}, "no target"},
		{"relative target", Config{Target: "/x", Stages: good}, "scheme"},
		{"ftp target", Config{Target: "ftp://127.0.0.1/", Stages: good}, "scheme"},
		{"no host", Config{Target: "http:///x", Stages: good}, "no host"},
		{"no stages", Config{Target: "http://127.0.0.1:1/"}, "no stages"},
		{"bad stage", Config{Target: "http://127.0.0.1:1/", Stages: []Stage{{Kind: KindHold, From: 1}}}, "duration"},
		{"negative timeout", Config{Target: "http://127.0.0.1:1/", Stages: good, Timeout: -1}, "timeout"},
		{"negative workers", Config{Target: "http://127.0.0.1:1/", Stages: good, MaxWorkers: -1}, "workers"},
		{"bad method", Config{Target: "http://127.0.0.1:1/", Stages: good, Method: "BAD METHOD"}, "method"},
	}
	for _, tt := range tests {
		called := false
		_, tl, err := Run(context.Background(), tt.cfg, func(Second) { called = true })
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || tl != nil || called {
			t.Errorf("%s: Run = %v, %d seconds, called %v; want error containing %q and nothing run", tt.name, err, len(tl), called, tt.wantErr)
		}
	}
}

// TestRunTrailingQuietStage: a schedule ending at 0 req/s (a cool-down to
// watch the pool shrink) still lasts its full length, second by second.
func TestRunTrailingQuietStage(t *testing.T) {
	srv, _ := server(t, okHandler)
	start := time.Now()
	var at []time.Duration
	sum, tl, err := Run(context.Background(), Config{Target: srv.URL, Stages: stages(t, "hold:20:1s", "hold:0:2s")},
		func(Second) { at = append(at, time.Since(start)) })
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if len(tl) != 3 || tl[1].Sent != 0 || tl[2].Sent != 0 || sum.Sent != 20 {
		t.Fatalf("timeline %+v, sent %d; want 3 seconds, 20 requests all in the first", tl, sum.Sent)
	}
	// Each second is reported only after it has passed.
	for i, d := range at {
		if d < time.Duration(i+1)*time.Second {
			t.Errorf("second %d reported %s after start; want >= %ds", i, d, i+1)
		}
	}
}
