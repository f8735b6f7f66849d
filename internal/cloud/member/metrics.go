package member

import (
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// cpuModes are the node exporter's node_cpu_seconds_total modes.
var cpuModes = []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}

// vcpuSeconds is what one vCPU of a member reports, in seconds.
type vcpuSeconds struct {
	User, System, Idle float64
}

// vcpuShape returns the vCPU count and the cores those vCPUs stand for: a
// quota of cpus cores looks like ceil(cpus) vCPUs; 0 (unlimited) looks like
// the machine's numCPU cores.
func vcpuShape(cpus float64, numCPU int) (vcpus int, cores float64) {
	if cpus <= 0 {
		numCPU = max(numCPU, 1)
		return numCPU, float64(numCPU)
	}
	return int(math.Ceil(cpus)), cpus
}

// perVCPU converts a member's CPU usage (user, system) over wall time since
// its start into the counters of each of its vCPUs, so that node-exporter
// utilisation queries measure usage against the quota:
//
//	sum(rate(non-idle)) / sum(rate(all)) = rate(user+system) / cores
//
// Every vCPU reports user/cores and system/cores, and idle makes up the rest
// of the wall time, so the modes of one vCPU add up to the wall time. Idle
// never decreases (prevIdle) and is never negative: CFS may let a group run
// ahead of its quota within a period, then idle pauses rather than going
// back.
func perVCPU(cores float64, wall, user, system time.Duration, prevIdle float64) vcpuSeconds {
	v := vcpuSeconds{User: user.Seconds() / cores, System: system.Seconds() / cores}
	v.Idle = max(wall.Seconds()-v.User-v.System, prevIdle, 0)
	return v
}

// usageFunc reads a member's cumulative CPU time.
type usageFunc func() (user, system time.Duration, err error)

// nodeCollector exposes node-exporter-compatible CPU metrics of one member.
type nodeCollector struct {
	start time.Time
	now   func() time.Time
	vcpus int
	cores float64
	usage usageFunc
	log   *slog.Logger
	cpu   *prometheus.Desc
	boot  *prometheus.Desc
	clock *prometheus.Desc
	quota *prometheus.Desc
	mu    sync.Mutex // guards idle
	idle  float64
}

var _ prometheus.Collector = (*nodeCollector)(nil)

func newNodeCollector(start time.Time, now func() time.Time, cpus float64, numCPU int, usage usageFunc, log *slog.Logger) *nodeCollector {
	vcpus, cores := vcpuShape(cpus, numCPU)
	c := &nodeCollector{
		start: start,
		now:   now,
		vcpus: vcpus,
		cores: cores,
		usage: usage,
		log:   log,
		cpu: prometheus.NewDesc("node_cpu_seconds_total",
			"Seconds the CPUs spent in each mode.", []string{"cpu", "mode"}, nil),
		boot: prometheus.NewDesc("node_boot_time_seconds",
			"Node boot time, in unixtime.", nil, nil),
		clock: prometheus.NewDesc("node_time_seconds",
			"System time in seconds since epoch (1970).", nil, nil),
		quota: prometheus.NewDesc("tidepool_member_cpu_quota_cores",
			"CPU quota of the member in cores; the vCPUs share it evenly.", nil, nil),
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.cpu
	ch <- c.boot
	ch <- c.clock
	ch <- c.quota
}

// Collect implements prometheus.Collector. A usage read error fails the
// scrape (better no sample than a wrong one).
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	user, system, err := c.usage()
	if err != nil {
		c.log.Warn("cannot read member cpu usage", "err", err)
		ch <- prometheus.NewInvalidMetric(c.cpu, err)
		return
	}
	now := c.now()
	c.mu.Lock()
	v := perVCPU(c.cores, now.Sub(c.start), user, system, c.idle)
	c.idle = v.Idle
	c.mu.Unlock()
	for i := range c.vcpus {
		cpu := strconv.Itoa(i)
		for _, mode := range cpuModes {
			var val float64
			switch mode {
			case "user":
				val = v.User
			case "system":
				val = v.System
			case "idle":
				val = v.Idle
			}
			ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, val, cpu, mode)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.boot, prometheus.GaugeValue, float64(c.start.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(c.clock, prometheus.GaugeValue, float64(now.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(c.quota, prometheus.GaugeValue, c.cores)
}
