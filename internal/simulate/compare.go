package simulate

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the comparison of several policies on one trace.
type Result struct {
	Trace  Trace
	Pool   Pool
	Demand Series
	Runs   []Run
	// Metrics[i] are the metrics of Runs[i].
	Metrics []Elasticity
}

// Compare simulates every setup on tr and measures each run.
func Compare(tr Trace, pool Pool, setups []Setup) (Result, error) {
	if err := tr.Validate(); err != nil {
		return Result{}, err
	}
	if err := pool.Validate(); err != nil {
		return Result{}, err
	}
	pool = pool.withDefaults()
	r := Result{Trace: tr, Pool: pool, Demand: pool.DemandSeries(tr)}
	for _, s := range setups {
		run, err := Simulate(tr, pool, s)
		if err != nil {
			return Result{}, err
		}
		r.Runs = append(r.Runs, run)
		r.Metrics = append(r.Metrics, Evaluate(run, r.Demand))
	}
	return r, nil
}

// Columns of the results table: header, unit and how to format a value.
var columns = []struct {
	head, unit string
	value      func(Elasticity) string
}{
	{"θU", "members", func(e Elasticity) string { return fmt.Sprintf("%.2f", e.ThetaU) }},
	{"θO", "members", func(e Elasticity) string { return fmt.Sprintf("%.2f", e.ThetaO) }},
	{"τU", "%", func(e Elasticity) string { return fmt.Sprintf("%.1f", e.TauU) }},
	{"τO", "%", func(e Elasticity) string { return fmt.Sprintf("%.1f", e.TauO) }},
	{"jitter", "/min", func(e Elasticity) string { return fmt.Sprintf("%+.2f", e.Jitter) }},
	{"changes", "", func(e Elasticity) string { return fmt.Sprint(e.Adaptations) }},
	{"inst-hours", "h", func(e Elasticity) string { return fmt.Sprintf("%.1f", e.InstanceHours) }},
	{"SLO viol.", "%", func(e Elasticity) string { return fmt.Sprintf("%.1f", e.SLOViolation) }},
	{"dropped", "%", func(e Elasticity) string { return fmt.Sprintf("%.2f", e.Dropped) }},
}

// Describe is a one-line description of the trace and its demand.
func (r Result) Describe() string {
	lo, hi := math.MaxInt, 0
	for _, v := range r.Demand.V {
		lo, hi = min(lo, v), max(hi, v)
	}
	return fmt.Sprintf("trace %s: %s, peak %.0f req/s, demand %d..%d members (capacity %g req/s at %.0f%% SLO utilisation)",
		r.Trace.Name, fmtDuration(r.Trace.End), r.Trace.Peak(), lo, hi, r.Pool.Capacity, r.Pool.SLO*100)
}

