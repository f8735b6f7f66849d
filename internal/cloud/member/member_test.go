package member

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud/cgroup"
	"tidepool/internal/loopback"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain(os.Args[1:]))
	}
	if os.Getenv(helperCloud) != "" {
		os.Exit(cloudMain())
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		buildbin.Cleanup()
		os.Exit(code)
	}))
}

// syncBuffer collects member output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// randIP returns a random loopback address unlikely to collide with other
// packages' tests.
func randIP() netip.Addr { return loopback.Addr() }

func randID() string { return fmt.Sprintf("test-%08x", rand.Uint32()) }

// newRunner returns a Runner in a random cgroup parent. Command defaults to
// the helper program. At the end of the test it checks that the parent
// cgroup is gone.
func newRunner(t *testing.T, cfg RunnerConfig) (*Runner, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	if cfg.Command == nil {
		cfg.Command = []string{os.Args[0], "app"}
		cfg.Env = append(cfg.Env, helperEnv+"=1")
	}
	cfg.CgroupParent = "tidepool-test-" + strconv.Itoa(rand.IntN(1e9))
	cfg.Output = out
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("member output:\n%s", out)
		}
		for _, h := range []string{"cpu", "cpuacct", ""} {
			dir := filepath.Join(cgroup.DefaultRoot, h, cfg.CgroupParent)
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("cgroup parent %s left behind (stat err %v)", dir, err)
			}
		}
	})
	return r, out
}

// start starts a member and makes sure the test ends with it killed and
// cleaned up.
func start(t *testing.T, r *Runner, spec Spec) *Member {
	t.Helper()
	if spec.ID == "" {
		spec.ID = randID()
	}
	if !spec.IP.IsValid() {
		spec.IP = randIP()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Kill(); err != nil {
			t.Errorf("Kill in cleanup: %v", err)
		}
		assertGone(t, m)
	})
	return m
}

func ready(t *testing.T, m *Member) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Ready(ctx, "/health"); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

// procGone waits until pid no longer exists or is a zombie that nobody has
// reaped yet (orphans are reaped by this container's init at its leisure).
func procGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err == nil {
			if i := bytes.LastIndexByte(b, ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("process %d still alive: %s", pid, b)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertGone checks that a cleaned-up member left no process, cgroup or
// listener behind.
func assertGone(t *testing.T, m *Member) {
	t.Helper()
	select {
	case <-m.Done():
	default:
		t.Errorf("Done not closed after clean-up")
	}
	procGone(t, m.PID())
	if m.group != nil {
		for _, d := range m.group.Dirs() {
			if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("cgroup %s left behind (stat err %v)", d, err)
			}
		}
	}
	if c, err := net.DialTimeout("tcp", m.MetricsAddr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("metrics endpoint %v still accepting connections", m.MetricsAddr())
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func waitDone(t *testing.T, m *Member) {
	t.Helper()
	select {
	case <-m.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("%v: Done not closed", m)
	}
}

func signalOf(err error) (syscall.Signal, bool) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, false
	}
	ws := ee.Sys().(syscall.WaitStatus)
	return ws.Signal(), ws.Signaled()
}

func TestStartReadyStop(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{})
	m := start(t, r, Spec{CPUs: 0.5, AppPort: 18080, MetricsPort: 19100})
	ready(t, m)

	code, body := httpGet(t, "http://"+m.AppAddr().String()+"/")
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET / = %d %q (%v), want 200 JSON", code, body, err)
	}
	if got["instance"] != m.ID() || got["addr"] != m.AppAddr().String() {
		t.Errorf("member got --instance-id %q --listen %q, want %q %q", got["instance"], got["addr"], m.ID(), m.AppAddr())
	}
	if code, _ := httpGet(t, "http://"+m.MetricsAddr().String()+"/metrics"); code != 200 {
		t.Errorf("GET /metrics = %d, want 200", code)
	}
	if r.Mode() != cgroup.ModeNone {
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", m.PID()))
		if err != nil || !strings.Contains(string(cg), "/"+m.ID()+"\n") {
			t.Errorf("/proc/%d/cgroup = %q (%v), want the member's group %s", m.PID(), cg, err, m.ID())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := m.ExitErr(); err != nil {
		t.Errorf("ExitErr after graceful stop = %v, want nil (exit 0 on SIGTERM)", err)
	}
	assertGone(t, m)
	if err := m.Stop(ctx); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{Env: []string{helperIgnoreTerm + "=1"}})
	m := start(t, r, Spec{CPUs: 0.5})
	ready(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if sig, ok := signalOf(m.ExitErr()); !ok || sig != syscall.SIGKILL {
		t.Errorf("ExitErr = %v, want killed by SIGKILL", m.ExitErr())
	}
	assertGone(t, m)
}

func TestKillEndsWholeGroup(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{Env: []string{helperChild + "=1"}})
	m := start(t, r, Spec{CPUs: 0.5})
	ready(t, m)
	_, body := httpGet(t, "http://"+m.AppAddr().String()+"/child")
	child, err := strconv.Atoi(body)
	if err != nil || child <= 0 {
		t.Fatalf("GET /child = %q, want a pid", body)
	}
	if err := m.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if sig, ok := signalOf(m.ExitErr()); !ok || sig != syscall.SIGKILL {
		t.Errorf("ExitErr = %v, want killed by SIGKILL", m.ExitErr())
	}
	assertGone(t, m)
	procGone(t, child)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Errorf("Stop after Kill = %v, want nil", err)
	}
}

