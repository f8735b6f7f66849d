package report

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Size of the PNG image in pixels. The SVG in the HTML report has the same
// layout at the same size in CSS pixels (75 % of it in points).
const (
	PNGWidth  = 1400
	PNGHeight = 1800
	pngDPI    = 96
)

// Figure size in points (1 pt = 1/72 in).
var (
	figW = vg.Length(PNGWidth) * vg.Inch / pngDPI
	figH = vg.Length(PNGHeight) * vg.Inch / pngDPI
)

// Layout in points.
const (
	margin      = vg.Length(18)
	legendW     = vg.Length(185)
	legendGap   = vg.Length(14)
	panelGap    = vg.Length(14)
	maxPlotPts  = 1200 // per series segment, before min/max decimation
	maxLabelLen = 28   // legend names are cut to this many runes
	labelRows   = 3    // rows of staggered event labels at the top of a panel
	headroom    = 1.25 // data area height / height of the highest tick
)

// Colours.
var (
	black       = color.RGBA{0x20, 0x20, 0x20, 0xff}
	grey        = color.RGBA{0x70, 0x70, 0x70, 0xff}
	gridGrey    = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	blue        = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	lightBlue   = color.RGBA{0x9e, 0xca, 0xe1, 0xff}
	darkBlue    = color.RGBA{0x08, 0x45, 0x94, 0xff}
	green       = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	orange      = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	red         = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	scaleOutClr = color.RGBA{0xc2, 0x18, 0x5b, 0xff} // magenta
	scaleInClr  = color.RGBA{0x00, 0x83, 0x8f, 0xff} // teal
	labelBack   = color.NRGBA{0xff, 0xff, 0xff, 0xe0}
	// instancePalette colours per-instance CPU lines, in order of first
	// appearance; it avoids the black of the pool average.
	instancePalette = []color.Color{
		color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
		color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
		color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
		color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0xbc, 0xbd, 0x22, 0xff},
		color.RGBA{0x17, 0xbe, 0xcf, 0xff}, color.RGBA{0xa6, 0xa6, 0xa6, 0xff},
	}
)

func sans(size vg.Length, bold bool) font.Font {
	f := font.Font{Typeface: "Liberation", Variant: "Sans"}
	if bold {
		f.Weight = xfont.WeightBold
	}
	return font.From(f, size)
}

func textStyle(size vg.Length, bold bool, clr color.Color) text.Style {
	return text.Style{Color: clr, Font: sans(size, bold), Handler: plot.DefaultTextHandler}
}

func lineStyle(clr color.Color, width vg.Length, dashes ...vg.Length) draw.LineStyle {
	return draw.LineStyle{Color: clr, Width: width, Dashes: dashes}
}

// markStyle is the line of an event kind's marks (see Marks).
func markStyle(kind string) (draw.LineStyle, bool) {
	m, ok := markSpecs[kind]
	return m.Line.style(), ok
}

// panel is one chart of the stack with the legend drawn beside it.
type panel struct {
	p      *plot.Plot
	legend []legendEntry
}

// legendEntry is one line of a panel's legend. Optional entries (instances)
// are dropped, replaced by a "+N more" line, when the legend does not fit.
type legendEntry struct {
	name     string
	thumb    plot.Thumbnailer
	optional bool
}

// drawFigure draws the whole report image (header and panels) on dc.
func drawFigure(dc draw.Canvas, d Data) {
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	s := Summarize(d)
	samples := sortedSamples(d.Samples)
	events := sortedEvents(d.Events)
	area := drawHeader(draw.Crop(dc, margin, -margin, margin, -margin), d, s)

	if len(samples) == 0 && len(events) == 0 {
		sty := textStyle(28, true, grey)
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
		c := area.Center()
		dc.FillText(sty, c, "no data")
		sty = textStyle(13, false, grey)
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
		dc.FillText(sty, vg.Point{X: c.X, Y: c.Y - 32}, "the demo recorded no samples and no events")
		return
	}

	xmax := max(s.Duration.Seconds(), 1)
	pts := make([]Point, len(samples))
	for i, smp := range samples {
		pts[i] = PlotPoint(smp)
	}
	var panels []panel
	for _, spec := range panelSpecs {
		var pn panel
		switch spec.ID {
		case "load":
			pn = loadPanel(spec, pts, events, xmax, s)
		case "pool":
			pn = poolPanel(spec, pts, events, xmax)
		case "cpu":
			pn = cpuPanel(spec, pts, samples, events, xmax, d)
		case "latency":
			pn = latencyPanel(spec, pts, events, xmax)
		case "errors":
			pn = errorsPanel(spec, pts, events, xmax)
		}
		panels = append(panels, pn)
	}
	plotsArea := draw.Crop(area, 0, -(legendW + legendGap), 0, 0)
	plots := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		plots[i] = []*plot.Plot{pn.p}
	}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadY: panelGap}
	canvases := plot.Align(plots, tiles, plotsArea)
	for i, pn := range panels {
		c := canvases[i][0]
		pn.p.Draw(c)
		dataC := pn.p.DataCanvas(c)
		lc := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: plotsArea.Max.X + legendGap, Y: dataC.Min.Y},
			Max: vg.Point{X: area.Max.X, Y: dataC.Max.Y},
		}}
		drawLegend(lc, pn.legend)
	}
}

