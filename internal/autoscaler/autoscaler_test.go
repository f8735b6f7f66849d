package autoscaler

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/buildbin"
	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/exoclient"
)

func TestMain(m *testing.M) {
	code := m.Run()
	buildbin.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a debug logger into a buffer that is printed if the
// test fails.
func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("autoscaler log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// clock is an injected, manually advanced clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestAutoscaler returns an autoscaler on f with fast retries and an
// injected clock; edit adjusts the config.
func newTestAutoscaler(t *testing.T, f testCloud, edit func(*Config)) (*Autoscaler, *clock, *syncBuffer) {
	t.Helper()
	log, buf := testLogger(t)
	clk := &clock{now: time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)}
	cfg := Config{
		Cloud:        f.apiClient(),
		PoolID:       f.pool(),
		Policy:       policy.Webhook{Limits: policy.Limits{Min: 1, Max: 3}},
		Now:          clk.Now,
		RetryBase:    5 * time.Millisecond,
		DrainGrace:   -1,
		Logger:       log,
		HTTPClient:   &http.Client{Timeout: 2 * time.Second},
		AppPort:      1, // nothing listens: drains fail fast unless a test sets a port
		StateFile:    filepath.Join(t.TempDir(), "state.json"),
		DrainTimeout: 5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, clk, buf
}

// signal sends method path to a's handler and returns the status code and
// decoded reply.
func signal(t *testing.T, a *Autoscaler, method, path string, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	var reply map[string]any
	if rec.Body.Len() > 0 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			t.Fatalf("%s %s: reply is not JSON: %v\n%s", method, path, err, rec.Body.String())
		}
	}
	return rec.Code, reply
}

func TestTickScalesUpOnSignal(t *testing.T) {
	f := newLocalCloud(t, 1)
	a, _, logs := newTestAutoscaler(t, f, nil)
	if code, _ := signal(t, a, http.MethodPost, "/up", "", nil); code != http.StatusOK {
		t.Fatalf("GET /up = %d, want 200", code)
	}
	d, err := a.Tick(context.Background())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if d.From != 1 || d.To != 2 || d.Reason != policy.ReasonUpSignal {
		t.Errorf("decision = %+v, want from 1 to 2 up-signal", d)
	}
	if got := f.poolSize(); got != 2 {
		t.Errorf("pool size = %d, want 2", got)
	}
	if got := f.callCount(routeScale); got != 1 {
		t.Errorf("scale calls = %d, want 1", got)
	}
	if !strings.Contains(logs.String(), "from 1 to 2 because a scale-up signal arrived") {
		t.Errorf("log lacks the decision message:\n%s", logs)
	}
	// The signal is consumed: the next tick does nothing.
	d, err = a.Tick(context.Background())
	if err != nil || d.Action != policy.ActionNone || d.Reason != policy.ReasonNoSignal {
		t.Errorf("second Tick = %+v, %v; want no-signal", d, err)
	}
	if got := f.callCount(routeScale); got != 1 {
		t.Errorf("scale calls after second tick = %d, want 1", got)
	}
	st := a.Status()
	if st.Pool.Size != 2 || len(st.Decisions) != 2 || st.Decisions[1].Result != resultScaled || st.LastScale.IsZero() {
		t.Errorf("status = %+v, want size 2, 2 decisions (older scaled), last scale set", st)
	}
}

// TestRecordTimeIsTheTicksNow: a decision is stamped with the now of the
// tick that made it, not when its change finished, so that marks drawn from
// the records (the demo's report) do not land late.
func TestRecordTimeIsTheTicksNow(t *testing.T) {
	f := newFakeCloud(t, 1)
	var mu sync.Mutex
	now := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) {
		c.Now = func() time.Time { // every reading is a second after the last
			mu.Lock()
			defer mu.Unlock()
			now = now.Add(time.Second)
			return now
		}
	})
	if code, _ := signal(t, a, http.MethodPost, "/up", "", nil); code != http.StatusOK {
		t.Fatalf("POST /up = %d, want 200", code)
	}
	mu.Lock()
	before := now
	mu.Unlock()
	if _, err := a.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	st := a.Status()
	got := st.Decisions[len(st.Decisions)-1]
	if got.Result != resultScaled || !got.Time.After(before) || !got.Time.Before(st.LastScale) {
		t.Errorf("record %s at %s, want scaled and stamped after %s and before the change finished at %s",
			got.Result, got.Time, before, st.LastScale)
	}
}

