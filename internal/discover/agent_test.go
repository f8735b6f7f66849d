package discover

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"tidepool/internal/buildbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	buildbin.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// poolA is a pool ID for tests without a cloud (memClient).
const poolA = "2f3c1b5e-0a5d-4c1e-9b0e-1d2c3b4a5f60"

// metric returns the value of the agent's counter or gauge name with the
// given label pairs (k, v, ...), failing if it does not exist.
func metric(t *testing.T, a *Agent, name string, labelPairs ...string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labelPairs); i += 2 {
				if !hasLabel(m, labelPairs[i], labelPairs[i+1]) {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labelPairs)
	return 0
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

func fileInode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// getTargets fetches /targets from the agent's handler.
func getTargets(t *testing.T, a *Agent) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/targets", nil))
	return rec.Code, rec.Body.Bytes()
}

// newTestAgent returns an agent on lc's pool (unless cfg names one), writing
// into a temporary directory.
func newTestAgent(t *testing.T, lc *localCloud, cfg Config) *Agent {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = newTestClient(t, lc.endpoint(), lc.env.Key, lc.env.Secret)
	}
	if cfg.PoolID == "" && cfg.PoolName == "" {
		cfg.PoolID = lc.poolID
	}
	if cfg.Output == "" {
		cfg.Output = filepath.Join(t.TempDir(), "sd", "config.json")
	}
	if cfg.Zone == "" {
		cfg.Zone = lc.env.Zone
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(a.output), 0o755); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRefreshPublishesFileAndHTTPSD(t *testing.T) {
	lc := newLocalCloud(t, 2)
	lc.env.CreatePool(t, 1) // another pool: its member is no target
	want := lc.members(t)
	for _, sel := range []struct{ name, id, poolName string }{{"by id", lc.poolID, ""}, {"by name", "", lc.poolName}} {
		t.Run(sel.name, func(t *testing.T) {
			a := newTestAgent(t, lc, Config{PoolID: sel.id, PoolName: sel.poolName})
			if code, _ := getTargets(t, a); code != http.StatusServiceUnavailable {
				t.Errorf("GET /targets before any refresh: %d, want 503", code)
			}
			if err := a.Refresh(context.Background()); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			got, err := fileMembers(t, a.output, lc.pool())
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("file targets:\n got %v (%v)\nwant %v", got, err, want)
			}
			code, body := getTargets(t, a)
			if code != http.StatusOK || !bytes.Equal(body, readFile(t, a.output)) {
				t.Errorf("GET /targets = %d %q, want 200 and the file's bytes", code, body)
			}
			if got := metric(t, a, "tidepool_discover_targets"); got != float64(len(want)) {
				t.Errorf("targets gauge = %v, want %d", got, len(want))
			}
			if got := metric(t, a, "tidepool_discover_last_success_timestamp_seconds"); got < float64(time.Now().Add(-time.Minute).Unix()) {
				t.Errorf("last success = %v, want about now", got)
			}
		})
	}
}

func TestRefreshRewritesOnlyOnChange(t *testing.T) {
	lc := newLocalCloud(t, 2)
	a := newTestAgent(t, lc, Config{})
	ctx := context.Background()
	id := v3.UUID(lc.poolID)
	steps := []struct {
		name        string
		change      func()
		wantRewrite bool
		wantWrites  float64
	}{
		{"first refresh", nil, true, 1},
		{"same members", nil, false, 1},
		{"same members again", nil, false, 1},
		{"a member joins", func() { scalePool(t, lc.env, id, 3) }, true, 2},
		{"a member leaves", func() { scalePool(t, lc.env, id, 2) }, true, 3},
		{"unchanged", nil, false, 3},
	}
	var lastIno uint64
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		if err := a.Refresh(ctx); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := metric(t, a, "tidepool_discover_file_writes_total"); got != s.wantWrites {
			t.Errorf("%s: writes = %v, want %v", s.name, got, s.wantWrites)
		}
		ino := fileInode(t, a.output)
		if rewritten := ino != lastIno; rewritten != s.wantRewrite {
			t.Errorf("%s: rewritten = %v (inode %d -> %d), want %v", s.name, rewritten, lastIno, ino, s.wantRewrite)
		}
		lastIno = ino
	}
}