// drawHeader draws the title lines and returns the area left below them.
func drawHeader(c draw.Canvas, d Data, s Summary) draw.Canvas {
	title := d.Title
	if title == "" {
		title = "tidepool demo"
	}
	y := c.Max.Y
	lines := []struct {
		sty text.Style
		txt string
	}{
		{textStyle(18, true, black), title},
		{textStyle(11, false, grey), metaLine(d, s)},
		{textStyle(11, false, black), factsLine(s)},
	}
	for _, l := range lines {
		l.sty.YAlign = draw.YTop
		c.FillText(l.sty, vg.Point{X: c.Min.X, Y: y}, l.txt)
		y -= l.sty.Rectangle(l.txt).Size().Y + 4
	}
	c.Max.Y = y - 8
	return c
}

// metaLine is "started … · profile … · duration … · N samples".
func metaLine(d Data, s Summary) string {
	var parts []string
	if !d.Started.IsZero() {
		parts = append(parts, "started "+d.Started.Format("2006-01-02 15:04:05 MST"))
	}
	if d.Profile != "" {
		parts = append(parts, "load profile "+d.Profile)
	}
	parts = append(parts, "duration "+fmtDur(s.Duration), fmt.Sprintf("%d samples", s.Samples))
	return strings.Join(parts, "  ·  ")
}

// factsLine is the one-line summary under the title.
func factsLine(s Summary) string {
	parts := []string{"no offered load"}
	if s.PeakOfferedRPS > 0 {
		parts[0] = "peak offered " + fmtRPS(s.PeakOfferedRPS)
	}
	if s.PoolKnown {
		parts = append(parts, fmt.Sprintf("pool %d → %d → %d members", s.StartPool, s.PeakPool, s.FinalPool))
	}
	if d, ok := firstNonNegative(s.ScaleOuts); ok {
		parts = append(parts, "first scale-out "+fmtDur(d)+" after load rise")
	}
	if d, ok := firstNonNegative(s.ScaleIns); ok {
		parts = append(parts, "first scale-in "+fmtDur(d)+" after load drop")
	}
	if s.P95 > 0 {
		parts = append(parts, "p95 "+fmtMS(s.P95))
	}
	parts = append(parts, "failed "+fmtPct(s.Failed, s.Requests), "late "+fmtPct(s.Late, s.Requests))
	return strings.Join(parts, "  ·  ")
}

func firstNonNegative(ds []time.Duration) (time.Duration, bool) {
	for _, d := range ds {
		if d >= 0 {
			return d, true
		}
	}
	return 0, false
}

// newPanel returns a plot with the shared time axis, a grid and the styles
// of the report.
func newPanel(title, ylabel string, xmax float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle = textStyle(13, true, black)
	p.Title.TextStyle.XAlign, p.Title.TextStyle.YAlign = draw.XCenter, draw.YTop
	p.Title.Padding = 4
	p.X.Label.Text = "time since demo start (min:s)"
	if xmax >= 3600 {
		p.X.Label.Text = "time since demo start (h:mm:ss)"
	}
	p.Y.Label.Text = ylabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle = textStyle(11, false, black)
		a.Tick.Label = textStyle(10, false, black)
		a.Padding = 0
		a.Tick.Length = 5
	}
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XCenter, draw.YTop
	p.Y.Tick.Label.XAlign, p.Y.Tick.Label.YAlign = draw.XRight, draw.YCenter
	p.Y.Label.TextStyle.XAlign, p.Y.Label.TextStyle.YAlign = draw.XCenter, draw.YBottom
	p.X.Label.TextStyle.XAlign, p.X.Label.TextStyle.YAlign = draw.XCenter, draw.YBottom
	p.X.Min, p.X.Max = 0, xmax
	p.X.Tick.Marker = plot.ConstantTicks(timeTicks(xmax))
	grid := plotter.NewGrid()
	grid.Vertical = lineStyle(gridGrey, 0.6)
	grid.Horizontal = lineStyle(gridGrey, 0.6)
	p.Add(grid)
	return p
}