func TestTickDownAtMinIsNoop(t *testing.T) {
	f := newLocalCloud(t, 1)
	a, _, logs := newTestAutoscaler(t, f, nil)
	if code, _ := signal(t, a, http.MethodPost, "/down", "", nil); code != http.StatusOK {
		t.Fatalf("POST /down = %d, want 200", code)
	}
	d, err := a.Tick(context.Background())
	if err != nil || d.Reason != policy.ReasonAtMin || d.To != 1 {
		t.Fatalf("Tick = %+v, %v; want at-min no-op", d, err)
	}
	if n := f.callCount(routeScale) + f.callCount(routeEvict); n != 0 {
		t.Errorf("%d scaling calls, want none", n)
	}
	if !strings.Contains(logs.String(), "from 1 to 1 because the pool is at its minimum size 1") {
		t.Errorf("log lacks the no-op decision:\n%s", logs)
	}
}

func TestTickRetriesWithoutScalingTwice(t *testing.T) {
	tests := []struct {
		name       string
		failures   []cloudtest.Fault
		wantScales int
	}{
		{"failure before the change is retried", []cloudtest.Fault{{Status: 503}}, 2},
		{"response lost after the change is not repeated", []cloudtest.Fault{{Status: 502, After: true}}, 1},
		{"two failures", []cloudtest.Fault{{Status: 500}, {Status: 504}}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLocalCloud(t, 2)
			a, _, _ := newTestAutoscaler(t, f, nil)
			f.fail(routeScale, tt.failures...)
			signal(t, a, http.MethodPost, "/up", "", nil)
			if _, err := a.Tick(context.Background()); err != nil {
				t.Fatalf("Tick: %v", err)
			}
			if got := f.poolSize(); got != 3 {
				t.Errorf("pool size = %d, want 3", got)
			}
			if got := f.callCount(routeScale); got != tt.wantScales {
				t.Errorf("scale calls = %d, want %d (calls %v)", got, tt.wantScales, f.callLog())
			}
			if got := counterValue(t, a.metrics.cloudErrors.WithLabelValues(opScale)); got != float64(len(tt.failures)) {
				t.Errorf("cloud errors = %v, want %d", got, len(tt.failures))
			}
		})
	}
}

// TestTickFailedOperationIsAnError checks that an operation the cloud ends
// in failure is reported, not retried into a false success.
func TestTickFailedOperationIsAnError(t *testing.T) {
	f := newFakeCloud(t, 2)
	a, _, _ := newTestAutoscaler(t, f, nil)
	f.mu.Lock()
	f.failOps = true
	f.mu.Unlock()
	signal(t, a, http.MethodPost, "/up", "", nil)
	if _, err := a.Tick(context.Background()); err == nil || !strings.Contains(err.Error(), "failure") {
		t.Fatalf("Tick error = %v, want the failed operation", err)
	}
	if got := f.callCount(routeScale); got != 1 {
		t.Errorf("scale calls = %d, want 1 (a failed operation is not retried)", got)
	}
}

func TestTickObserveFailureKeepsSignals(t *testing.T) {
	f := newLocalCloud(t, 1)
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.RetryAttempts = 2 })
	f.fail(routePool, cloudtest.Fault{Status: 500}, cloudtest.Fault{Status: 500})
	signal(t, a, http.MethodPost, "/up", "", nil)
	if _, err := a.Tick(context.Background()); err == nil {
		t.Fatal("Tick succeeded, want an error")
	}
	if got := a.Status().Pending; got.Up != 1 {
		t.Errorf("pending = %+v, want the up signal kept", got)
	}
	if _, err := a.Tick(context.Background()); err != nil {
		t.Fatalf("second Tick: %v", err)
	}
	if got := f.poolSize(); got != 2 {
		t.Errorf("pool size = %d, want 2 after the kept signal", got)
	}
}

func TestTickPermanentErrorIsNotRetried(t *testing.T) {
	f := newLocalCloud(t, 1)
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.PoolID = "7b6c1a1e-0000-4000-8000-0000000000ff" })
	_, err := a.Tick(context.Background())
	if err == nil || !isPermanent(err) {
		t.Fatalf("Tick error = %v, want a permanent not-found error", err)
	}
	if got := f.callCount(routePool); got != 1 {
		t.Errorf("pool reads = %d, want 1 (no retry of a 404)", got)
	}
}