func TestCrashClosesDoneAndKeepsMetrics(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{Env: []string{helperChild + "=1"}})
	m := start(t, r, Spec{CPUs: 0.5})
	ready(t, m)
	_, body := httpGet(t, "http://"+m.AppAddr().String()+"/child")
	child, err := strconv.Atoi(body)
	if err != nil {
		t.Fatalf("GET /child = %q, want a pid", body)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if resp, err := c.Get("http://" + m.AppAddr().String() + "/exit?code=3"); err == nil {
		resp.Body.Close()
	}
	waitDone(t, m)
	var ee *exec.ExitError
	if !errors.As(m.ExitErr(), &ee) || ee.ExitCode() != 3 {
		t.Errorf("ExitErr = %v, want exit status 3", m.ExitErr())
	}
	procGone(t, child) // the app died: its stray child goes with it
	// The "VM" is still up: its node exporter answers.
	if code, _ := httpGet(t, "http://"+m.MetricsAddr().String()+"/metrics"); code != 200 {
		t.Errorf("GET /metrics after crash = %d, want 200", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("Stop after crash: %v", err)
	}
	assertGone(t, m)
}

func TestReadyFailsWhenMemberExits(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{Env: []string{helperExit + "=4"}})
	m := start(t, r, Spec{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := m.Ready(ctx, "health")
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready: exit status 4") {
		t.Fatalf("Ready of a member that exits = %v, want exited error with status 4", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Ready waited for the deadline instead of noticing the exit")
	}
}

func TestReadyTimesOut(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{})
	m := start(t, r, Spec{})
	ready(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := m.Ready(ctx, "/missing")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "404") {
		t.Errorf("Ready on a 404 path = %v, want deadline error naming the 404", err)
	}
}

func TestStartErrors(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := netip.MustParseAddrPort(busy.Addr().String())
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"empty id", Spec{IP: randIP()}, "invalid member id"},
		{"id with slash", Spec{ID: "a/b", IP: randIP()}, "invalid member id"},
		{"dot dot id", Spec{ID: "..", IP: randIP()}, "invalid member id"},
		{"no ip", Spec{ID: randID()}, "invalid member ip"},
		{"public ip", Spec{ID: randID(), IP: netip.MustParseAddr("192.0.2.1")}, "loopback"},
		{"negative cpus", Spec{ID: randID(), IP: randIP(), CPUs: -1}, "invalid member cpus"},
		{"same ports", Spec{ID: randID(), IP: randIP(), AppPort: 9100}, "both 9100"},
		{"metrics port in use", Spec{ID: randID(), IP: busyAddr.Addr(), MetricsPort: busyAddr.Port()}, "metrics listener"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := r.Start(context.Background(), tt.spec)
			if err == nil {
				m.Kill()
				t.Fatalf("Start(%+v) succeeded, want error containing %q", tt.spec, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Start(ctx, Spec{ID: randID(), IP: randIP()}); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestNewRunnerErrors(t *testing.T) {
	tests := []struct {
		name string
		cmd  []string
	}{
		{"no command", nil},
		{"empty program", []string{""}},
		{"missing program", []string{"/nonexistent/tidepool", "app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRunner(RunnerConfig{Command: tt.cmd}); err == nil {
				t.Errorf("NewRunner(%q) = nil error, want error", tt.cmd)
			}
		})
	}
}

func TestNoCgroupFallback(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{DisableCgroups: true, Env: []string{helperBurn + "=1"}})
	if r.Mode() != cgroup.ModeNone || !strings.Contains(r.Warning(), "without CPU limits") {
		t.Fatalf("Mode() = %v, Warning() = %q; want none with a warning", r.Mode(), r.Warning())
	}
	m := start(t, r, Spec{CPUs: 0.25})
	ready(t, m)
	waitCPU(t, m, 300*time.Millisecond)
	fams := scrape(t, m)
	if got := len(cpuSeries(t, fams)); got != 1 {
		t.Errorf("vCPUs exported for a 0.25-core member = %d, want 1", got)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	u1, s1, err := m.CPUUsage()
	if err != nil || u1+s1 < 300*time.Millisecond {
		t.Errorf("CPUUsage after exit = %v+%v, %v; want the last value (>= 300ms)", u1, s1, err)
	}
}

func TestUnlimitedLooksLikeWholeMachine(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{})
	m := start(t, r, Spec{CPUs: 0})
	ready(t, m)
	if got, want := len(cpuSeries(t, scrape(t, m))), runtime.NumCPU(); got != want {
		t.Errorf("vCPUs exported for an unlimited member = %d, want %d", got, want)
	}
}

// waitCPU polls until the member has used at least d of CPU.
func waitCPU(t *testing.T, m *Member, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, s, err := m.CPUUsage()
		if err != nil {
			t.Fatalf("CPUUsage: %v", err)
		}
		if u+s >= d {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("member used %v CPU in 30s, want %v", u+s, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func requireCgroups(t *testing.T, r *Runner) {
	t.Helper()
	if r.Mode() == cgroup.ModeNone {
		t.Skipf("no cgroup CPU limits on this machine: %s", r.Warning())
	}
}

// TestQuotaLimitsCPU runs a busy loop in a 0.2-core member: it must accrue
// about 0.2 s of CPU per wall second.
func TestQuotaLimitsCPU(t *testing.T) {
	r, _ := newRunner(t, RunnerConfig{Env: []string{helperBurn + "=1"}})
	requireCgroups(t, r)
	m := start(t, r, Spec{CPUs: 0.2})
	ready(t, m)
	u0, s0, err := m.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(2 * time.Second) // measuring a rate over wall time: nothing to await
	u1, s1, err := m.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	rate := (u1 + s1 - u0 - s0).Seconds() / time.Since(t0).Seconds()
	t.Logf("busy member limited to 0.2 cores used %.3f cores", rate)
	if rate < 0.05 || rate > 0.35 {
		t.Errorf("CPU rate = %.3f cores, want about 0.2 (0.05..0.35)", rate)
	}
}

func scrape(t *testing.T, m *Member) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, "http://"+m.MetricsAddr().String()+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, body)
	}
	return fams
}

// cpuSeries returns node_cpu_seconds_total as cpu -> mode -> value.
func cpuSeries(t *testing.T, fams map[string]*dto.MetricFamily) map[string]map[string]float64 {
	t.Helper()
	f := fams["node_cpu_seconds_total"]
	if f == nil || f.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("node_cpu_seconds_total missing or not a counter: %v", f)
	}
	out := map[string]map[string]float64{}
	for _, m := range f.GetMetric() {
		var cpu, mode string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "cpu":
				cpu = l.GetValue()
			case "mode":
				mode = l.GetValue()
			}
		}
		if out[cpu] == nil {
			out[cpu] = map[string]float64{}
		}
		out[cpu][mode] = m.GetCounter().GetValue()
	}
	for cpu, modes := range out {
		if len(modes) != len(cpuModes) {
			t.Errorf("cpu %s has modes %v, want all of %v", cpu, modes, cpuModes)
		}
	}
	return out
}