// setY fixes the y range to [0, top*headroom] with ticks up to top, leaving a
// band above the highest tick for event labels.
func setY(p *plot.Plot, ticks []plot.Tick) {
	top := ticks[len(ticks)-1].Value
	p.Y.Min, p.Y.Max = 0, top*headroom
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
}

// xy is one point of a series; a non-finite Y is a gap.
type xy struct{ x, y float64 }

// addSeries adds a line split at gaps (isolated points become dots) and
// returns its legend entry and whether it had any point.
func addSeries(p *plot.Plot, name string, pts []xy, sty draw.LineStyle, step plotter.StepKind) (legendEntry, bool) {
	has := false
	for _, seg := range segments(pts) {
		has = true
		if len(seg) == 1 {
			sc := &plotter.Scatter{XYs: seg, GlyphStyle: draw.GlyphStyle{
				Color: sty.Color, Radius: max(sty.Width, 1.5), Shape: draw.CircleGlyph{},
			}}
			p.Add(sc)
			continue
		}
		p.Add(&plotter.Line{XYs: decimate(seg, maxPlotPts), LineStyle: sty, StepStyle: step})
	}
	return legendEntry{name: name, thumb: &plotter.Line{LineStyle: sty}}, has
}

// segments splits pts at non-finite y values.
func segments(pts []xy) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for _, pt := range pts {
		if !finite(pt.y) || !finite(pt.x) {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, plotter.XY{X: pt.x, Y: pt.y})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// decimate keeps, for each of about n/2 buckets of consecutive points, the
// minimum and maximum (in x order), so long runs keep their spikes while the
// number of drawn points stays bounded. Short series are returned unchanged.
func decimate(seg plotter.XYs, n int) plotter.XYs {
	if len(seg) <= n {
		return seg
	}
	buckets := n / 2
	out := make(plotter.XYs, 0, n+2)
	for b := range buckets {
		lo, hi := b*len(seg)/buckets, (b+1)*len(seg)/buckets
		imin, imax := lo, lo
		for i := lo; i < hi; i++ {
			if seg[i].Y < seg[imin].Y {
				imin = i
			}
			if seg[i].Y > seg[imax].Y {
				imax = i
			}
		}
		if imin > imax {
			imin, imax = imax, imin
		}
		out = append(out, seg[imin])
		if imax != imin {
			out = append(out, seg[imax])
		}
	}
	if last := seg[len(seg)-1]; out[len(out)-1] != last {
		out = append(out, last)
	}
	if first := seg[0]; out[0] != first {
		out = append(plotter.XYs{first}, out...)
	}
	return out
}

// maxY returns the largest finite y over the series (0 if none).
func maxY(series ...[]xy) float64 {
	m := 0.0
	for _, s := range series {
		for _, pt := range s {
			if finite(pt.y) {
				m = max(m, pt.y)
			}
		}
	}
	return m
}

// addMarks adds event markers (vertical lines, labelled for scaling events)
// for the given kinds and returns legend entries for the kinds present.
func addMarks(p *plot.Plot, events []Event, kinds ...string) []legendEntry {
	var sel []Event
	present := map[string]bool{}
	for _, ev := range events {
		if slices.Contains(kinds, ev.Kind) {
			sel = append(sel, ev)
			present[ev.Kind] = true
		}
	}
	if len(sel) == 0 {
		return nil
	}
	p.Add(marks{events: sel})
	var out []legendEntry
	for _, k := range kinds {
		if present[k] {
			ls, _ := markStyle(k)
			out = append(out, legendEntry{name: markSpecs[k].Name, thumb: vlineThumb(ls)})
		}
	}
	return out
}

// marks draws events as vertical lines across the data area; scaling events
// get a label in the band at the top, staggered over labelRows rows so that
// close events do not overprint (labels that still do not fit are left out).
type marks struct{ events []Event }

func (m marks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := textStyle(10, true, black)
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YBottom
	rowH := sty.Rectangle("+1 → 3").Size().Y + 2
	var rowEnd [labelRows]vg.Length
	for i := range rowEnd {
		rowEnd[i] = c.Min.X - 1000
	}
	for _, ev := range m.events {
		ls, ok := markStyle(ev.Kind)
		x := trX(ev.T.Seconds())
		if !ok || x < c.Min.X-0.5 || x > c.Max.X+0.5 {
			continue
		}
		c.StrokeLine2(ls, x, c.Min.Y, x, c.Max.Y)
		if !markSpecs[ev.Kind].Labelled {
			continue
		}
		txt := stepLabel(ev)
		w := sty.Width(txt)
		left := x + 3
		if left+w > c.Max.X {
			left = x - 3 - w
		}
		for row := range rowEnd {
			if left < rowEnd[row]+4 {
				continue
			}
			rowEnd[row] = left + w
			y := c.Max.Y - vg.Length(row+1)*rowH
			c.FillPolygon(labelBack, []vg.Point{
				{X: left - 1, Y: y - 1}, {X: left + w + 1, Y: y - 1},
				{X: left + w + 1, Y: y + rowH - 1}, {X: left - 1, Y: y + rowH - 1},
			})
			s := sty
			s.Color = ls.Color
			c.FillText(s, vg.Point{X: left, Y: y + 1}, txt)
			break
		}
	}
}

// vlineThumb is a legend thumbnail showing a vertical line.
type vlineThumb draw.LineStyle

func (t vlineThumb) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(draw.LineStyle(t), x, c.Min.Y, x, c.Max.Y)
}

