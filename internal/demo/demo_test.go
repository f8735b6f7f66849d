package demo

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"tidepool/internal/buildbin"
	"tidepool/internal/loadgen"
	"tidepool/internal/report"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { buildbin.Cleanup() }))
}

// TestDemoEndToEnd runs the demo as `tidepool demo` does: the fast profile,
// the default load scenario and pool bounds, and the default relative
// output directory, from a fresh working directory. Real member processes,
// load balancer, Prometheus, Alertmanager, discover agent and autoscaler.
// It must print the same verdict the command requires (demo.Shown: the pool
// grew to at least 3, shrank back to the minimum, no request failed), leave
// the report under ./demo-out, and leave nothing running. Only the loopback
// ranges, the cgroup and the member binary differ from the command's, so
// that it runs beside other tests.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo takes about four minutes")
	}
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	a, b := 100+rand.IntN(151), rand.IntN(128)*2
	memberNet := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), byte(b), 0}), 24)
	nlbNet := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), byte(b + 1), 0}), 24)
	cgroup := fmt.Sprintf("tidepool-demotest-%d", rand.IntN(1e6))
	wd := t.TempDir()
	t.Chdir(wd)
	out := filepath.Join(wd, DefaultOutDir)
	var progress bytes.Buffer
	cfg := Config{
		AppCommand:   []string{bin, "app"},
		MemberNet:    memberNet,
		NLBNet:       nlbNet,
		CgroupParent: cgroup,
		Out:          &progress,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	t.Logf("demo output:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if !Shown(res, cfg.MinSize) {
		t.Errorf("%s", Verdict(res, cfg.MinSize))
	}
	if want := filepath.Join(out, "report.html"); res.HTMLPath != want {
		t.Errorf("report at %s, want %s (the default output under the working directory)", res.HTMLPath, want)
	}
	if res.Load.Sent == 0 {
		t.Fatal("no request sent")
	}
	if res.Load.Missed != 0 {
		t.Errorf("%d requests missed (errors %v), want 0", res.Load.Missed, res.Load.Errors)
	}
	var outs, ins int
	for _, e := range res.Events {
		switch e.Kind {
		case report.KindScaleOut:
			outs++
		case report.KindScaleIn:
			ins++
		}
	}
	if outs == 0 || ins == 0 {
		t.Errorf("events: %d scale-outs, %d scale-ins; want both", outs, ins)
	}
	// The scale-outs came from Prometheus' alert, delivered by Alertmanager
	// to the autoscaler's /up webhook.
	for _, e := range res.Events {
		if e.Kind == report.KindScaleOut && !strings.Contains(e.Reason, "scale-up signal") {
			t.Errorf("scale-out at %s: reason %q, want a scale-up signal from the alert webhook", e.T, e.Reason)
		}
	}
	if !strings.Contains(progress.String(), "offered") || !strings.Contains(progress.String(), "pool") {
		t.Errorf("no progress lines in the output")
	}

	// Every Grafana dashboard and alert expression returned data from the
	// live Prometheus scraping the real members.
	if len(res.Queries) < 5 {
		t.Errorf("only %d Grafana expressions checked, want the dashboard's and the alert rules'", len(res.Queries))
	}
	for _, q := range res.Queries {
		if q.Err != "" || q.Series == 0 {
			t.Errorf("%s: %q returned %d series (err %q), want data", q.Where, q.Expr, q.Series, q.Err)
		}
	}

	// Report files hold the series.
	html, err := os.ReadFile(res.HTMLPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "Pool size", "CPU utilisation", "Latency", "scale-out"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	f, err := os.Open(res.PNGPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() < 800 {
		t.Errorf("report.png: %v (bounds %v)", err, img)
	}
	csv, err := os.ReadFile(filepath.Join(out, "load.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(string(csv), "\n"); rows < 120 {
		t.Errorf("load.csv has %d lines, want one per second of load", rows)
	}
	var withCPU int
	for _, s := range res.Samples {
		if s.AvgCPU == s.AvgCPU && len(s.CPU) > 0 { // not NaN
			withCPU++
		}
	}
	if withCPU < len(res.Samples)/2 {
		t.Errorf("only %d of %d samples have CPU data from Prometheus", withCPU, len(res.Samples))
	}

	// Nothing left running.
	if left := processesMatching(func(args []string) bool {
		for _, a := range args {
			if strings.Contains(a, out) {
				return true // prometheus / alertmanager of this run
			}
			if ap, err := netip.ParseAddrPort(a); err == nil && memberNet.Contains(ap.Addr()) {
				return true // a member
			}
		}
		return false
	}); len(left) > 0 {
		t.Errorf("processes left after the demo: %v", left)
	}
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"} {
		if _, err := os.Stat(filepath.Join(root, cgroup)); err == nil {
			t.Errorf("cgroup %s left after the demo", filepath.Join(root, cgroup))
		}
	}
}

// processesMatching returns the live (non-zombie) processes whose argv
// matches.
func processesMatching(match func(args []string) bool) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		if _, err := strconv.Atoi(ent.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if match(args) {
			out = append(out, ent.Name()+": "+strings.Join(args, " "))
		}
	}
	return out
}

func TestProgressLine(t *testing.T) {
	nan := report.Sample{PoolSize: -1, RunningSize: -1, AvgCPU: nanValue()}
	tests := []struct {
		load, pool report.Sample
		failed     int
		want       []string
	}{
		{report.Sample{OfferedRPS: 12.5, P95: 42 * time.Millisecond}, report.Sample{PoolSize: 3, RunningSize: 2, AvgCPU: 0.81}, 0,
			[]string{"12.5 req/s", "3 (2 running)", "81%", "42ms", "errors 0"}},
		{report.Sample{}, nan, 7, []string{"pool ?", "n/a", "errors 7"}},
	}
	for _, tt := range tests {
		got := progressLine(65*time.Second, tt.load, tt.pool, tt.failed)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("progressLine = %q, want it to contain %q", got, w)
			}
		}
	}
}

