package simulate

import "time"

// Elasticity holds the elasticity metrics of the SPEC Research Group (Herbst
// et al., "Elasticity in Cloud Computing: What It Is, and What It Is Not",
// ICAC 2013; "Ready for Rain?", ACM TOMPECS 2018) for one run, over the
// trace's length T, with demand d(t) (fewest members keeping the
// utilisation at or below the SLO) and supply s(t) (members serving):
//
//	θU = (1/T) ∫ (d−s)⁺ dt   θO = (1/T) ∫ (s−d)⁺ dt   (members)
//	τU = (100/T) ∫ [s<d] dt   τO = (100/T) ∫ [s>d] dt  (% of time)
//	jitter = (supply changes − demand changes) / T      (per minute)
//
// A negative jitter means the supply adapts less often than the demand
// changes (inert), a positive one that it oscillates.
type Elasticity struct {
	ThetaU, ThetaO float64
	TauU, TauO     float64
	Jitter         float64
	// Adaptations is the number of supply changes.
	Adaptations int
	// InstanceHours is the members paid for (any state) integrated over
	// time, in hours.
	InstanceHours float64
	// SLOViolation is the percentage of time the members' utilisation was
	// above the SLO (queued work counts as 100 %).
	SLOViolation float64
	// Dropped is the percentage of requests dropped (waited longer than
	// the pool's Timeout).
	Dropped float64
}

// Measure computes the supply-versus-demand metrics (θ, τ, jitter,
// adaptations) over [0, end) exactly, from the two step functions.
func Measure(demand, supply Series, end time.Duration) Elasticity {
	var e Elasticity
	T := end.Seconds()
	if T <= 0 {
		return e
	}
	i, j := 0, 0
	d, s := demand.At(0), supply.At(0)
	t := time.Duration(0)
	for t < end {
		for i < len(demand.T) && demand.T[i] <= t {
			d = demand.V[i]
			i++
		}
		for j < len(supply.T) && supply.T[j] <= t {
			s = supply.V[j]
			j++
		}
		next := end
		if i < len(demand.T) {
			next = min(next, demand.T[i])
		}
		if j < len(supply.T) {
			next = min(next, supply.T[j])
		}
		dt := (next - t).Seconds()
		switch {
		case d > s:
			e.ThetaU += float64(d-s) * dt
			e.TauU += dt
		case s > d:
			e.ThetaO += float64(s-d) * dt
			e.TauO += dt
		}
		t = next
	}
	e.ThetaU /= T
	e.ThetaO /= T
	e.TauU *= 100 / T
	e.TauO *= 100 / T
	e.Adaptations = changesBefore(supply, end)
	e.Jitter = float64(e.Adaptations-changesBefore(demand, end)) / (T / 60)
	return e
}

// changesBefore counts the value changes of s in (0, end).
func changesBefore(s Series, end time.Duration) int {
	n := 0
	for i := 1; i < len(s.T); i++ {
		if s.T[i] > 0 && s.T[i] < end {
			n++
		}
	}
	return n
}

// Evaluate returns all metrics of run against the demand of its trace.
func Evaluate(run Run, demand Series) Elasticity {
	e := Measure(demand, run.Supply, run.End)
	e.InstanceHours = run.Size.Integral(run.End) / 3600
	if T := run.End.Seconds(); T > 0 {
		e.SLOViolation = 100 * run.Violated / T
	}
	if run.Requests > 0 {
		e.Dropped = 100 * run.Dropped / run.Requests
	}
	return e
}
