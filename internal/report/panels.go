// The report figure's five panels: load, pool size, CPU per member, latency and errors.

package report

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// specSeries returns the points of each series of spec, in spec order.
func specSeries(spec PanelSpec, pts []Point) [][]xy {
	out := make([][]xy, len(spec.Series))
	for i, ser := range spec.Series {
		out[i] = make([]xy, len(pts))
		for j, pt := range pts {
			v, ok := pt.Values[ser.Key]
			if !ok {
				v = math.NaN()
			}
			out[i][j] = xy{pt.T, v}
		}
	}
	return out
}

// addSpecSeries adds the series of spec and returns their legend entries
// (one per series, with or without points) and whether any had a point.
func addSpecSeries(p *plot.Plot, spec PanelSpec, series [][]xy) ([]legendEntry, bool) {
	var legend []legendEntry
	has := false
	for i, ser := range spec.Series {
		step := plotter.NoStep
		if ser.Step {
			step = plotter.PostStep
		}
		e, ok := addSeries(p, ser.Name, series[i], ser.Line.style(), step)
		has = has || ok
		legend = append(legend, e)
	}
	return legend, has
}

func loadPanel(spec PanelSpec, pts []Point, events []Event, xmax float64, s Summary) panel {
	p := newPanel(spec.Title, spec.YLabel, xmax)
	series := specSeries(spec, pts)
	setY(p, niceTicks(maxY(series...), spec.Integer))
	var level []legendEntry
	if spec.LoadLevel && s.LoadLevel > 0 {
		lv := &plotter.Line{XYs: plotter.XYs{{X: 0, Y: s.LoadLevel}, {X: xmax, Y: s.LoadLevel}}, LineStyle: levelLine.style()}
		p.Add(lv)
		level = append(level, legendEntry{name: LoadLevelName(s), thumb: lv})
	}
	legend, has := addSpecSeries(p, spec, series)
	if !has {
		p.Add(centerText("no load data"))
	}
	legend = append(legend, level...)
	legend = append(legend, addMarks(p, events, spec.Marks...)...)
	return panel{p: p, legend: legend}
}

func poolPanel(spec PanelSpec, pts []Point, events []Event, xmax float64) panel {
	p := newPanel(spec.Title, spec.YLabel, xmax)
	series := specSeries(spec, pts)
	top := maxY(series...)
	for _, ev := range events {
		if ev.Kind == KindScaleOut || ev.Kind == KindScaleIn {
			top = max(top, float64(ev.To), float64(ev.From))
		}
	}
	setY(p, niceTicks(max(top, 1), spec.Integer))
	legend, has := addSpecSeries(p, spec, series)
	if !has {
		p.Add(centerText("no pool data"))
	}
	legend = append(legend, addMarks(p, events, spec.Marks...)...)
	return panel{p: p, legend: legend}
}

func cpuPanel(spec PanelSpec, pts []Point, samples []Sample, events []Event, xmax float64, d Data) panel {
	p := newPanel(spec.Title, spec.YLabel, xmax)
	setY(p, niceTicks(100, false))
	var thresholds []legendEntry
	if spec.CPUThresholds {
		for _, th := range CPUThresholds(d) {
			ln := &plotter.Line{XYs: plotter.XYs{{X: 0, Y: th.Percent}, {X: xmax, Y: th.Percent}}, LineStyle: thresholdLine.style()}
			p.Add(ln)
			thresholds = append(thresholds, legendEntry{name: th.Name, thumb: ln})
		}
	}
	has := false
	var instances []legendEntry
	if spec.Instances {
		for i, name := range instanceOrder(samples) {
			ser := make([]xy, len(pts))
			for j, pt := range pts {
				v, ok := pt.CPU[name]
				if !ok {
					v = math.NaN()
				}
				ser[j] = xy{pt.T, v}
			}
			e, ok := addSeries(p, name, ser, lineStyle(instancePalette[i%len(instancePalette)], vg.Length(instanceWidth)), plotter.NoStep)
			has = has || ok
			e.optional = true
			instances = append(instances, e)
		}
	}
	legend, ok := addSpecSeries(p, spec, specSeries(spec, pts))
	if !ok && !has {
		p.Add(centerText("no CPU data"))
	}
	legend = append(legend, thresholds...)
	legend = append(legend, addMarks(p, events, spec.Marks...)...)
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

func latencyPanel(spec PanelSpec, pts []Point, events []Event, xmax float64) panel {
	p := newPanel(spec.Title, spec.YLabel, xmax)
	series := specSeries(spec, pts)
	setY(p, niceTicks(maxY(series...), spec.Integer))
	legend, has := addSpecSeries(p, spec, series)
	if !has {
		p.Add(centerText("no latency data"))
	}
	legend = append(legend, addMarks(p, events, spec.Marks...)...)
	return panel{p: p, legend: legend}
}

func errorsPanel(spec PanelSpec, pts []Point, events []Event, xmax float64) panel {
	p := newPanel(spec.Title, spec.YLabel, xmax)
	series := specSeries(spec, pts)
	setY(p, niceTicks(max(maxY(series...), 1), spec.Integer))
	legend, _ := addSpecSeries(p, spec, series)
	switch {
	case len(pts) == 0:
		p.Add(centerText("no request data"))
	case maxY(series...) == 0:
		p.Add(centerText("no failed or late requests"))
	}
	legend = append(legend, addMarks(p, events, spec.Marks...)...)
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