func TestVerdict(t *testing.T) {
	ok := Result{PeakPool: 4, FinalPool: 1, Load: loadgen.Summary{Sent: 10, OK: 10}}
	if v := Verdict(ok, 1); !strings.HasPrefix(v, "autoscaling OK") {
		t.Errorf("Verdict(good run) = %q", v)
	}
	for _, bad := range []Result{
		{PeakPool: 2, FinalPool: 1, Load: loadgen.Summary{Sent: 10, OK: 10}},
		{PeakPool: 4, FinalPool: 2, Load: loadgen.Summary{Sent: 10, OK: 10}},
		{PeakPool: 4, FinalPool: 1, Load: loadgen.Summary{Sent: 10, OK: 9}},
	} {
		if v := Verdict(bad, 1); !strings.HasPrefix(v, "autoscaling NOT SHOWN") {
			t.Errorf("Verdict(%+v) = %q, want NOT SHOWN", bad, v)
		}
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestPlanAddrsAvoidsBusyAddresses(t *testing.T) {
	p := planAddrs(DefaultServicePort)
	// Occupy the chosen member metrics address: the next plan must differ.
	ln, err := net.Listen("tcp", netip.AddrPortFrom(p.memberNet.Addr().Next().Next(), p.metricsPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	q := planAddrs(DefaultServicePort)
	if q.memberNet == p.memberNet && q.metricsPort == p.metricsPort {
		t.Errorf("planAddrs with %s:%d busy chose it again: %+v", p.memberNet, p.metricsPort, q)
	}
	if !q.memberNet.Addr().Is4() || q.memberNet.Addr().As4()[0] != 127 || q.memberNet.Bits() != 24 {
		t.Errorf("member range %s, want a loopback /24", q.memberNet)
	}
}