func TestTickHolds(t *testing.T) {
	t.Run("pool not running", func(t *testing.T) {
		f := newFakeCloud(t, 1)
		f.set(func(f *fakeCloud) { f.state = "scaling-up" })
		a, _, _ := newTestAutoscaler(t, f, nil)
		signal(t, a, http.MethodPost, "/up", "", nil)
		d, err := a.Tick(context.Background())
		if err != nil || d.Reason != policy.ReasonPoolNotRunning {
			t.Fatalf("Tick = %+v, %v; want pool-not-running", d, err)
		}
		if f.callCount(routeScale) != 0 {
			t.Error("scaled a pool that is not running")
		}
	})
	t.Run("dry run", func(t *testing.T) {
		f := newLocalCloud(t, 1)
		a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.DryRun = true })
		signal(t, a, http.MethodPost, "/up", "", nil)
		d, err := a.Tick(context.Background())
		if err != nil || d.Action != policy.ActionScaleUp {
			t.Fatalf("Tick = %+v, %v; want a scale-up decision", d, err)
		}
		if f.callCount(routeScale) != 0 || f.poolSize() != 1 {
			t.Error("dry run changed the pool")
		}
		if st := a.Status(); st.Decisions[0].Result != resultDryRun || !st.LastScale.IsZero() {
			t.Errorf("status = %+v, want dry_run and no last scale", st)
		}
	})
}

func TestCooldownSurvivesRestart(t *testing.T) {
	f := newLocalCloud(t, 1)
	stateFile := filepath.Join(t.TempDir(), "state.json")
	edit := func(c *Config) {
		c.StateFile = stateFile
		c.Policy = policy.Webhook{Limits: policy.Limits{Min: 1, Max: 5, Cooldown: 10 * time.Minute}}
	}
	a, clk, _ := newTestAutoscaler(t, f, edit)
	signal(t, a, http.MethodPost, "/up", "", nil)
	if d, err := a.Tick(context.Background()); err != nil || d.To != 2 {
		t.Fatalf("Tick = %+v, %v; want to 2", d, err)
	}
	scaledAt := clk.Now()
	signal(t, a, http.MethodPost, "/up", "", nil) // pending survives too

	b, clk2, _ := newTestAutoscaler(t, f, edit)
	clk2.now = scaledAt.Add(5 * time.Minute)
	if got := b.Status(); !got.LastScale.Equal(scaledAt) || got.Pending.Up != 1 {
		t.Fatalf("restored status: last scale %v pending %+v, want %v and 1 up", got.LastScale, got.Pending, scaledAt)
	}
	d, err := b.Tick(context.Background())
	if err != nil || d.Reason != policy.ReasonCooldown {
		t.Fatalf("Tick after restart = %+v, %v; want cooldown", d, err)
	}
	clk2.Advance(5 * time.Minute)
	signal(t, b, http.MethodPost, "/up", "", nil)
	if d, err := b.Tick(context.Background()); err != nil || d.To != 3 {
		t.Fatalf("Tick after cooldown = %+v, %v; want to 3", d, err)
	}
}

func TestCorruptStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Cloud: offlineClient(t), PoolID: "7b6c1a1e-0000-4000-8000-000000000001", StateFile: path})
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("New = %v, want a corrupt state file error", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "{not json" {
		t.Errorf("state file was changed to %q", data)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := Config{Cloud: offlineClient(t), PoolID: "7b6c1a1e-0000-4000-8000-000000000001"}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no cloud", func(c *Config) { c.Cloud = nil }},
		{"pool ID not a UUID", func(c *Config) { c.PoolID = "pool-1" }},
		{"NLB without service", func(c *Config) { c.NLBID = fakeNLB }},
		{"bad NLB service ID", func(c *Config) { c.NLBID, c.NLBServiceID = fakeNLB, "x" }},
		{"basic auth without colon", func(c *Config) { c.BasicAuth = "user" }},
		{"max below min", func(c *Config) { c.Policy = policy.Webhook{Limits: policy.Limits{Min: 3, Max: 2}} }},
		{"app port", func(c *Config) { c.AppPort = 70000 }},
	}
	for _, tt := range tests {
		cfg := good
		tt.edit(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", tt.name)
		}
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate succeeded, want an error", tt.name)
		}
	}
	if _, err := New(good); err != nil {
		t.Errorf("New(good) = %v", err)
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(good) = %v", err)
	}
}

// drainApp is a member app stand-in on 127.0.0.1: it records POST /drain
// and, when drained, flips the member's NLB health to failure after delay.
type drainApp struct {
	port    int
	drained atomic.Int32
}

func newDrainApp(t *testing.T, f *fakeCloud, delay time.Duration) *drainApp {
	t.Helper()
	d := &drainApp{}
	var mu sync.Mutex
	var timers []*time.Timer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/drain" {
			http.NotFound(w, r)
			return
		}
		d.drained.Add(1)
		f.mu.Lock()
		f.calls = append(f.calls, "POST drain")
		f.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		timers = append(timers, time.AfterFunc(delay, func() {
			f.set(func(f *fakeCloud) { f.health["127.0.0.1"] = "failure" })
		}))
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, tm := range timers {
			tm.Stop()
		}
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	d.port, _ = strconv.Atoi(port)
	return d
}

