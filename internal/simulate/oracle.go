package simulate

import (
	"cmp"
	"slices"
	"time"
)

// OracleName is the name of the oracle setup.
const OracleName = "oracle"

// Oracle returns the run of the oracle on tr: a controller that knows the
// whole demand in advance and is limited only by the boot delay, the
// physical limit of any policy.
//
// Think of the pool as levels: member k serves while the demand (within Min
// and Max) is at least k. The oracle launches each member BootDelay before
// its level is needed, so it serves exactly when needed, except that before
// BootDelay only the initial members can serve. Between two needs of a
// level it keeps the member when the gap is shorter than BootDelay +
// DrainDelay (releasing and relaunching would cost more, or be too late);
// otherwise it takes the member out of the load balancer the moment it is
// not needed and pays DrainDelay more for it.
//
// No policy can have less under-provisioning (θU): before BootDelay its
// supply is at most the initial size, after it at most Max, and the
// oracle's supply is at least the demand within those limits.
func Oracle(tr Trace, pool Pool, name string) Run {
	pool = pool.withDefaults()
	if name == "" {
		name = OracleName
	}
	boot, keep := pool.BootDelay, pool.BootDelay+pool.DrainDelay
	s0 := pool.initial(tr)
	demand := pool.DemandSeries(tr)
	top := pool.Clamp(demand.Max())
	var supply, paid []delta
	for level := 1; level <= top; level++ {
		// The intervals in which the level is needed.
		var need [][2]time.Duration
		for i, t := range demand.T {
			end := tr.End
			if i+1 < len(demand.T) {
				end = demand.T[i+1]
			}
			if pool.Clamp(demand.V[i]) < level {
				continue
			}
			if level > s0 {
				t = max(t, boot) // no new member serves before the boot delay
			}
			if t >= end {
				continue
			}
			if n := len(need); n > 0 && need[n-1][1] == t {
				need[n-1][1] = end
			} else {
				need = append(need, [2]time.Duration{t, end})
			}
		}
		initial := level <= s0
		if initial && (len(need) == 0 || need[0][0] > 0) {
			need = slices.Insert(need, 0, [2]time.Duration{0, 0}) // the member is there at the start
		}
		// Keep the member over short gaps.
		var serve [][2]time.Duration
		for _, iv := range need {
			if n := len(serve); n > 0 && iv[0]-serve[n-1][1] < keep {
				serve[n-1][1] = iv[1]
			} else {
				serve = append(serve, iv)
			}
		}
		for i, iv := range serve {
			if iv[1] > iv[0] {
				supply = append(supply, delta{iv[0], 1}, delta{iv[1], -1})
			}
			start := iv[0] - boot
			if i == 0 && initial {
				start = 0
			}
			end := iv[1] + pool.DrainDelay
			if iv[1] >= tr.End {
				end = tr.End
			}
			if end > start {
				paid = append(paid, delta{start, 1}, delta{end, -1})
			}
		}
	}
	run := Run{Setup: name, End: tr.End}
	run.Supply = sum(supply, tr.End)
	run.Size = sum(paid, tr.End)
	prev := s0
	for i, t := range run.Supply.T {
		if v := run.Supply.V[i]; v != prev {
			run.Actions = append(run.Actions, Action{T: t, From: prev, To: v})
			prev = v
		}
	}
	run.Requests, run.Dropped, run.Violated = replay(tr, pool, run.Supply)
	return run
}

// delta is a change of a count at a time.
type delta struct {
	at time.Duration
	n  int
}

// sum turns count changes into a step function over [0, end).
func sum(events []delta, end time.Duration) Series {
	slices.SortStableFunc(events, func(a, b delta) int { return cmp.Compare(a.at, b.at) })
	var s Series
	s.set(0, 0)
	v := 0
	for i, e := range events {
		v += e.n
		if e.at >= end {
			break
		}
		if i+1 < len(events) && events[i+1].at == e.at {
			continue
		}
		s.set(e.at, v)
	}
	return s
}

// replay runs the workload of tr on the given supply of serving members.
func replay(tr Trace, pool Pool, supply Series) (requests, dropped, violated float64) {
	w := workload{perReq: 1 / pool.Capacity, slo: pool.SLO, timeout: pool.Timeout.Seconds()}
	i, j := 0, 0 // next trace step, next supply change
	serving := 0
	for {
		t := tr.End
		if i < len(tr.Start) {
			t = min(t, tr.Start[i])
		}
		if j < len(supply.T) {
			t = min(t, supply.T[j])
		}
		w.advance(t, serving)
		if t >= tr.End {
			break
		}
		for i < len(tr.Start) && tr.Start[i] == t {
			w.rate = tr.Rate[i]
			i++
		}
		for j < len(supply.T) && supply.T[j] == t {
			serving = supply.V[j]
			j++
		}
	}
	return w.requests, w.dropped, w.violated
}
