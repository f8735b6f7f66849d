package bench

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"tidepool/internal/bench/haproxy"
)

// tinyConfig is a real but very short run: every part of the benchmark at a
// low rate, in a few seconds. The helper processes are this test binary
// (see TestMain).
func tinyConfig(t *testing.T) Config {
	t.Helper()
	bin, err := haproxy.Find()
	if err != nil {
		t.Skipf("haproxy not installed: %v", err)
	}
	return Config{
		Rates:          []float64{40},
		Duration:       400 * time.Millisecond,
		Window:         200 * time.Millisecond,
		SearchStart:    40,
		SearchMax:      80,
		SearchDuration: 300 * time.Millisecond,
		SearchTrials:   2,
		StallRate:      50,
		Stall:          200 * time.Millisecond,
		StallWorkers:   2,
		Backends:       2,
		HAProxy:        bin,
		TempDir:        t.TempDir(),
		Helper:         []string{os.Args[0]},
	}
}

// checkStopped asserts that every helper process is gone and HAProxy's
// temporary directory removed.
func checkStopped(t *testing.T, procs []Process, tempDir string) {
	t.Helper()
	var names []string
	for _, p := range procs {
		names = append(names, p.Name)
		if !p.Stopped || p.PID <= 0 {
			t.Errorf("process %+v: want stopped with a PID", p)
		}
		if err := syscall.Kill(p.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) after Run: kill(pid, 0) = %v; want ESRCH (gone)", p.Name, p.PID, err)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"backends", "haproxy", "nlb"}) {
		t.Errorf("processes %v; want backends, haproxy, nlb", names)
	}
	if left, err := os.ReadDir(tempDir); err != nil || len(left) > 0 {
		t.Errorf("left in the temp dir %s: %v (%v); want nothing", tempDir, left, err)
	}
}

// TestRunTiny runs the whole benchmark for real with tiny durations and
// checks the report's structure (not its timings, which depend on the
// machine) and that nothing is left running.
func TestRunTiny(t *testing.T) {
	cfg := tinyConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkStopped(t, rep.Processes, cfg.TempDir)

	if rep.Host.CPUs < 1 || rep.Host.HAProxy == "" || rep.ElapsedS <= 0 {
		t.Errorf("host %+v elapsed %g; want CPUs, the haproxy version and the elapsed time", rep.Host, rep.ElapsedS)
	}
	if len(rep.Proxy.Modes) != 2 || rep.Proxy.Modes[0].Conn != ConnNew || rep.Proxy.Modes[1].Conn != ConnReuse {
		t.Fatalf("proxy modes %+v; want new, reuse", rep.Proxy.Modes)
	}
	for _, m := range rep.Proxy.Modes {
		if len(m.Rates) != 1 || m.Rates[0].Rate != 40 {
			t.Fatalf("%s: rates %+v; want one at 40/s", m.Conn, m.Rates)
		}
		c := m.Rates[0]
		for name, tr := range map[string]TargetResult{"direct": c.Direct, "nlb": c.NLB, "haproxy": c.HAProxy} {
			// Two 200ms windows at 40/s: 8 requests each way, all through.
			if len(tr.Windows) != 2 || tr.Sent != 16 || tr.OK == 0 {
				t.Errorf("%s %s: %d windows, sent %d, ok %d; want 2 windows, 16 sent, some ok", m.Conn, name, len(tr.Windows), tr.Sent, tr.OK)
			}
		}
		for _, ex := range []Excess{c.ExcessP50, c.ExcessP99} {
			// Two rounds are too few to judge, whatever they show.
			if ex.Rounds != 2 || ex.Verdict != GoalWithinNoise || ex.LowMS > ex.HighMS {
				t.Errorf("%s: goal check %+v; want 2 rounds, within noise, low <= high", m.Conn, ex)
			}
		}
		if c.NLB.CPUUSPerReq < 0 || c.Direct.CPUUSPerReq != 0 {
			t.Errorf("%s: cpu per request nlb %g direct %g; want >= 0 and 0", m.Conn, c.NLB.CPUUSPerReq, c.Direct.CPUUSPerReq)
		}
	}
	m := rep.Proxy.MaxRate
	if m == nil || m.Conn != ConnNew {
		t.Fatalf("max rate %+v; want a search with new connections", m)
	}
	for name, s := range map[string]SearchResult{"direct": m.Direct, "nlb": m.NLB, "haproxy": m.HAProxy} {
		if len(s.Trials) < 1 || len(s.Trials) > 2 || s.Trials[0].Rate != 40 {
			t.Errorf("%s search trials %+v; want 1 or 2, starting at 40/s", name, s.Trials)
		}
	}
	if len(rep.Generator.Rates) != 2 || rep.Generator.Rates[0].Conn != ConnNew || rep.Generator.Rates[1].Conn != ConnReuse {
		t.Fatalf("generator rates %+v; want one per connection mode", rep.Generator.Rates)
	}
	for _, a := range rep.Generator.Rates {
		if a.Requested != 40 || a.Planned != 16 || a.Arrivals == 0 || a.Achieved <= 0 {
			t.Errorf("accuracy %+v; want 16 planned at 40/s, arrivals seen by the server", a)
		}
	}
	if len(rep.Generator.Stall) != 2 || rep.Generator.Stall[1].Workers != 2 {
		t.Fatalf("stall results %+v; want 2, the second with 2 workers", rep.Generator.Stall)
	}
	for _, s := range rep.Generator.Stall {
		if s.Sent+s.Missed != 40 || s.ExpectedMaxMS != 200 || s.DurationS != 0.8 {
			t.Errorf("stall %+v; want 40 planned (50/s for 4 stalls = 800ms), expected max 200ms", s)
		}
	}
	if len(rep.Goals) != 4 {
		t.Errorf("goals %+v; want 4 (latency per mode, rate, stall)", rep.Goals)
	}
	for _, g := range rep.Goals {
		if g.Status != GoalMet && g.Status != GoalNotMet && g.Status != GoalWithinNoise && g.Status != GoalNotMeasured {
			t.Errorf("goal %+v: unknown status", g)
		}
	}
}

// cancelOn is a slog handler that calls cancel at the first record with
// message msg: a way to interrupt Run at a known point without sleeping.
type cancelOn struct {
	msg    string
	cancel context.CancelFunc
	once   *sync.Once
}

func (h cancelOn) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOn) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(h.cancel)
	}
	return nil
}
func (h cancelOn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelOn) WithGroup(string) slog.Handler      { return h }

// TestRunInterrupted cancels Run after its first measurement: it must
// return the interruption, a partial report without goals, and have
// stopped every process it started.
func TestRunInterrupted(t *testing.T) {
	cfg := tinyConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	runCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	cfg.Logger = slog.New(cancelOn{msg: "proxy latency measured", cancel: interrupt, once: &sync.Once{}})
	rep, err := Run(runCtx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want an interruption (context.Canceled)", err)
	}
	if rep == nil {
		t.Fatal("no partial report")
	}
	if len(rep.Goals) != 0 || rep.Proxy.MaxRate != nil {
		t.Errorf("partial report has goals %v / a search %v; want neither", rep.Goals, rep.Proxy.MaxRate)
	}
	checkStopped(t, rep.Processes, cfg.TempDir)
}
