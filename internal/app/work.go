package app

import (
	"context"
	"crypto/sha256"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time consumed so far by the calling OS thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Burn does real CPU-bound work (iterated SHA-256) until the calling goroutine's
// OS thread has consumed cost of CPU time, and returns the final digest so the
// work cannot be optimised away. The cost is CPU time, not wall time: under a
// CPU quota or contention the call takes longer but costs the same CPU, as a
// request on a busy VM does. It blocks the goroutine (pinned to its thread) for
// the duration; cost <= 0 returns at once. When ctx ends first, Burn stops
// and returns ctx's error.
func Burn(ctx context.Context, cost time.Duration) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if cost <= 0 {
		return sum, nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	if start == 0 {
		// No per-thread clock: fall back to wall time.
		deadline := time.Now().Add(cost)
		for time.Now().Before(deadline) {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
			sum = chain(sum, 500)
		}
		return sum, nil
	}
	for threadCPU()-start < cost {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		sum = chain(sum, 500)
	}
	return sum, nil
}

// chain hashes sum n times in a row.
func chain(sum [sha256.Size]byte, n int) [sha256.Size]byte {
	for i := 0; i < n; i++ {
		sum = sha256.Sum256(sum[:])
	}
	return sum
}
