package simulate

import (
	"fmt"
	"io"

	"tidepool/internal/report"
)

// WriteChart writes a PNG of supply versus demand: one panel per policy
// with the demand, the members serving and the members paid for (any
// state), in the style of the demo report.
func (r Result) WriteChart(w io.Writer) error {
	c := report.Chart{
		Title: "tidepool simulate: supply vs demand, trace " + r.Trace.Name,
		Subtitle: fmt.Sprintf("%s · boot %s, drain %s, request timeout %s, pool %d..%s",
			r.Describe(), r.Pool.BootDelay, r.Pool.DrainDelay, r.Pool.Timeout, r.Pool.Min, maxText(r.Pool.Max)),
		End: r.Trace.End,
	}
	for i, run := range r.Runs {
		e := r.Metrics[i]
		c.Panels = append(c.Panels, report.ChartPanel{
			Title: fmt.Sprintf("%s: θU %.2f, θO %.2f members, τU %.1f%%, SLO violated %.1f%%, %.1f instance-hours",
				run.Setup, e.ThetaU, e.ThetaO, e.TauU, e.SLOViolation, e.InstanceHours),
			YLabel: "members", Integer: true,
			Series: []report.ChartSeries{
				{Name: "demand", Role: report.RoleReference, Step: true, T: r.Demand.T, V: r.Demand.Floats()},
				{Name: "members (any state)", Role: report.RoleSecondary, Step: true, T: run.Size.T, V: run.Size.Floats()},
				{Name: "supply (serving)", Role: report.RoleMain, Step: true, T: run.Supply.T, V: run.Supply.Floats()},
			},
		})
	}
	return report.WriteChartPNG(w, c)
}

func maxText(n int) string {
	if n == 0 {
		return "∞"
	}
	return fmt.Sprint(n)
}
