package report

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// row is one line of the summary: the printed text and the HTML table share
// the same rows.
type row struct{ label, value string }

// Text returns the printed summary: one "label  value" line per fact, every
// number with its unit, ending in a newline.
func (s Summary) Text() string {
	rows := s.rows()
	width := 0
	for _, r := range rows {
		width = max(width, len(r.label))
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s  %s\n", width, r.label, r.value)
	}
	return b.String()
}

func (s Summary) rows() []row {
	rows := []row{
		{"Duration", fmt.Sprintf("%s (%d samples)", fmtDur(s.Duration), s.Samples)},
		{"Offered load", s.loadText()},
		{"Answered load", fmt.Sprintf("peak %s", fmtRPS(s.PeakAnsweredRPS))},
		{"Scale-outs", scaleText(s.ScaleOutEvents, s.ScaleOuts, "load rise")},
		{"Scale-ins", scaleText(s.ScaleInEvents, s.ScaleIns, "load drop")},
		{"Pool size", s.poolText()},
		{"Pool CPU", s.cpuText()},
		{"Requests", fmt.Sprintf("%d total, %d OK, %d failed (%s), %d sent late (%s)",
			s.Requests, s.OK, s.Failed, fmtPct(s.Failed, s.Requests), s.Late, fmtPct(s.Late, s.Requests))},
		{"Latency", s.latencyText()},
	}
	return rows
}

func (s Summary) loadText() string {
	if s.PeakOfferedRPS <= 0 {
		return "no offered load recorded"
	}
	t := fmt.Sprintf("peak %s", fmtRPS(s.PeakOfferedRPS))
	if !s.LoadRose {
		return t
	}
	t += fmt.Sprintf("; rose above %s at %s", fmtRPS(s.LoadLevel), fmtDur(s.LoadRise))
	if s.LoadDropped {
		t += fmt.Sprintf(", fell back at %s", fmtDur(s.LoadDrop))
	} else {
		t += ", did not fall back before the end"
	}
	return t
}

func (s Summary) poolText() string {
	if !s.PoolKnown {
		return "no data"
	}
	t := fmt.Sprintf("start %d, peak %d, final %d members", s.StartPool, s.PeakPool, s.FinalPool)
	if s.RunningKnown {
		t += fmt.Sprintf(" (running: peak %d, final %d)", s.PeakRunning, s.FinalRunning)
	}
	return t
}

func (s Summary) cpuText() string {
	if math.IsNaN(s.PeakAvgCPU) {
		return "no data"
	}
	return fmt.Sprintf("peak pool average %.0f %%", 100*s.PeakAvgCPU)
}

func (s Summary) latencyText() string {
	if s.P95 <= 0 {
		return "no data"
	}
	how := "estimated from per-second percentiles, request-weighted"
	if s.LatencyExact {
		how = "exact, from the load generator"
	}
	return fmt.Sprintf("p50 %s, p95 %s, p99 %s (%s)", fmtMS(s.P50), fmtMS(s.P95), fmtMS(s.P99), how)
}

// scaleText lists scaling events with their delay from the reference
// (delays may be nil when there is no reference).
func scaleText(events []Event, delays []time.Duration, ref string) string {
	if len(events) == 0 {
		return "none"
	}
	parts := make([]string, len(events))
	for i, ev := range events {
		p := fmt.Sprintf("%s at %s", stepLabel(ev), fmtDur(ev.T))
		if i < len(delays) {
			if d := delays[i]; d >= 0 {
				p += fmt.Sprintf(" (%s after %s)", fmtDur(d), ref)
			} else {
				p += fmt.Sprintf(" (%s before %s)", fmtDur(-d), ref)
			}
		}
		parts[i] = p
	}
	return fmt.Sprintf("%d: %s", len(events), strings.Join(parts, ", "))
}

// stepLabel is the short label of a scaling event, e.g. "+1 → 3" or "−2 → 1".
func stepLabel(ev Event) string {
	switch n := ev.To - ev.From; {
	case n > 0:
		return fmt.Sprintf("+%d → %d", n, ev.To)
	case n < 0:
		return fmt.Sprintf("−%d → %d", -n, ev.To)
	default:
		return fmt.Sprintf("→ %d", ev.To)
	}
}

// fmtDur formats a duration to the second (to 0.1 s under 10 s), e.g. "7.5s",
// "42s", "1m05s", "1h02m03s".
func fmtDur(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var t string
	switch {
	case d < 10*time.Second:
		t = fmt.Sprintf("%.1fs", d.Round(100*time.Millisecond).Seconds())
	default:
		sec := int64(d.Round(time.Second) / time.Second)
		h, m, s := sec/3600, sec/60%60, sec%60
		switch {
		case h > 0:
			t = fmt.Sprintf("%dh%02dm%02ds", h, m, s)
		case m > 0:
			t = fmt.Sprintf("%dm%02ds", m, s)
		default:
			t = fmt.Sprintf("%ds", s)
		}
	}
	if neg {
		return "-" + t
	}
	return t
}

// fmtMS formats a latency in milliseconds: "0.85 ms", "12.3 ms", "412 ms".
func fmtMS(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d <= 0:
		return "no data"
	case ms < 1:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

func fmtRPS(r float64) string { return fmt.Sprintf("%.1f req/s", r) }

// fmtPct formats n/total as a percentage ("0.00 %" for 0 of 0, "n/a" for
// n > 0 of 0).
func fmtPct(n, total int) string {
	if total <= 0 {
		if n == 0 {
			return "0.00 %"
		}
		return "n/a"
	}
	return fmt.Sprintf("%.2f %%", 100*float64(n)/float64(total))
}
