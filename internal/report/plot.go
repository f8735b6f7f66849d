package report

import (
	"fmt"
	"image/color"
	"math"
	"time"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// This file is the one description of what the report's charts plot: which
// panels, which series from which Sample fields, in which units and styles.
// The PNG and SVG report draw from it, and the live page of `tidepool demo`
// (internal/live) sends it to the browser with the same Points, so that the
// live view and the final report cannot disagree.

// Point is one Sample converted to the values the charts plot. NaN is a gap
// (unknown or no data).
type Point struct {
	// T is the time since the demo start in seconds.
	T float64
	// Values holds one value per series key (SeriesSpec.Key), in the
	// panel's unit: req/s, members, percent, milliseconds, requests.
	Values map[string]float64
	// CPU is each instance's utilisation in percent, by instance name.
	CPU map[string]float64
}

// Series keys of Point.Values.
const (
	KeyOffered  = "offered"  // planned arrival rate, req/s
	KeyAnswered = "answered" // answered requests, req/s
	KeyPool     = "pool"     // members in any state
	KeyRunning  = "running"  // running members (draining included)
	KeyStarting = "starting" // members not running yet
	KeyDraining = "draining" // running members being drained
	KeyAvgCPU   = "cpu"      // pool average CPU, percent
	KeyP50      = "p50"      // latency percentiles, ms
	KeyP95      = "p95"
	KeyP99      = "p99"
	KeyFailed   = "failed" // failed requests in the second
	KeyLate     = "late"   // requests sent late in the second
)

// PlotPoint converts s to the plotted values: pool counts below 0, latency
// percentiles of 0 and non-finite CPU become gaps; CPU is scaled to percent
// and latency to milliseconds.
func PlotPoint(s Sample) Point {
	p := Point{T: s.T.Seconds(), Values: map[string]float64{
		KeyOffered:  s.OfferedRPS,
		KeyAnswered: s.AnsweredRPS,
		KeyPool:     intOrGap(s.PoolSize),
		KeyRunning:  intOrGap(s.RunningSize),
		KeyStarting: intOrGap(s.StartingSize),
		KeyDraining: intOrGap(s.DrainingSize),
		KeyAvgCPU:   percentOrGap(s.AvgCPU),
		KeyP50:      msOrGap(s.P50),
		KeyP95:      msOrGap(s.P95),
		KeyP99:      msOrGap(s.P99),
		KeyFailed:   float64(s.Errors),
		KeyLate:     float64(s.Late),
	}}
	if len(s.CPU) > 0 {
		p.CPU = make(map[string]float64, len(s.CPU))
		for k, v := range s.CPU {
			p.CPU[k] = percentOrGap(v)
		}
	}
	return p
}

func percentOrGap(f float64) float64 {
	if !finite(f) {
		return math.NaN()
	}
	return 100 * f
}

// LineSpec is how a series or a mark is drawn.
type LineSpec struct {
	// Color is "#rrggbb".
	Color string
	// Width is the line width in points (1/72 inch; the PNG has 96 pixels
	// per inch).
	Width float64
	// Dash are on/off lengths in points; nil is a solid line.
	Dash []float64

	clr color.Color
}

func line(c color.RGBA, width float64, dash ...float64) LineSpec {
	return LineSpec{Color: fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B), Width: width, Dash: dash, clr: c}
}

func (l LineSpec) style() draw.LineStyle {
	var dash []vg.Length
	for _, d := range l.Dash {
		dash = append(dash, vg.Length(d))
	}
	return draw.LineStyle{Color: l.clr, Width: vg.Length(l.Width), Dashes: dash}
}

// SeriesSpec is one series of a panel.
type SeriesSpec struct {
	// Key selects the value in Point.Values.
	Key string
	// Name is the legend entry.
	Name string
	Line LineSpec
	// Step draws a step function (the value holds until the next point).
	Step bool
}

// PanelSpec is one chart panel of the report, top to bottom.
type PanelSpec struct {
	// ID is a stable identifier ("load", "pool", "cpu", "latency", "errors").
	ID            string
	Title, YLabel string
	// Integer means whole-number y ticks (counts).
	Integer bool
	Series  []SeriesSpec
	// Instances adds one thin line per instance from Point.CPU, coloured
	// from InstanceColors in order of first appearance.
	Instances bool
	// CPUThresholds adds the horizontal lines of CPUThresholds.
	CPUThresholds bool
	// LoadLevel adds the horizontal line at Summary.LoadLevel.
	LoadLevel bool
	// Marks are the event kinds drawn as vertical lines, in legend order.
	Marks []string
}

// MarkSpec is how events of one kind are marked on the charts.
type MarkSpec struct {
	// Name is the legend entry.
	Name string
	Line LineSpec
	// Labelled marks carry a label such as "+1 → 3" (Event.Label).
	Labelled bool
}

