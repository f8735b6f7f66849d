package app

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// processCPU returns the CPU time used by this process so far.
func processCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBurn shows that the CPU a request costs scales with the configured
// work: the reported cpu-ms/op follows the sub-benchmark's cost.
func BenchmarkBurn(b *testing.B) {
	for _, cost := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
		b.Run(cost.String(), func(b *testing.B) {
			before := processCPU(b)
			for i := 0; i < b.N; i++ {
				Burn(context.Background(), cost)
			}
			used := processCPU(b) - before
			b.ReportMetric(float64(used)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}
