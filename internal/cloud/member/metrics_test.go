package member

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func TestVCPUShape(t *testing.T) {
	tests := []struct {
		cpus      float64
		numCPU    int
		wantVCPUs int
		wantCores float64
	}{
		{0.25, 2, 1, 0.25},
		{1, 2, 1, 1},
		{1.5, 2, 2, 1.5},
		{4, 2, 4, 4}, // a quota above the machine still looks like its VM
		{0, 8, 8, 8},
		{0, 0, 1, 1},
	}
	for _, tt := range tests {
		vcpus, cores := vcpuShape(tt.cpus, tt.numCPU)
		if vcpus != tt.wantVCPUs || cores != tt.wantCores {
			t.Errorf("vcpuShape(%v, %d) = %d, %v; want %d, %v", tt.cpus, tt.numCPU, vcpus, cores, tt.wantVCPUs, tt.wantCores)
		}
	}
}

func TestPerVCPU(t *testing.T) {
	s := time.Second
	tests := []struct {
		name         string
		cores        float64
		wall         time.Duration
		user, system time.Duration
		prevIdle     float64
		want         vcpuSeconds
	}{
		{"idle", 0.5, 10 * s, 0, 0, 0, vcpuSeconds{0, 0, 10}},
		{"quota fully used", 0.5, 10 * s, 4 * s, 1 * s, 0, vcpuSeconds{8, 2, 0}},
		{"quarter used", 0.25, 8 * s, 500 * time.Millisecond, 0, 0, vcpuSeconds{2, 0, 6}},
		{"1.5 cores on 2 vCPUs", 1.5, 10 * s, 6 * s, 0, 0, vcpuSeconds{4, 0, 6}},
		{"ahead of quota: idle clamped at 0", 0.2, 10 * time.Millisecond, 20 * time.Millisecond, 0, 0, vcpuSeconds{0.1, 0, 0}},
		{"idle never decreases", 0.5, 10 * s, 4 * s, 0, 3, vcpuSeconds{8, 0, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := perVCPU(tt.cores, tt.wall, tt.user, tt.system, tt.prevIdle)
			if !near(got.User, tt.want.User) || !near(got.System, tt.want.System) || !near(got.Idle, tt.want.Idle) {
				t.Errorf("perVCPU = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestNodeCollector drives the collector with a fake clock and usage: the
// node-exporter utilisation between two scrapes is usage / (cores * wall).
func TestNodeCollector(t *testing.T) {
	start := time.Unix(1700000000, 0)
	now := start.Add(10 * time.Second)
	user, system := 3*time.Second, 1500*time.Millisecond
	var usageErr error
	c := newNodeCollector(start, func() time.Time { return now }, 1.5, 2,
		func() (time.Duration, time.Duration, error) { return user, system, usageErr }, slog.New(slog.DiscardHandler))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	want := `# HELP node_boot_time_seconds Node boot time, in unixtime.
# TYPE node_boot_time_seconds gauge
node_boot_time_seconds 1.7e+09
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 7
node_cpu_seconds_total{cpu="0",mode="iowait"} 0
node_cpu_seconds_total{cpu="0",mode="irq"} 0
node_cpu_seconds_total{cpu="0",mode="nice"} 0
node_cpu_seconds_total{cpu="0",mode="softirq"} 0
node_cpu_seconds_total{cpu="0",mode="steal"} 0
node_cpu_seconds_total{cpu="0",mode="system"} 1
node_cpu_seconds_total{cpu="0",mode="user"} 2
node_cpu_seconds_total{cpu="1",mode="idle"} 7
node_cpu_seconds_total{cpu="1",mode="iowait"} 0
node_cpu_seconds_total{cpu="1",mode="irq"} 0
node_cpu_seconds_total{cpu="1",mode="nice"} 0
node_cpu_seconds_total{cpu="1",mode="softirq"} 0
node_cpu_seconds_total{cpu="1",mode="steal"} 0
node_cpu_seconds_total{cpu="1",mode="system"} 1
node_cpu_seconds_total{cpu="1",mode="user"} 2
# HELP node_time_seconds System time in seconds since epoch (1970).
# TYPE node_time_seconds gauge
node_time_seconds 1.70000001e+09
# HELP tidepool_member_cpu_quota_cores CPU quota of the member in cores; the vCPUs share it evenly.
# TYPE tidepool_member_cpu_quota_cores gauge
tidepool_member_cpu_quota_cores 1.5
`
	if got := gatherText(t, reg); got != want {
		t.Fatalf("exposition:\n%s\nwant:\n%s", got, want)
	}

	// 10 s later the member used 1.2 more CPU seconds of its 1.5 cores:
	// utilisation 1.2 / (1.5 * 10) = 0.08.
	busy0, total0 := gatherBusyTotal(t, reg)
	now = now.Add(10 * time.Second)
	user += 1200 * time.Millisecond
	busy1, total1 := gatherBusyTotal(t, reg)
	if got := (busy1 - busy0) / (total1 - total0); !near(got, 0.08) {
		t.Errorf("utilisation = %v, want 0.08", got)
	}
	if !near(total1-total0, 2*10) {
		t.Errorf("all modes of 2 vCPUs grew by %v over 10s, want 20", total1-total0)
	}

	usageErr = errors.New("cgroup gone")
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "cgroup gone") {
		t.Errorf("Gather with a usage error = %v, want the error", err)
	}
}

func gatherBusyTotal(t *testing.T, reg *prometheus.Registry) (busy, total float64) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "node_cpu_seconds_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			total += v
			for _, l := range m.GetLabel() {
				if l.GetName() == "mode" && l.GetValue() != "idle" {
					busy += v
				}
			}
		}
	}
	return busy, total
}

// gatherText renders the registry in the text exposition format.
func gatherText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