var (
	purple     = color.RGBA{0x94, 0x67, 0xbd, 0xff}
	scaleMarks = []string{KindScaleOut, KindScaleIn}

	panelSpecs = []PanelSpec{
		{ID: "load", Title: "Load: offered vs answered", YLabel: "load (req/s)", LoadLevel: true,
			Series: []SeriesSpec{
				{Key: KeyOffered, Name: "offered (planned)", Line: line(blue, 2.2, 7, 3)},
				{Key: KeyAnswered, Name: "answered", Line: line(green, 2)},
			},
			Marks: []string{KindScaleOut, KindScaleIn, KindLoadStart, KindLoadEnd}},
		{ID: "pool", Title: "Pool size", YLabel: "members", Integer: true,
			Series: []SeriesSpec{
				{Key: KeyPool, Name: "members (any state)", Line: line(lightBlue, 6), Step: true},
				{Key: KeyRunning, Name: "running", Line: line(darkBlue, 2), Step: true},
				{Key: KeyStarting, Name: "starting", Line: line(orange, 1.6, 4, 2), Step: true},
				{Key: KeyDraining, Name: "draining", Line: line(purple, 1.6, 2, 2), Step: true},
			},
			Marks: scaleMarks},
		{ID: "cpu", Title: "CPU utilisation", YLabel: "CPU (%)", Instances: true, CPUThresholds: true,
			Series: []SeriesSpec{{Key: KeyAvgCPU, Name: "pool average", Line: line(black, 3)}},
			Marks:  []string{KindScaleOut, KindScaleIn, KindAlertUp, KindAlertDown}},
		{ID: "latency", Title: "Latency (from planned send time)", YLabel: "latency (ms)",
			Series: []SeriesSpec{
				{Key: KeyP50, Name: "p50", Line: line(green, 1.6)},
				{Key: KeyP95, Name: "p95", Line: line(orange, 1.8)},
				{Key: KeyP99, Name: "p99", Line: line(red, 1.6, 4, 2)},
			},
			Marks: scaleMarks},
		{ID: "errors", Title: "Failed and late requests", YLabel: "requests (req/s)", Integer: true,
			Series: []SeriesSpec{
				{Key: KeyFailed, Name: "failed", Line: line(red, 1.8)},
				{Key: KeyLate, Name: "sent late", Line: line(orange, 1.6, 4, 2)},
			},
			Marks: scaleMarks},
	}

	markSpecs = map[string]MarkSpec{
		KindScaleOut:  {Name: "scale-out", Line: line(scaleOutClr, 1.6), Labelled: true},
		KindScaleIn:   {Name: "scale-in", Line: line(scaleInClr, 1.6, 5, 3), Labelled: true},
		KindAlertUp:   {Name: "alert fired", Line: line(scaleOutClr, 1, 1.5, 2.5)},
		KindAlertDown: {Name: "alert resolved", Line: line(scaleInClr, 1, 1.5, 2.5)},
		KindLoadStart: {Name: "load start", Line: line(grey, 1, 1.5, 2.5)},
		KindLoadEnd:   {Name: "load end", Line: line(grey, 1, 1.5, 2.5)},
	}

	thresholdLine = line(grey, 1.4, 6, 4)
	levelLine     = line(grey, 1, 2, 3)
	instanceWidth = 1.1
)

// Panels returns the report's chart panels, top to bottom. The caller may
// modify the result.
func Panels() []PanelSpec {
	out := make([]PanelSpec, len(panelSpecs))
	for i, p := range panelSpecs {
		p.Series = append([]SeriesSpec(nil), p.Series...)
		p.Marks = append([]string(nil), p.Marks...)
		out[i] = p
	}
	return out
}

// Marks returns how each drawn event kind is marked, by kind.
func Marks() map[string]MarkSpec {
	out := make(map[string]MarkSpec, len(markSpecs))
	for k, v := range markSpecs {
		out[k] = v
	}
	return out
}

// InstanceColors returns the colours of the per-instance CPU lines, used in
// order of first appearance (see InstanceOrder) and then repeated.
func InstanceColors() []string {
	out := make([]string, len(instancePalette))
	for i, c := range instancePalette {
		out[i] = line(c.(color.RGBA), instanceWidth).Color
	}
	return out
}

// InstanceWidth is the width of the per-instance CPU lines in points.
func InstanceWidth() float64 { return instanceWidth }

// ThresholdLine and LevelLine are the styles of the CPU thresholds and of
// the load level.
func ThresholdLine() LineSpec { return thresholdLine }

// LevelLine is the style of the load rise/drop level on the load panel.
func LevelLine() LineSpec { return levelLine }

// Threshold is a horizontal line of the CPU panel.
type Threshold struct {
	// Name is the legend entry, e.g. "scale-out threshold 80 %".
	Name string
	// Percent is its height in percent.
	Percent float64
}

// CPUThresholds returns the lines d.CPUHigh and d.CPULow draw on the CPU
// panel (defaults applied, hidden ones left out).
func CPUThresholds(d Data) []Threshold {
	var out []Threshold
	for _, th := range []struct {
		v, def float64
		name   string
	}{{d.CPUHigh, DefaultCPUHigh, "scale-out threshold"}, {d.CPULow, DefaultCPULow, "scale-in threshold"}} {
		v := th.v
		if v == 0 {
			v = th.def
		}
		if v < 0 || !finite(v) {
			continue
		}
		out = append(out, Threshold{Name: fmt.Sprintf("%s %.0f %%", th.name, 100*v), Percent: 100 * v})
	}
	return out
}

// LoadLevelName is the legend entry of the load level line of a summary.
func LoadLevelName(s Summary) string {
	return fmt.Sprintf("rise/drop at %.0f %% of peak", 100*s.LoadLevel/s.PeakOfferedRPS)
}

// InstanceOrder lists the per-instance CPU keys of samples by first
// appearance with a finite value (ties in natural order), the order in
// which InstanceColors are given out.
func InstanceOrder(samples []Sample) []string { return instanceOrder(sortedSamples(samples)) }

// Label is the short label of a scaling event drawn on its mark, e.g.
// "+1 → 3" or "−2 → 1".
func (e Event) Label() string { return stepLabel(e) }

// ClockLabel formats a time since the start as the charts' axis does:
// "m:ss", or "h:mm:ss" from an hour on.
func ClockLabel(d time.Duration) string { return clockDur(d) }