// TestErrorsKeepLastGoodFile breaks the API in every way the agent must
// survive after a good refresh: the file and the HTTP SD document must not
// change, the failure must be counted under its kind, and the next good
// answer must be published again.
func TestErrorsKeepLastGoodFile(t *testing.T) {
	tests := []struct {
		name     string
		breakAPI func(t *testing.T, lc *localCloud) Config
		wantKind string
	}{
		{"500", func(t *testing.T, lc *localCloud) Config { lc.setFault(faultServer); return Config{} }, KindServer},
		{"503 plain text", func(t *testing.T, lc *localCloud) Config { lc.setFault(faultUnavail); return Config{} }, KindServer},
		{"malformed JSON", func(t *testing.T, lc *localCloud) Config { lc.setFault(faultMalformed); return Config{} }, KindResponse},
		{"timeout", func(t *testing.T, lc *localCloud) Config {
			lc.setFault(faultHang)
			return Config{Timeout: 300 * time.Millisecond}
		}, KindTimeout},
		{"wrong credentials", func(t *testing.T, lc *localCloud) Config {
			return Config{Client: newTestClient(t, lc.endpoint(), "EXOwrongkey", "secret")}
		}, KindAuth},
		{"API down", func(t *testing.T, lc *localCloud) Config {
			// A closed loopback port: connection refused.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			return Config{Client: newTestClient(t, "http://"+addr+"/v2", lc.env.Key, lc.env.Secret)}
		}, KindNetwork},
		{"pool deleted", func(t *testing.T, lc *localCloud) Config { // last: the pool is gone for good
			deletePool(t, lc)
			return Config{}
		}, KindNotFound},
	}
	lc := newLocalCloud(t, 2)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc.setFault(nil)
			t.Cleanup(func() { lc.setFault(nil) })
			output := filepath.Join(t.TempDir(), "config.json")
			good := newTestAgent(t, lc, Config{Output: output})
			if err := good.Refresh(context.Background()); err != nil {
				t.Fatalf("good refresh: %v", err)
			}
			before := readFile(t, output)
			ino := fileInode(t, output)

			// The same agent state (file on disk) seen by a second agent whose
			// API is broken, plus the first agent's HTTP SD document.
			cfg := tt.breakAPI(t, lc)
			cfg.Output = output
			bad := newTestAgent(t, lc, cfg)
			err := bad.Refresh(context.Background())
			if err == nil {
				t.Fatal("Refresh with a broken API: got nil error")
			}
			if got := errorKind(err); got != tt.wantKind {
				t.Errorf("error kind = %q, want %q (err: %v)", got, tt.wantKind, err)
			}
			if got := metric(t, bad, "tidepool_discover_refresh_errors_total", "kind", tt.wantKind); got != 1 {
				t.Errorf("errors{kind=%q} = %v, want 1", tt.wantKind, got)
			}
			if got := metric(t, bad, "tidepool_discover_last_success_timestamp_seconds"); got != 0 {
				t.Errorf("last success after failure only = %v, want 0", got)
			}
			if got := readFile(t, output); !bytes.Equal(got, before) || fileInode(t, output) != ino {
				t.Errorf("file changed after a failed refresh:\n%s", got)
			}
			if code, _ := getTargets(t, bad); code != http.StatusServiceUnavailable {
				t.Errorf("GET /targets with no good refresh = %d, want 503", code)
			}

			// The good agent keeps serving its document through a failure too.
			lc.setFault(faultServer)
			if err := good.Refresh(context.Background()); err == nil {
				t.Fatal("good agent: Refresh during a 500: got nil error")
			}
			if code, body := getTargets(t, good); code != http.StatusOK || !bytes.Equal(body, before) {
				t.Errorf("GET /targets after a failure = %d %q, want the last good document", code, body)
			}
			if got := metric(t, good, "tidepool_discover_targets"); got != 2 {
				t.Errorf("targets gauge after a failure = %v, want 2 (last good)", got)
			}
		})
	}
}

func TestWriteFailureIsCountedAndRetried(t *testing.T) {
	lc := newLocalCloud(t, 1)
	dir := t.TempDir()
	output := filepath.Join(dir, "config.json")
	a := newTestAgent(t, lc, Config{Output: output})
	// A directory where the file should be makes the rename fail.
	if err := os.MkdirAll(filepath.Join(output, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := a.Refresh(context.Background())
	if got := errorKind(err); got != KindWrite {
		t.Fatalf("error kind = %q, want %q (err: %v)", got, KindWrite, err)
	}
	if got := metric(t, a, "tidepool_discover_refresh_errors_total", "kind", KindWrite); got != 1 {
		t.Errorf("errors{kind=write} = %v, want 1", got)
	}
	// The API answer was good: HTTP SD serves it even though the file failed.
	if code, _ := getTargets(t, a); code != http.StatusOK {
		t.Errorf("GET /targets = %d, want 200", code)
	}
	if err := os.RemoveAll(output); err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh after the obstacle is gone: %v", err)
	}
	if code, body := getTargets(t, a); code != http.StatusOK || !bytes.Equal(body, readFile(t, output)) {
		t.Errorf("file and HTTP SD differ after recovery")
	}
}

// fakeClock hands every wait to the test, which fires it explicitly.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeWait
}

