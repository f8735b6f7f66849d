// The report figure's five panels: load, pool size, CPU per member, latency and errors.

package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"
)

func loadPanel(samples []Sample, events []Event, xmax float64, s Summary) panel {
	p := newPanel("Load: offered vs answered", "load (req/s)", xmax)
	offered := make([]xy, len(samples))
	answered := make([]xy, len(samples))
	for i, smp := range samples {
		x := smp.T.Seconds()
		offered[i] = xy{x, smp.OfferedRPS}
		answered[i] = xy{x, smp.AnsweredRPS}
	}
	setY(p, niceTicks(maxY(offered, answered), false))
	var legend []legendEntry
	if s.LoadLevel > 0 {
		lv := &plotter.Line{XYs: plotter.XYs{{X: 0, Y: s.LoadLevel}, {X: xmax, Y: s.LoadLevel}},
			LineStyle: lineStyle(grey, 1, 2, 3)}
		p.Add(lv)
		legend = append(legend, legendEntry{name: fmt.Sprintf("rise/drop at %.0f %% of peak", 100*s.LoadLevel/s.PeakOfferedRPS), thumb: lv})
	}
	e1, ok1 := addSeries(p, "offered (planned)", offered, lineStyle(blue, 2.2, 7, 3), plotter.NoStep)
	e2, ok2 := addSeries(p, "answered", answered, lineStyle(green, 2), plotter.NoStep)
	if !ok1 && !ok2 {
		p.Add(centerText("no load data"))
	}
	legend = append([]legendEntry{e1, e2}, legend...)
	legend = append(legend, addMarks(p, events, KindScaleOut, KindScaleIn, KindLoadStart, KindLoadEnd)...)
	return panel{p: p, legend: legend}
}

func poolPanel(samples []Sample, events []Event, xmax float64) panel {
	p := newPanel("Pool size", "members", xmax)
	pool := make([]xy, len(samples))
	running := make([]xy, len(samples))
	for i, smp := range samples {
		x := smp.T.Seconds()
		pool[i] = xy{x, intOrGap(smp.PoolSize)}
		running[i] = xy{x, intOrGap(smp.RunningSize)}
	}
	top := maxY(pool, running)
	for _, ev := range events {
		if ev.Kind == KindScaleOut || ev.Kind == KindScaleIn {
			top = max(top, float64(ev.To), float64(ev.From))
		}
	}
	setY(p, niceTicks(max(top, 1), true))
	e1, ok1 := addSeries(p, "members (any state)", pool, lineStyle(lightBlue, 6), plotter.PostStep)
	e2, ok2 := addSeries(p, "running", running, lineStyle(darkBlue, 2), plotter.PostStep)
	if !ok1 && !ok2 {
		p.Add(centerText("no pool data"))
	}
	legend := []legendEntry{e1, e2}
	legend = append(legend, addMarks(p, events, KindScaleOut, KindScaleIn)...)
	return panel{p: p, legend: legend}
}

func cpuPanel(samples []Sample, events []Event, xmax float64, d Data) panel {
	p := newPanel("CPU utilisation", "CPU (%)", xmax)
	setY(p, niceTicks(100, false))
	var legend []legendEntry
	for _, th := range []struct {
		v    float64
		def  float64
		name string
	}{{d.CPUHigh, DefaultCPUHigh, "scale-out threshold"}, {d.CPULow, DefaultCPULow, "scale-in threshold"}} {
		v := th.v
		if v == 0 {
			v = th.def
		}
		if v < 0 || !finite(v) {
			continue
		}
		ln := &plotter.Line{XYs: plotter.XYs{{X: 0, Y: 100 * v}, {X: xmax, Y: 100 * v}},
			LineStyle: lineStyle(grey, 1.4, 6, 4)}
		p.Add(ln)
		legend = append(legend, legendEntry{name: fmt.Sprintf("%s %.0f %%", th.name, 100*v), thumb: ln})
	}

	has := false
	var instances []legendEntry
	for i, name := range instanceOrder(samples) {
		pts := make([]xy, len(samples))
		for j, smp := range samples {
			v, ok := smp.CPU[name]
			if !ok {
				v = math.NaN()
			}
			pts[j] = xy{smp.T.Seconds(), 100 * v}
		}
		e, ok := addSeries(p, name, pts, lineStyle(instancePalette[i%len(instancePalette)], 1.1), plotter.NoStep)
		has = has || ok
		e.optional = true
		instances = append(instances, e)
	}
	avg := make([]xy, len(samples))
	for i, smp := range samples {
		avg[i] = xy{smp.T.Seconds(), 100 * smp.AvgCPU}
	}
	e, ok := addSeries(p, "pool average", avg, lineStyle(black, 3), plotter.NoStep)
	if !ok && !has {
		p.Add(centerText("no CPU data"))
	}
	legend = append([]legendEntry{e}, legend...)
	legend = append(legend, addMarks(p, events, KindScaleOut, KindScaleIn, KindAlertUp, KindAlertDown)...)
	legend = append(legend, instances...)
	return panel{p: p, legend: legend}
}

