package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"tidepool/internal/loadgen"
)

// rateSearch finds the highest sustained rate with few trials: it doubles
// the rate from start until a trial fails (or max passes), then bisects
// between the highest pass and the lowest failure until they are within
// precision of each other. If the very first trial fails it halves down.
// It is a pure state machine: next proposes, record learns.
type rateSearch struct {
	start, max float64
	precision  float64 // stop when hi-lo <= precision*hi
	maxTrials  int

	lo, hi float64 // highest passing, lowest failing rate; 0 = none yet
	trials int
}

// minSearchRate is the lowest rate the search tries.
const minSearchRate = 10

// next returns the rate of the next trial, or ok=false when the search is
// over (then lo is the answer; 0 if nothing passed).
func (s *rateSearch) next() (rate float64, ok bool) {
	if s.trials >= s.maxTrials {
		return 0, false
	}
	switch {
	case s.hi == 0 && s.lo == 0:
		return s.start, true
	case s.hi == 0:
		if s.lo >= s.max {
			return 0, false
		}
		return min(roundRate(2*s.lo), s.max), true
	case s.lo == 0:
		r := roundRate(s.hi / 2)
		if r < minSearchRate {
			return 0, false
		}
		return r, true
	case s.hi-s.lo <= s.precision*s.hi:
		return 0, false
	}
	r := roundRate((s.lo + s.hi) / 2)
	if r <= s.lo || r >= s.hi {
		return 0, false
	}
	return r, true
}

// record learns the outcome of a trial at rate.
func (s *rateSearch) record(rate float64, pass bool) {
	s.trials++
	if pass {
		s.lo = max(s.lo, rate)
		return
	}
	if s.hi == 0 || rate < s.hi {
		s.hi = rate
	}
}

// roundRate rounds r to 2 significant digits (12345 -> 12000), so reported
// rates are readable.
func roundRate(r float64) float64 {
	if r <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(r))-1)
	return math.Round(r/p) * p
}

// judgeTrial decides whether a search trial sustained its rate: fewer than
// 1% of the planned requests failed (not answered 2xx, or never sent) and
// the p99 latency, measured from the planned send time, is within limit (a
// queue that keeps growing fails here before it turns into timeouts). The
// reason says why, with the figures.
func judgeTrial(s loadgen.Summary, limit time.Duration) (pass bool, reason string) {
	if s.Planned == 0 {
		return false, "nothing planned"
	}
	bad := s.Sent - s.OK + s.Missed
	pct := 100 * float64(bad) / float64(s.Planned)
	switch {
	case pct >= 1:
		return false, fmt.Sprintf("%.2f%% errors (%s)", pct, errorList(s))
	case s.P99 > limit:
		return false, fmt.Sprintf("p99 %s > %s", roundDur(s.P99), limit)
	}
	return true, fmt.Sprintf("%.2f%% errors, p99 %s", pct, roundDur(s.P99))
}

// errorList formats the failures of s as "timeout=3 missed=2", sorted.
func errorList(s loadgen.Summary) string {
	var parts []string
	for k, n := range s.Errors {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	if s.Missed > 0 {
		parts = append(parts, fmt.Sprintf("missed=%d", s.Missed))
	}
	return strings.Join(parts, " ")
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