// WriteTable writes the trace's description and a text table: one row per
// policy, one column per metric.
func (r Result) WriteTable(w io.Writer) error {
	fmt.Fprintln(w, r.Describe())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"policy"}
	for _, c := range columns {
		h := c.head
		if c.unit != "" {
			h += " (" + c.unit + ")"
		}
		head = append(head, h)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for i, run := range r.Runs {
		row := []string{run.Setup}
		for _, c := range columns {
			row = append(row, c.value(r.Metrics[i]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// WriteMarkdown writes the trace's description and the table in Markdown.
func (r Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**\n\n| policy |", r.Describe())
	sep := "|---|"
	for _, c := range columns {
		h := c.head
		if c.unit != "" {
			h += " (" + c.unit + ")"
		}
		fmt.Fprintf(&b, " %s |", h)
		sep += "---:|"
	}
	b.WriteString("\n" + sep + "\n")
	for i, run := range r.Runs {
		fmt.Fprintf(&b, "| %s |", run.Setup)
		for _, c := range columns {
			fmt.Fprintf(&b, " %s |", c.value(r.Metrics[i]))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// WriteCSV writes one row per policy with the trace name and every metric
// at full precision (header first when header is true).
func (r Result) WriteCSV(w io.Writer, header bool) error {
	var b strings.Builder
	if header {
		b.WriteString("trace,policy,theta_u,theta_o,tau_u_pct,tau_o_pct,jitter_per_min,adaptations,instance_hours,slo_violation_pct,dropped_pct\n")
	}
	for i, run := range r.Runs {
		e := r.Metrics[i]
		fmt.Fprintf(&b, "%s,%s,%g,%g,%g,%g,%g,%d,%g,%g,%g\n", r.Trace.Name, run.Setup,
			e.ThetaU, e.ThetaO, e.TauU, e.TauO, e.Jitter, e.Adaptations, e.InstanceHours, e.SLOViolation, e.Dropped)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func fmtDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dmin", d/time.Minute)
	}
	return d.String()
}

// Summary is one policy's metrics averaged over several traces.
type Summary struct {
	Policy string
	// Traces is the number of traces averaged.
	Traces int
	// Means over the traces of the Elasticity fields of the same names.
	ThetaU, ThetaO, TauU, TauO, SLOViolation, Dropped float64
	// Cost is the policy's instance-hours over all traces divided by the
	// oracle's (NaN without an oracle run).
	Cost float64
}

// Summarize averages each policy's metrics over results (policies matched
// by name, in the order of the first result).
func Summarize(results []Result) []Summary {
	if len(results) == 0 {
		return nil
	}
	var out []Summary
	for _, run := range results[0].Runs {
		s := Summary{Policy: run.Setup}
		hours, oracle := 0.0, 0.0
		for _, r := range results {
			for i, run := range r.Runs {
				e := r.Metrics[i]
				switch run.Setup {
				case s.Policy:
					s.Traces++
					s.ThetaU += e.ThetaU
					s.ThetaO += e.ThetaO
					s.TauU += e.TauU
					s.TauO += e.TauO
					s.SLOViolation += e.SLOViolation
					s.Dropped += e.Dropped
					hours += e.InstanceHours
				}
				if run.Setup == OracleName {
					oracle += e.InstanceHours
				}
			}
		}
		n := float64(max(s.Traces, 1))
		s.ThetaU, s.ThetaO, s.TauU, s.TauO, s.SLOViolation, s.Dropped = s.ThetaU/n, s.ThetaO/n, s.TauU/n, s.TauO/n, s.SLOViolation/n, s.Dropped/n
		s.Cost = math.NaN()
		if oracle > 0 {
			s.Cost = hours / oracle
		}
		out = append(out, s)
	}
	return out
}

// WriteSummary writes the Summarize table of results, as text or Markdown.
func WriteSummary(w io.Writer, results []Result, markdown bool) error {
	head := []string{"policy", "θU (members)", "θO (members)", "τU (%)", "τO (%)", "SLO viol. (%)", "dropped (%)", "cost (× oracle)"}
	var rows [][]string
	for _, s := range Summarize(results) {
		cost := "n/a"
		if !math.IsNaN(s.Cost) {
			cost = fmt.Sprintf("%.2f", s.Cost)
		}
		rows = append(rows, []string{s.Policy, fmt.Sprintf("%.2f", s.ThetaU), fmt.Sprintf("%.2f", s.ThetaO), fmt.Sprintf("%.1f", s.TauU),
			fmt.Sprintf("%.1f", s.TauO), fmt.Sprintf("%.1f", s.SLOViolation), fmt.Sprintf("%.2f", s.Dropped), cost})
	}
	title := fmt.Sprintf("mean over %d traces", len(results))
	var b strings.Builder
	if markdown {
		fmt.Fprintf(&b, "**%s**\n\n| %s |\n|---|", title, strings.Join(head, " | "))
		b.WriteString(strings.Repeat("---:|", len(head)-1) + "\n")
		for _, r := range rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
		}
		b.WriteString("\n")
	} else {
		b.WriteString(title + "\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
		}
		tw.Flush()
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
