package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"time"

	"tidepool/internal/loadgen"
)

// arrivalStats is what the server saw of one generator run.
type arrivalStats struct {
	Arrivals int
	// Achieved is the arrival rate at the server: the arrivals within the
	// run's window, [start, start+duration) shifted by the smallest timing
	// error (the transfer time), divided by the duration. Requests that
	// never arrive, or late enough to miss the window, count against it.
	Achieved float64
	// ErrorPct is 100*(Achieved/requested - 1).
	ErrorPct float64
	// WorstSecondPct is the largest |deviation| in percent of the arrivals
	// in any whole second of that window from the requested rate.
	WorstSecondPct float64
	// Timing error: the i-th arrival minus the i-th planned send time
	// (both sorted), i.e. the generator's lateness plus the transfer to the
	// server and the server's own delay in reading the request. When
	// requests are missing the pairing shifts and overstates it.
	TimingP50, TimingP99, TimingMax time.Duration
}

// arrivalAccuracy compares the arrival times at the server (Unix ns, any
// order) with the planned send offsets (non-decreasing) of a run of the
// given duration started at started (Unix ns) at a constant requested rate.
func arrivalAccuracy(requested float64, duration time.Duration, started int64, planned []time.Duration, arrivals []int64) arrivalStats {
	a := slices.Clone(arrivals)
	slices.Sort(a)
	st := arrivalStats{Arrivals: len(a)}
	n := min(len(a), len(planned))
	errs := make([]time.Duration, n)
	for i := range n {
		errs[i] = time.Duration(a[i]-started) - planned[i]
	}
	slices.Sort(errs)
	st.TimingP50, st.TimingP99 = loadgen.Quantile(errs, 0.50), loadgen.Quantile(errs, 0.99)
	if n > 0 {
		st.TimingMax = errs[n-1]
	}
	if requested <= 0 || duration <= 0 {
		return st
	}

	var transfer time.Duration
	if n > 0 {
		transfer = max(errs[0], 0)
	}
	origin := started + int64(transfer)
	end := origin + int64(duration)
	seconds := int(duration / time.Second)
	counts := make([]int, seconds)
	inWindow := 0
	for _, t := range a {
		if t < origin || t >= end {
			continue
		}
		inWindow++
		if s := int((t - origin) / int64(time.Second)); s < seconds {
			counts[s]++
		}
	}
	st.Achieved = float64(inWindow) / duration.Seconds()
	st.ErrorPct = 100 * (st.Achieved/requested - 1)
	for _, c := range counts {
		st.WorstSecondPct = max(st.WorstSecondPct, math.Abs(100*(float64(c)/requested-1)))
	}
	return st
}

// stallQuantile is the latency quantile q expected when a server that
// otherwise answers in base stalls for stall during a run of length d at a
// constant rate, from a generator without coordinated omission: the requests
// planned during the stall (a fraction stall/d of all) wait for its end, so
// their latencies are spread evenly over (0, stall]. The fraction of
// requests slower than L is (stall-L)/d, hence L = stall - (1-q)*d, or base
// when that is smaller.
func stallQuantile(q float64, stall, d, base time.Duration) time.Duration {
	below := time.Duration(math.Round((1-q)*float64(d)/1e3)) * time.Microsecond
	return max(stall-below, base)
}

