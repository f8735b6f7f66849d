package simulate

import (
	"testing"
	"time"

	"tidepool/internal/loadgen"
)

// diurnal1000 is a 24-hour diurnal trace sampled every 10 s, with Poisson
// noise, whose demand peaks at 960 members (9,600 req/s at 10 req/s per
// member), for a pool of up to 1,000 members.
func diurnal1000(b *testing.B) (Trace, Pool) {
	b.Helper()
	tr, err := FromStages("diurnal-1000", []loadgen.Stage{
		{Kind: loadgen.KindSine, From: 5000, Amplitude: 4600, Period: 24 * time.Hour, Duration: 24 * time.Hour},
	}, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	return tr.Poisson("diurnal-1000-poisson", 42), Pool{Max: 1000, BootDelay: time.Minute, DrainDelay: 10 * time.Second, Timeout: 30 * time.Second}
}

// BenchmarkDiurnal1000 simulates the five standard policies (seed profile)
// on 24 hours of a pool of up to 1,000 members and measures them: one
// iteration is the whole comparison.
func BenchmarkDiurnal1000(b *testing.B) {
	tr, pool := diurnal1000(b)
	setups := Standard(Options{Limits: pool.Limits()})
	var r Result
	for b.Loop() {
		var err error
		if r, err = Compare(tr, pool, setups); err != nil {
			b.Fatal(err)
		}
	}
	peak := 0
	for _, run := range r.Runs {
		peak = max(peak, run.Size.Max())
	}
	if peak < 900 {
		b.Fatalf("peak pool size %d, want the trace to take the pool near 1,000", peak)
	}
	b.ReportMetric(float64(peak), "peak-members")
}

// BenchmarkDiurnal1000PerPolicy is BenchmarkDiurnal1000 for one policy at
// a time.
func BenchmarkDiurnal1000PerPolicy(b *testing.B) {
	tr, pool := diurnal1000(b)
	for _, s := range Standard(Options{Limits: pool.Limits()}) {
		b.Run(s.Name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Simulate(tr, pool, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