// centerText writes a message in the middle of the data area.
type centerText string

func (t centerText) Plot(c draw.Canvas, _ *plot.Plot) {
	sty := textStyle(14, true, grey)
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
	c.FillText(sty, c.Center(), string(t))
}

// drawLegend draws entries top-down in c, dropping optional entries (and
// saying how many) when they do not all fit.
func drawLegend(c draw.Canvas, entries []legendEntry) {
	if len(entries) == 0 {
		return
	}
	l := plot.NewLegend()
	l.TextStyle = textStyle(10.5, false, black)
	l.Top, l.Left = true, true
	l.Padding = 3
	l.ThumbnailWidth = 22
	entryH := l.TextStyle.Rectangle("Mg").Size().Y + l.Padding
	capacity := max(int((c.Max.Y-c.Min.Y)/entryH), 1)
	if len(entries) > capacity {
		var required, optional []legendEntry
		for _, e := range entries {
			if e.optional {
				optional = append(optional, e)
			} else {
				required = append(required, e)
			}
		}
		keep := max(capacity-len(required)-1, 0)
		if keep < len(optional) {
			hidden := len(optional) - keep
			entries = append(required, optional[:keep]...)
			entries = append(entries, legendEntry{
				name:  fmt.Sprintf("+%d more (thin lines)", hidden),
				thumb: &plotter.Line{LineStyle: lineStyle(grey, 1)},
			})
		}
	}
	for _, e := range entries {
		l.Add(truncate(e.name, maxLabelLen), e.thumb)
	}
	l.Draw(c)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// niceTicks returns labelled ticks 0, step, …, top with top >= hi and a
// 1-2-5 step giving about 5 intervals; integer forces whole-number steps.
func niceTicks(hi float64, integer bool) []plot.Tick {
	if !(hi > 0) || math.IsInf(hi, 0) {
		hi = 1
	}
	raw := hi / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if integer {
		step = max(math.Ceil(step), 1)
	}
	n := int(math.Ceil(hi/step - 1e-9))
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
		if step*math.Pow(10, float64(decimals)) != math.Trunc(step*math.Pow(10, float64(decimals))) {
			decimals++
		}
	}
	ticks := make([]plot.Tick, 0, n+1)
	for i := 0; i <= n; i++ {
		v := float64(i) * step
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return ticks
}

// timeTicks returns labelled ticks ("m:ss", or "h:mm:ss" past an hour) from
// 0 to xmax seconds, about 8 to 16 of them.
func timeTicks(xmax float64) []plot.Tick {
	steps := []float64{1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if xmax/s <= 16 {
			step = s
			break
		}
	}
	var ticks []plot.Tick
	for v := 0.0; v <= xmax+1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: clock(v, xmax >= 3600)})
	}
	return ticks
}

// clock formats seconds as "m:ss" or "h:mm:ss".
func clock(sec float64, hours bool) string {
	t := int64(math.Round(sec))
	if hours {
		return fmt.Sprintf("%d:%02d:%02d", t/3600, t/60%60, t%60)
	}
	return fmt.Sprintf("%d:%02d", t/60, t%60)
}
