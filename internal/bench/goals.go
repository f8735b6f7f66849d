// The goal checks: each measured figure against the goal the report states.

package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// evaluateGoals checks the report against the goals: one goal for
// the NLB's added latency per connection mode, one for the generator's
// rate accuracy (all modes), one for the stall test.
func evaluateGoals(rep *Report, cfg Config) []Goal {
	var goals []Goal
	for _, m := range rep.Proxy.Modes {
		goals = append(goals, overheadGoal(m))
	}

	g := Goal{Name: fmt.Sprintf("generator within ±%g%% of the requested rate up to %d req/s", GoalRatePct, GoalRateMax)}
	var parts, fails []string
	for _, a := range rep.Generator.Rates {
		if a.Requested > GoalRateMax {
			continue
		}
		desc := fmt.Sprintf("%s %s/s %+.2f%%", a.Conn, rate(a.Requested), a.ErrorPct)
		parts = append(parts, desc)
		if math.Abs(a.ErrorPct) > GoalRatePct {
			fails = append(fails, desc)
		}
	}
	switch {
	case len(parts) == 0:
		g.Status, g.Detail = GoalNotMeasured, fmt.Sprintf("no rate <= %d req/s measured", GoalRateMax)
	case len(fails) > 0:
		g.Status, g.Detail = GoalNotMet, "off at "+strings.Join(fails, "; ")
	default:
		g.Status, g.Detail = GoalMet, strings.Join(parts, "; ")
		if top := slices.Max(cfg.Rates); top < GoalRateMax {
			g.Detail += fmt.Sprintf(" (only measured up to %s/s)", rate(top))
		}
	}
	goals = append(goals, g)

	g = Goal{Name: "a server stall shows in the percentiles (no coordinated omission)"}
	if len(rep.Generator.Stall) == 0 {
		g.Status, g.Detail = GoalNotMeasured, "stall test skipped"
	} else {
		g.Status = GoalMet
		parts = nil
		for _, s := range rep.Generator.Stall {
			parts = append(parts, fmt.Sprintf("workers %d: p99 %s ms (expected %s), max %s ms, late %d",
				s.Workers, fms(s.P99MS), fms(s.ExpectedP99MS), fms(s.MaxMS), s.Late))
			if !s.Shows {
				g.Status = GoalNotMet
			}
		}
		g.Detail = strings.Join(parts, "; ")
	}
	return append(goals, g)
}

// overheadGoal: the NLB's added latency is at most GoalOverheadRatio times
// HAProxy's at every rate, at p50 and at p99 (when HAProxy added nothing,
// neither may the NLB). Each check is judged by its interval (see Excess):
// the goal is not met when one is clearly over, met when all are clearly
// within, and within noise otherwise.
func overheadGoal(m ModeReport) Goal {
	g := Goal{Name: fmt.Sprintf("NLB added latency <= %gx HAProxy's at every rate, p50 and p99 (%s connections)", GoalOverheadRatio, m.Conn)}
	if len(m.Rates) == 0 {
		g.Status, g.Detail = GoalNotMeasured, "no rates measured"
		return g
	}
	checks := map[string][]string{}
	for _, c := range m.Rates {
		for _, p := range []struct {
			name    string
			nlb, ha float64
			ex      Excess
		}{{"p50", c.NLBAddedP50MS, c.HAProxyAddedP50MS, c.ExcessP50}, {"p99", c.NLBAddedP99MS, c.HAProxyAddedP99MS, c.ExcessP99}} {
			desc := fmt.Sprintf("%s/s %s %+.3f vs %+.3f ms", rate(c.Rate), p.name, p.nlb, p.ha)
			if p.ex.Verdict != GoalMet {
				desc += fmt.Sprintf(" (excess %+.3f, %g%% interval %+.3f to %+.3f)", p.ex.MS, ExcessLevel*100, p.ex.LowMS, p.ex.HighMS)
			}
			checks[p.ex.Verdict] = append(checks[p.ex.Verdict], desc)
		}
	}
	var parts []string
	for _, v := range []string{GoalNotMet, GoalWithinNoise, GoalMet} {
		if len(checks[v]) > 0 {
			parts = append(parts, v+" at "+strings.Join(checks[v], "; "))
		}
	}
	switch {
	case len(checks[GoalNotMet]) > 0:
		g.Status = GoalNotMet
	case len(checks[GoalWithinNoise]) > 0:
		g.Status = GoalWithinNoise
	default:
		g.Status = GoalMet
	}
	g.Detail = "nlb vs haproxy added, " + strings.Join(parts, "; ")
	return g
}