// instanceOrder lists the per-instance CPU keys by first appearance with a
// finite value, ties in natural order, so colours stay stable along the run.
func instanceOrder(samples []Sample) []string {
	first := map[string]int{}
	for i, smp := range samples {
		for k, v := range smp.CPU {
			if _, seen := first[k]; !seen && finite(v) {
				first[k] = i
			}
		}
	}
	names := make([]string, 0, len(first))
	for k := range first {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(first[a], first[b]), naturalCompare(a, b))
	})
	return names
}

// naturalCompare orders "app-2" before "app-10".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func latencyPanel(samples []Sample, events []Event, xmax float64) panel {
	p := newPanel("Latency (from planned send time)", "latency (ms)", xmax)
	ser := [3][]xy{}
	for _, smp := range samples {
		x := smp.T.Seconds()
		for i, d := range []time.Duration{smp.P50, smp.P95, smp.P99} {
			ser[i] = append(ser[i], xy{x, msOrGap(d)})
		}
	}
	setY(p, niceTicks(maxY(ser[:]...), false))
	var legend []legendEntry
	has := false
	for i, spec := range []struct {
		name string
		sty  draw.LineStyle
	}{{"p50", lineStyle(green, 1.6)}, {"p95", lineStyle(orange, 1.8)}, {"p99", lineStyle(red, 1.6, 4, 2)}} {
		e, ok := addSeries(p, spec.name, ser[i], spec.sty, plotter.NoStep)
		has = has || ok
		legend = append(legend, e)
	}
	if !has {
		p.Add(centerText("no latency data"))
	}
	legend = append(legend, addMarks(p, events, KindScaleOut, KindScaleIn)...)
	return panel{p: p, legend: legend}
}

func errorsPanel(samples []Sample, events []Event, xmax float64) panel {
	p := newPanel("Failed and late requests", "requests (req/s)", xmax)
	failed := make([]xy, len(samples))
	late := make([]xy, len(samples))
	total := 0
	for i, smp := range samples {
		x := smp.T.Seconds()
		failed[i] = xy{x, float64(smp.Errors)}
		late[i] = xy{x, float64(smp.Late)}
		total += smp.Errors + smp.Late
	}
	setY(p, niceTicks(max(maxY(failed, late), 1), true))
	e1, _ := addSeries(p, "failed", failed, lineStyle(red, 1.8), plotter.NoStep)
	e2, _ := addSeries(p, "sent late", late, lineStyle(orange, 1.6, 4, 2), plotter.NoStep)
	if len(samples) == 0 {
		p.Add(centerText("no request data"))
	} else if total == 0 {
		p.Add(centerText("no failed or late requests"))
	}
	legend := []legendEntry{e1, e2}
	legend = append(legend, addMarks(p, events, KindScaleOut, KindScaleIn)...)
	return panel{p: p, legend: legend}
}

func intOrGap(n int) float64 {
	if n < 0 {
		return math.NaN()
	}
	return float64(n)
}

func msOrGap(d time.Duration) float64 {
	if d <= 0 {
		return math.NaN()
	}
	return float64(d) / float64(time.Millisecond)
}