// busyAndTotal sums node_cpu_seconds_total over all vCPUs: non-idle and all
// modes.
func busyAndTotal(series map[string]map[string]float64) (busy, total float64) {
	for _, modes := range series {
		for mode, v := range modes {
			total += v
			if mode != "idle" {
				busy += v
			}
		}
	}
	return busy, total
}

// TestNodeMetricsTrackCgroupUsage checks that the standard node-exporter
// utilisation query over two scrapes equals the member's cgroup usage over
// its quota.
func TestNodeMetricsTrackCgroupUsage(t *testing.T) {
	tests := []struct {
		name      string
		burn      bool
		cpus      float64
		vcpus     int
		wantAbove float64 // utilisation lower bound
		wantBelow float64 // utilisation upper bound
	}{
		{"busy half core", true, 0.5, 1, 0.25, 1.1},            // about 1 on a quiet machine
		{"busy 1.5 cores, one thread", true, 1.5, 2, 0.1, 0.8}, // at most 1 of 1.5 cores; the machine is shared
		{"idle half core", false, 0.5, 1, 0, 0.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env []string
			if tt.burn {
				env = append(env, helperBurn+"=1")
			}
			r, _ := newRunner(t, RunnerConfig{Env: env})
			requireCgroups(t, r)
			m := start(t, r, Spec{CPUs: tt.cpus})
			ready(t, m)

			s0 := cpuSeries(t, scrape(t, m))
			u0, sys0, err := m.CPUUsage()
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second) // measuring a rate over wall time
			fams := scrape(t, m)
			s1 := cpuSeries(t, fams)
			u1, sys1, err := m.CPUUsage()
			if err != nil {
				t.Fatal(err)
			}
			if len(s1) != tt.vcpus {
				t.Errorf("vCPUs = %d, want %d", len(s1), tt.vcpus)
			}
			for cpu, modes := range s1 {
				for mode, v := range modes {
					if v < s0[cpu][mode] {
						t.Errorf("cpu %s mode %s went down: %v -> %v", cpu, mode, s0[cpu][mode], v)
					}
				}
			}
			b0, tot0 := busyAndTotal(s0)
			b1, tot1 := busyAndTotal(s1)
			util := (b1 - b0) / (tot1 - tot0)
			wall := (tot1 - tot0) / float64(tt.vcpus) // each vCPU's modes add up to wall time
			acct := (u1 + sys1 - u0 - sys0).Seconds() / (tt.cpus * wall)
			t.Logf("utilisation from node metrics %.3f, from cgroup accounting %.3f (wall %.2fs)", util, acct, wall)
			if util < tt.wantAbove || util > tt.wantBelow {
				t.Errorf("utilisation = %.3f, want in [%.2f, %.2f]", util, tt.wantAbove, tt.wantBelow)
			}
			if d := util - acct; d < -0.1 || d > 0.1 {
				t.Errorf("utilisation from metrics %.3f differs from accounting %.3f by more than 0.1", util, acct)
			}
			if f := fams["node_boot_time_seconds"]; f == nil ||
				f.GetMetric()[0].GetGauge().GetValue() != float64(m.StartTime().UnixNano())/1e9 {
				t.Errorf("node_boot_time_seconds = %v, want member start %v", f, m.StartTime())
			}
		})
	}
}

