package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
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

// search finds the highest sustained rate of every target with connections
// opened as conn says, running the three searches in lockstep (one trial
// per target per round) so that disturbances hit them alike.
func (r *runner) search(ctx context.Context, conn string) (MaxRateReport, error) {
	targets := r.targets()
	states := make([]rateSearch, len(targets))
	results := make([]SearchResult, len(targets))
	for i := range states {
		states[i] = rateSearch{start: r.cfg.SearchStart, max: r.cfg.SearchMax, precision: r.cfg.SearchPrecision, maxTrials: r.cfg.SearchTrials}
	}
	for round := 0; ; round++ {
		active := false
		for j := range targets {
			i := (round + j) % len(targets)
			rt, ok := states[i].next()
			if !ok {
				continue
			}
			active = true
			if err := sleepCtx(ctx, settle); err != nil {
				return MaxRateReport{}, err
			}
			sum, err := r.load(ctx, conn, targets[i].url, rt, r.cfg.SearchDuration, r.cfg.SearchP99Limit, 0)
			if err != nil {
				return MaxRateReport{}, err
			}
			pass, reason := judgeTrial(sum, r.cfg.SearchP99Limit)
			states[i].record(rt, pass)
			bad := sum.Sent - sum.OK + sum.Missed
			results[i].Trials = append(results[i].Trials, Trial{
				Rate: rt, Pass: pass, Reason: reason, Sent: sum.Sent, OK: sum.OK, Missed: sum.Missed,
				ErrorPct: round3(100 * float64(bad) / float64(max(sum.Planned, 1))), P99MS: msOf(sum.P99)})
			r.log.Info("search trial", "conn", conn, "target", targets[i].name, "rate", rt, "pass", pass, "reason", reason)
		}
		if !active {
			break
		}
	}
	for i := range results {
		results[i].MaxRate, results[i].LowestFail = states[i].lo, states[i].hi
	}
	m := MaxRateReport{Conn: conn, Direct: results[0], NLB: results[1], HAProxy: results[2]}
	if h := m.HAProxy.MaxRate; h > 0 {
		m.NLBRatio, m.DirectRatio = round3(m.NLB.MaxRate/h), round3(m.Direct.MaxRate/h)
	}
	return m, nil
}

// call calls a control path of the backends helper and decodes the JSON
// answer into out (nil: discard it).
func (r *runner) call(ctx context.Context, method, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+r.env.backendAddrs[0]+path, nil)
	if err != nil {
		return fmt.Errorf("bench: control %s: %w", path, err)
	}
	resp, err := r.control.Do(req)
	if err != nil {
		return fmt.Errorf("bench: control %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("bench: control %s: status %d: %s", path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		err = json.NewDecoder(resp.Body).Decode(out)
	}
	if err != nil {
		return fmt.Errorf("bench: control %s: %w", path, err)
	}
	return nil
}