// median of vs (mean of the middle two for an even count; 0 if empty). It
// sorts a copy: vs is not changed.
func median[T ~int64 | ~float64](vs []T) T {
	n := len(vs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// accuracy runs the generator at each rate against one backend directly,
// with connections opened as conn says, and compares what arrived at the
// server with the schedule.
func (r *runner) accuracy(ctx context.Context, conn string) ([]Accuracy, error) {
	var out []Accuracy
	url := "http://" + r.env.backendAddrs[0] + "/"
	self := os.Getpid()
	for _, rt := range r.cfg.Rates {
		stages := []loadgen.Stage{{Kind: loadgen.KindHold, From: rt, Duration: r.cfg.Duration}}
		sched, err := loadgen.NewSchedule(stages)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		planned := make([]time.Duration, 0, sched.Requests())
		for k := uint64(0); ; k++ {
			p, ok := sched.PlannedAt(k)
			if !ok {
				break
			}
			planned = append(planned, p)
		}
		if err := r.call(ctx, http.MethodPost, "/_bench/record", nil); err != nil {
			return nil, err
		}
		cpu0, _ := cpuTime(self)
		sum, err := r.load(ctx, conn, url, rt, r.cfg.Duration, fixedTimeout, 0)
		if err != nil {
			return nil, err
		}
		cpu1, _ := cpuTime(self)
		var arrivals []int64
		if err := r.call(ctx, http.MethodGet, "/_bench/arrivals", &arrivals); err != nil {
			return nil, err
		}
		st := arrivalAccuracy(rt, r.cfg.Duration, sum.Started.UnixNano(), planned, arrivals)
		a := Accuracy{
			Conn: conn, Requested: rt, Planned: len(planned), Arrivals: st.Arrivals, Achieved: round3(st.Achieved),
			ErrorPct: round3(st.ErrorPct), WorstSecondPct: round3(st.WorstSecondPct),
			TimingP50MS: msOf(st.TimingP50), TimingP99MS: msOf(st.TimingP99), TimingMaxMS: msOf(st.TimingMax),
			Late: sum.Late, Missed: sum.Missed, Errors: sum.Sent - sum.OK,
			LatencyP50MS: msOf(sum.P50), LatencyP99MS: msOf(sum.P99),
		}
		if sum.Sent > 0 {
			a.CPUUSPerReq = round3(float64((cpu1 - cpu0).Microseconds()) / float64(sum.Sent))
		}
		r.log.Info("generator accuracy measured", "conn", conn, "requested", rt, "achieved", a.Achieved, "error_pct", a.ErrorPct,
			"timing_p99_ms", a.TimingP99MS, "late", a.Late, "missed", a.Missed)
		out = append(out, a)
	}
	return out, nil
}

// stall runs the stall test twice: with the default worker limit (every
// stalled request has a worker: nothing late) and with few workers (the
// requests planned during the stall wait for a worker and are sent late;
// their latency still counts from the planned time).
func (r *runner) stall(ctx context.Context, conn string) ([]StallResult, error) {
	url := "http://" + r.env.backendAddrs[0] + "/"
	// The stall is a quarter of the run, whatever Duration is: the
	// requests planned during it are then the slowest 25 %, which puts
	// both p90 and p99 inside the stall.
	d := (4 * r.cfg.Stall).Round(time.Millisecond)
	var out []StallResult
	for _, workers := range []int{loadgen.DefaultMaxWorkers, r.cfg.StallWorkers} {
		// Start the stall in the middle of the run.
		stallErr := make(chan error, 1)
		t := time.AfterFunc((d-r.cfg.Stall)/2, func() {
			stallErr <- r.call(ctx, http.MethodPost, "/_bench/stall?for="+r.cfg.Stall.String(), nil)
		})
		sum, err := r.load(ctx, conn, url, r.cfg.StallRate, d, r.cfg.Stall+fixedTimeout, workers)
		if !t.Stop() {
			if serr := <-stallErr; serr != nil && err == nil {
				err = serr
			}
		} else if err == nil {
			err = errors.New("bench: the run ended before the stall was injected")
		}
		if err != nil {
			return nil, err
		}
		s := StallResult{
			Conn: conn, Rate: r.cfg.StallRate, DurationS: d.Seconds(), StallMS: msOf(r.cfg.Stall), Workers: workers,
			Sent: sum.Sent, OK: sum.OK, Late: sum.Late, Missed: sum.Missed,
			P50MS: msOf(sum.P50), P90MS: msOf(sum.P90), P99MS: msOf(sum.P99), MaxMS: msOf(sum.Max),
			ExpectedP90MS: msOf(stallQuantile(0.90, r.cfg.Stall, d, 0)),
			ExpectedP99MS: msOf(stallQuantile(0.99, r.cfg.Stall, d, 0)),
			ExpectedMaxMS: msOf(r.cfg.Stall),
		}
		s.Shows = s.P99MS >= 0.8*s.ExpectedP99MS && s.MaxMS >= 0.9*s.ExpectedMaxMS
		r.log.Info("stall test measured", "workers", workers, "late", s.Late, "p99_ms", s.P99MS,
			"expected_p99_ms", s.ExpectedP99MS, "max_ms", s.MaxMS, "shows", s.Shows)
		out = append(out, s)
	}
	return out, nil
}