func TestScaleInDrainsNewestThenEvicts(t *testing.T) {
	f := newFakeCloud(t, 3)
	app := newDrainApp(t, f, 300*time.Millisecond)
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) {
		c.NLBID, c.NLBServiceID = fakeNLB, fakeSvc
		c.AppPort = 0 // from the NLB service's target port
	})
	f.set(func(f *fakeCloud) { f.svcPort = int64(app.port) })
	newest := f.memberIDs()[2]
	signal(t, a, http.MethodPost, "/down", "", nil)
	d, err := a.Tick(context.Background())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if d.To != 2 || !slices.Equal(d.Victims, []string{newest}) {
		t.Errorf("decision = %+v, want to 2 evicting the newest %s", d, newest)
	}
	if got := f.memberIDs(); len(got) != 2 || slices.Contains(got, newest) {
		t.Errorf("members = %v, want 2 without %s", got, newest)
	}
	if app.drained.Load() != 1 {
		t.Errorf("drain requests = %d, want 1", app.drained.Load())
	}
	// Order: drain, then NLB reports failure, then evict.
	calls := f.callLog()
	drainAt, evictAt := slices.Index(calls, "POST drain"), slices.Index(calls, routeEvict)
	if drainAt < 0 || evictAt < drainAt {
		t.Fatalf("calls %v: want POST drain before the evict", calls)
	}
	if n := slices.Index(calls[drainAt:], routeService); n < 0 || drainAt+n > evictAt {
		t.Errorf("calls %v: want the NLB service polled between drain and evict", calls)
	}
	if f.callCount(routeScale) != 0 {
		t.Error("scale-in used ScaleInstancePool instead of naming the member")
	}
}

func TestScaleInEvictsWhenDrainFails(t *testing.T) {
	f := newLocalCloud(t, 2)
	a, _, logs := newTestAutoscaler(t, f, nil) // AppPort 1: connection refused
	signal(t, a, http.MethodPost, "/down", "", nil)
	if _, err := a.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if got := f.poolSize(); got != 1 {
		t.Errorf("pool size = %d, want 1", got)
	}
	if !strings.Contains(logs.String(), "drain request failed, evicting anyway") {
		t.Errorf("log lacks the drain failure:\n%s", logs)
	}
}

func TestScaleInDrainTimeout(t *testing.T) {
	f := newFakeCloud(t, 2)
	app := newDrainApp(t, f, time.Hour) // the NLB never sees it fail
	a, _, logs := newTestAutoscaler(t, f, func(c *Config) {
		c.NLBID, c.NLBServiceID = fakeNLB, fakeSvc
		c.AppPort = app.port
		c.DrainTimeout = 200 * time.Millisecond
	})
	signal(t, a, http.MethodPost, "/down", "", nil)
	if _, err := a.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if got := f.poolSize(); got != 1 {
		t.Errorf("pool size = %d, want 1", got)
	}
	if !strings.Contains(logs.String(), "member still in the NLB service, evicting anyway") {
		t.Errorf("log lacks the drain timeout:\n%s", logs)
	}
}

func TestShutdownDuringScale(t *testing.T) {
	f := newLocalCloud(t, 2)
	f.fail(routeOp, cloudtest.Fault{Delay: time.Hour}) // the operation never finishes
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.ShutdownTimeout = 300 * time.Millisecond })
	signal(t, a, http.MethodPost, "/up", "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.Tick(ctx)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for f.callCount(routeOp) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Tick succeeded although the operation never finished")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Tick took %s after cancel", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Tick did not return after cancel")
	}
	st := a.Status()
	if st.Decisions[0].Result != resultAborted || st.LastScale.IsZero() {
		t.Errorf("status = %+v, want aborted with last scale set (the request was sent)", st.Decisions[0])
	}
}

func TestRun(t *testing.T) {
	f := newLocalCloud(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.Listener = ln; c.Ticks = ticks })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	base := "http://" + ln.Addr().String()
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		req, _ := http.NewRequest(method, base+"/up", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /up = %d, want 200", method, resp.StatusCode)
		}
	}
	ticks <- time.Now()
	ticks <- time.Now() // the first tick is done once the second is received
	if got := f.poolSize(); got != 2 {
		t.Errorf("pool size = %d, want 2", got)
	}
	resp, err := http.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Pool.Size != 2 || len(st.Decisions) == 0 {
		t.Errorf("/status = %+v, %v; want pool size 2 and decisions", st, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunFailsOnWrongCredentials(t *testing.T) {
	f := newLocalCloud(t, 1)
	bad, err := exoclient.New(exoclient.Config{Key: "EXOwrong", Secret: "x", Endpoint: f.env.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.Cloud = bad; c.Listener = ln })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("Run = %v, want a forbidden error", err)
	}
	if ctx.Err() != nil {
		t.Error("Run waited for the context instead of failing at once")
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