type fakeWait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), waits: make(chan fakeWait, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	w := fakeWait{d: d, fire: make(chan time.Time, 1)}
	c.waits <- w
	return w.fire
}

// expect waits for the agent's next timer and checks its duration. The
// agent's previous refresh is complete when it starts a wait.
func (c *fakeClock) expect(t *testing.T, want time.Duration) fakeWait {
	t.Helper()
	select {
	case w := <-c.waits:
		if w.d != want {
			t.Errorf("agent waits %v, want %v", w.d, want)
		}
		return w
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not start a wait of %v", want)
		return fakeWait{}
	}
}

// fire advances the clock by the wait's duration and ends the wait.
func (c *fakeClock) fire(w fakeWait) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.fire <- now
}

// TestRunRetriesWithBackoff drives Run with a fake clock: failures wait
// 1s, 2s, 4s; success waits the interval and resets the backoff; the last
// good file survives the failures; Run returns nil when cancelled.
func TestRunRetriesWithBackoff(t *testing.T) {
	lc := newLocalCloud(t, 1)
	clock := newFakeClock()
	a := newTestAgent(t, lc, Config{Interval: 10 * time.Second, MinBackoff: time.Second, MaxBackoff: 3 * time.Second, Clock: clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	w := clock.expect(t, 10*time.Second) // first refresh succeeded at once
	good := readFile(t, a.output)
	if got := metric(t, a, "tidepool_discover_last_success_timestamp_seconds"); got != 1_700_000_000 {
		t.Errorf("last success = %v, want the fake clock's 1700000000", got)
	}
	lc.setFault(faultServer)
	clock.fire(w)
	clock.fire(clock.expect(t, time.Second))
	clock.fire(clock.expect(t, 2*time.Second))
	clock.fire(clock.expect(t, 3*time.Second)) // capped at MaxBackoff
	w = clock.expect(t, 3*time.Second)
	if got := metric(t, a, "tidepool_discover_refresh_errors_total", "kind", KindServer); got != 4 {
		t.Errorf("server errors = %v, want 4", got)
	}
	if !bytes.Equal(readFile(t, a.output), good) {
		t.Error("file changed during the outage")
	}
	lc.setFault(nil)
	clock.fire(w)
	w = clock.expect(t, 10*time.Second) // recovered: back to the interval
	if got := metric(t, a, "tidepool_discover_last_success_timestamp_seconds"); got != 1_700_000_000+10+1+2+3+3 {
		t.Errorf("last success = %v, want 1700000019", got)
	}
	lc.setFault(faultServer)
	clock.fire(w)
	clock.expect(t, time.Second) // backoff starts over
	if got := metric(t, a, "tidepool_discover_refreshes_total"); got != 7 {
		t.Errorf("refreshes = %v, want 7", got)
	}
}

func TestRunReturnsPromptlyWhenCancelledDuringAHungCall(t *testing.T) {
	lc := newLocalCloud(t, 1)
	lc.setFault(faultHang)
	a := newTestAgent(t, lc, Config{Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for lc.requestCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
	// A cancelled refresh is not an API failure.
	for _, k := range errorKinds {
		if got := metric(t, a, "tidepool_discover_refresh_errors_total", "kind", k); got != 0 {
			t.Errorf("errors{kind=%q} = %v after cancel, want 0", k, got)
		}
	}
	if _, err := os.Stat(a.output); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file exists after no successful refresh (stat err %v)", err)
	}
}

func TestRunFailsWhenOutputDirCannotBeCreated(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Client: &memClient{}, PoolID: poolA, Output: filepath.Join(blocker, "sub", "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil {
		t.Error("Run with an impossible output directory: got nil error")
	}
}

// TestConcurrentReaderNeverSeesPartialTargets refreshes thousands of times
// with membership changing every time, while a reader parses the file as
// fast as it can: it must always get valid JSON with at least one target.
func TestConcurrentReaderNeverSeesPartialTargets(t *testing.T) {
	dir, err := os.MkdirTemp("/dev/shm", "discover-test-") // tmpfs: free fsync, so thousands of rewrites are cheap
	if err != nil {
		dir = t.TempDir()
	} else {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	mc := &memClient{pool: v3.InstancePool{ID: poolA, Name: "web"}}
	a, err := New(Config{Client: mc, PoolID: poolA, Output: filepath.Join(dir, "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	membersOf := func(n int) []v3.ListInstancesResponseInstances {
		var out []v3.ListInstancesResponseInstances
		for i := 0; i < n; i++ {
			out = append(out, v3.ListInstancesResponseInstances{
				ID: v3.UUID(fmt.Sprintf("i-%03d", i)), Name: fmt.Sprintf("web-%d", i),
				PublicIP: net.IPv4(10, 0, byte(i/250), byte(i%250+1)), State: v3.InstanceStateRunning,
			})
		}
		return out
	}
	mc.set(membersOf(1), nil)
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	const minRefreshes, minReads = 3000, 3000
	var reads atomic.Int64
	var bad []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(a.output)
			reads.Add(1)
			var groups []TargetGroup
			switch {
			case err != nil:
				bad = append(bad, err.Error())
			case json.Unmarshal(b, &groups) != nil:
				bad = append(bad, fmt.Sprintf("invalid JSON (%d bytes)", len(b)))
			case len(groups) == 0:
				bad = append(bad, "empty target list")
			}
		}
	}()
	refreshes := 0
	for refreshes < minRefreshes || (reads.Load() < minReads && refreshes < 100*minRefreshes) {
		refreshes++
		mc.set(membersOf(1+refreshes%8*5), nil) // 1 to 36 members
		if refreshes%10 == 0 {
			mc.set(nil, v3.ErrServiceUnavailable) // failures must not publish anything
		}
		a.Refresh(context.Background()) //nolint:errcheck // failures are part of the test
	}
	close(done)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d reads were bad; first: %s", len(bad), reads.Load(), bad[0])
	}
	if got := metric(t, a, "tidepool_discover_file_writes_total"); got < minRefreshes/2 {
		t.Errorf("only %v file writes in %d refreshes", got, refreshes)
	}
	t.Logf("%d reads during %d refreshes", reads.Load(), refreshes)
}

func TestHandlerEndpoints(t *testing.T) {
	mc := &memClient{pool: v3.InstancePool{ID: poolA, Name: "web"}}
	mc.set([]v3.ListInstancesResponseInstances{{ID: "i1", PublicIP: net.IPv4(10, 0, 0, 1), State: "running"}}, nil)
	a, err := New(Config{Client: mc, PoolID: poolA, Output: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	tests := []struct {
		method, path string
		wantCode     int
		wantType     string
		wantBody     string
	}{
		{"GET", "/targets", 200, "application/json", `"10.0.0.1:9100"`},
		{"GET", "/health", 200, "text/plain; charset=utf-8", "OK"},
		{"GET", "/metrics", 200, "text/plain", "tidepool_discover_refreshes_total 1"},
		{"GET", "/metrics", 200, "text/plain", `tidepool_discover_refresh_errors_total{kind="auth"} 0`},
		{"POST", "/targets", 405, "", ""},
		{"GET", "/nope", 404, "", ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tt.wantCode {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.wantCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
			t.Errorf("%s %s Content-Type = %q, want prefix %q", tt.method, tt.path, ct, tt.wantType)
		}
		if !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s %s body does not contain %q:\n%s", tt.method, tt.path, tt.wantBody, body)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	mc := &memClient{}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{PoolID: poolA}, "no API client"},
		{"no pool", Config{Client: mc}, "no instance pool"},
		{"port too big", Config{Client: mc, PoolID: poolA, Port: 70000}, "port 70000 out of range"},
		{"negative interval", Config{Client: mc, PoolID: poolA, Interval: -time.Second}, "negative interval"},
		{"max below min", Config{Client: mc, PoolID: poolA, MinBackoff: time.Minute, MaxBackoff: time.Second}, "max backoff"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want error containing %q", tt.name, err, tt.want)
		}
	}
	a, err := New(Config{Client: mc, PoolName: "web"})
	if err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	if a.port != DefaultPort || a.output != DefaultOutput || a.interval != DefaultInterval ||
		a.timeout != DefaultTimeout || a.minBackoff != DefaultMinBackoff || a.maxBackoff != DefaultMaxBackoff {
		t.Errorf("defaults not applied: %+v", a)
	}
}

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", context.DeadlineExceeded), KindTimeout},
		{fmt.Errorf("x: %w", v3.ErrUnauthorized), KindAuth},
		{fmt.Errorf("x: %w", v3.ErrForbidden), KindAuth},
		{fmt.Errorf("x: %w", v3.ErrNotFound), KindNotFound},
		{fmt.Errorf("x: %w", v3.ErrBadGateway), KindServer},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, KindNetwork},
		{&responseError{"x"}, KindResponse},
		{&publishError{&net.OpError{Op: "x", Err: errors.New("y")}}, KindWrite},
		{fmt.Errorf("x: %w", v3.ErrConflict), KindOther},
		{errors.New("mystery"), KindOther},
	}
	for _, tt := range tests {
		if got := errorKind(tt.err); got != tt.want {
			t.Errorf("errorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