// TestRealApp runs real `tidepool app` members.
func TestRealApp(t *testing.T) {
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatalf("build tidepool: %v", err)
	}
	r, out := newRunner(t, RunnerConfig{
		Command: []string{bin, "app"},
		Env:     []string{"TIDEPOOL_APP_DRAIN=200ms", "TIDEPOOL_APP_WORK=1ms"},
	})
	m := start(t, r, Spec{CPUs: 0.5})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Ready(ctx, "/health"); err != nil {
		t.Fatalf("Ready: %v (member output: %s)", err, out.String())
	}
	code, body := httpGet(t, "http://"+m.AppAddr().String()+"/")
	var got struct{ Instance string }
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || got.Instance != m.ID() {
		t.Errorf("GET / = %d %q, want 200 JSON with instance %q", code, body, m.ID())
	}

	if r.Mode() != cgroup.ModeNone {
		// Load all CPUs for a while: the quota caps it at 0.5 cores and
		// the node metrics show the member saturated.
		s0 := cpuSeries(t, scrape(t, m))
		code, body := httpGet(t, "http://"+m.AppAddr().String()+"/load?seconds=2")
		if code != 200 {
			t.Fatalf("GET /load = %d %s", code, body)
		}
		s1 := cpuSeries(t, scrape(t, m))
		b0, tot0 := busyAndTotal(s0)
		b1, tot1 := busyAndTotal(s1)
		util := (b1 - b0) / (tot1 - tot0)
		t.Logf("utilisation of a loaded 0.5-core tidepool app: %.3f", util)
		if util < 0.3 || util > 1.1 {
			t.Errorf("utilisation under /load = %.3f, want about 1 (0.3..1.1 on a shared machine)", util)
		}
	}

	if err := m.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := m.ExitErr(); err != nil {
		t.Errorf("ExitErr after graceful stop = %v, want nil", err)
	}
	assertGone(t, m)
}

