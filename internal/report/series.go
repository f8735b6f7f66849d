package report

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Roles give a chart series its look, in the report's style.
const (
	// RoleReference is what the others are measured against (e.g. demand):
	// a thick light grey line.
	RoleReference = "reference"
	// RoleMain is the main series (e.g. supply): a dark blue line.
	RoleMain = "main"
	// RoleSecondary accompanies the main series (e.g. members in any
	// state): a thick light blue line.
	RoleSecondary = "secondary"
	// RoleAlternative is compared with the main series (e.g. a
	// measurement against a simulation): an orange line.
	RoleAlternative = "alternative"
)

var roleStyles = map[string]draw.LineStyle{
	RoleReference:   lineStyle(gridGrey, 6),
	RoleMain:        lineStyle(darkBlue, 1.6),
	RoleSecondary:   lineStyle(lightBlue, 4),
	RoleAlternative: lineStyle(orange, 1.6),
}

// ChartSeries is one line of a ChartPanel.
type ChartSeries struct {
	// Name is the legend entry.
	Name string
	// Role sets the look; "" means RoleMain.
	Role string
	// T and V are the points (same length); a NaN value is a gap.
	T []time.Duration
	V []float64
	// Step draws a step function: V[i] holds until T[i+1], the last value
	// until the chart's End. Otherwise points are joined by straight lines.
	Step bool
}

// ChartPanel is one panel of a Chart, sharing the time axis.
type ChartPanel struct {
	Title, YLabel string
	// Integer forces whole-number y ticks (counts of members).
	Integer bool
	Series  []ChartSeries
}

// Chart is a stack of time-series panels in the style of the demo report.
type Chart struct {
	// Title and Subtitle head the image.
	Title, Subtitle string
	// XLabel labels the time axis; "" means "time (min:s)" or "(h:mm:ss)".
	XLabel string
	// End is the end of the time axis (from 0).
	End time.Duration
	// Panels are drawn top to bottom.
	Panels []ChartPanel
	// Width is the image width in pixels; 0 means PNGWidth. Each panel is
	// PanelHeight pixels high.
	Width int
}

// PanelHeight is the height of one Chart panel in pixels.
const PanelHeight = 260

// WriteChartPNG renders c as a PNG image and writes it to w (not closed).
// Nothing is written if rendering fails.
func WriteChartPNG(w io.Writer, c Chart) (err error) {
	if len(c.Panels) == 0 {
		return errors.New("report: chart without panels")
	}
	for _, p := range c.Panels {
		for _, s := range p.Series {
			if len(s.T) != len(s.V) {
				return fmt.Errorf("report: chart series %q: %d times, %d values", s.Name, len(s.T), len(s.V))
			}
			if _, ok := roleStyles[s.Role]; s.Role != "" && !ok {
				return fmt.Errorf("report: chart series %q: unknown role %q", s.Name, s.Role)
			}
		}
	}
	width := c.Width
	if width <= 0 {
		width = PNGWidth
	}
	height := 110 + PanelHeight*len(c.Panels)
	b, err := func() (b []byte, err error) {
		defer guard("chart", &err)
		w, h := vg.Length(width)*vg.Inch/pngDPI, vg.Length(height)*vg.Inch/pngDPI
		cv := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI))
		drawChart(draw.New(cv), c)
		var buf bytes.Buffer
		if _, err := (vgimg.PngCanvas{Canvas: cv}).WriteTo(&buf); err != nil {
			return nil, fmt.Errorf("report: encode png: %w", err)
		}
		return buf.Bytes(), nil
	}()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("report: write png: %w", err)
	}
	return nil
}

func drawChart(dc draw.Canvas, c Chart) {
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	area := draw.Crop(dc, margin, -margin, margin, -margin)
	y := area.Max.Y
	for _, l := range []struct {
		size vg.Length
		bold bool
		txt  string
	}{{18, true, c.Title}, {11, false, c.Subtitle}} {
		if l.txt == "" {
			continue
		}
		sty := textStyle(l.size, l.bold, black)
		if !l.bold {
			sty.Color = grey
		}
		sty.YAlign = draw.YTop
		area.FillText(sty, vg.Point{X: area.Min.X, Y: y}, l.txt)
		y -= sty.Rectangle(l.txt).Size().Y + 4
	}
	area.Max.Y = y - 8

	xmax := math.Max(c.End.Seconds(), 1)
	var panels []panel
	for _, cp := range c.Panels {
		p := newPanel(cp.Title, cp.YLabel, xmax)
		switch {
		case c.XLabel != "":
			p.X.Label.Text = c.XLabel
		case xmax >= 3600:
			p.X.Label.Text = "time (h:mm:ss)"
		default:
			p.X.Label.Text = "time (min:s)"
		}
		var all [][]xy
		var legend []legendEntry
		// References first, so the other lines are drawn over them.
		for _, pass := range []bool{true, false} {
			for _, s := range cp.Series {
				if (s.Role == RoleReference) != pass {
					continue
				}
				pts := make([]xy, 0, len(s.T)+1)
				for i, t := range s.T {
					pts = append(pts, xy{t.Seconds(), s.V[i]})
				}
				step := plotter.NoStep
				if s.Step {
					step = plotter.PostStep
					if n := len(pts); n > 0 && pts[n-1].x < xmax {
						pts = append(pts, xy{xmax, pts[n-1].y})
					}
				}
				all = append(all, pts)
				sty, ok := roleStyles[s.Role]
				if !ok {
					sty = roleStyles[RoleMain]
				}
				if e, ok := addSeries(p, s.Name, pts, sty, step); ok {
					legend = append(legend, e)
				}
			}
		}
		setY(p, niceTicks(math.Max(maxY(all...), 1), cp.Integer))
		if len(legend) == 0 {
			p.Add(centerText("no data"))
		}
		panels = append(panels, panel{p: p, legend: legend})
	}
	plotsArea := draw.Crop(area, 0, -(legendW + legendGap), 0, 0)
	plots := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		plots[i] = []*plot.Plot{pn.p}
	}
	canvases := plot.Align(plots, draw.Tiles{Rows: len(panels), Cols: 1, PadY: panelGap}, plotsArea)
	for i, pn := range panels {
		cv := canvases[i][0]
		pn.p.Draw(cv)
		dataC := pn.p.DataCanvas(cv)
		lc := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: plotsArea.Max.X + legendGap, Y: dataC.Min.Y},
			Max: vg.Point{X: area.Max.X, Y: dataC.Max.Y},
		}}
		drawLegend(lc, pn.legend)
	}
}
