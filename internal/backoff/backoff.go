// Package backoff owns the one exponential retry schedule of tidepool (the
// wait doubles from a first delay up to a cap); it is pure arithmetic and
// must not import anything of tidepool, nor start timers.
package backoff

import "time"

// Delay returns the wait after the n-th consecutive failure: first,
// 2·first, 4·first, ... capped at limit (it never overflows). n <= 0 (no
// failure yet) returns 0; a limit below first returns limit.
func Delay(n int, first, limit time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	d := first
	for i := 1; i < n && d < limit; i++ {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}