// TestMemberDiesWithRunner kills a "cloud" process (this test binary using a
// Runner) with SIGKILL: its member must not survive it.
func TestMemberDiesWithRunner(t *testing.T) {
	parent := "tidepool-test-" + strconv.Itoa(rand.IntN(1e9))
	id := randID()
	cloud := exec.Command(os.Args[0], "-test.run=^$")
	cloud.Env = append(os.Environ(), helperCloud+"="+parent, helperCloudID+"="+id, helperCloudIP+"="+randIP().String())
	cloud.Stderr = os.Stderr
	stdout, err := cloud.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cloud.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cloud.Process.Kill()
		cloud.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading member pid from the cloud: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("cloud printed %q, want a pid", line)
	}
	if err := cloud.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cloud.Wait()
	procGone(t, pid)

	// The dead cloud could not remove the member's cgroup: adopt and
	// remove it (adopting fails if a process were still in it).
	cg := cgroup.New(cgroup.Config{Parent: parent})
	if cg.Mode() == cgroup.ModeNone {
		return
	}
	// A multi-threaded process shows as a zombie while its other threads
	// still exit, and stays listed in the cgroup until they have.
	deadline := time.Now().Add(10 * time.Second)
	g, err := cg.Create(id, 0)
	for err != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		g, err = cg.Create(id, 0)
	}
	if err != nil {
		t.Fatalf("adopt the dead member's cgroup: %v", err)
	}
	if err := g.Remove(context.Background()); err != nil {
		t.Fatalf("remove the dead member's cgroup: %v", err)
	}
	for _, h := range []string{"cpu", "cpuacct"} {
		os.Remove(filepath.Join(cgroup.DefaultRoot, h, parent)) // the dead cloud created it
	}
}

// TestCommandExitsAtOnce starts a command that fails at once (false ignores
// the flags and exits 1): Start still returns a member, which is Done.
func TestCommandExitsAtOnce(t *testing.T) {
	for i := range 5 { // the exit may race with the move into the cgroup
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			r, _ := newRunner(t, RunnerConfig{Command: []string{"false"}})
			m := start(t, r, Spec{CPUs: 0.5})
			waitDone(t, m)
			var ee *exec.ExitError
			if !errors.As(m.ExitErr(), &ee) || ee.ExitCode() != 1 {
				t.Errorf("ExitErr = %v, want exit status 1", m.ExitErr())
			}
		})
	}
}
