package report

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"
)

func TestWriteChartPNG(t *testing.T) {
	sec := time.Second
	c := Chart{
		Title: "supply vs demand", Subtitle: "trace step", End: 300 * sec,
		Panels: []ChartPanel{
			{Title: "policy a", YLabel: "members", Integer: true, Series: []ChartSeries{
				{Name: "demand", Role: RoleReference, Step: true, T: []time.Duration{0, 100 * sec}, V: []float64{2, 4}},
				{Name: "supply", Step: true, T: []time.Duration{0, 140 * sec}, V: []float64{2, 4}},
			}},
			{Title: "policy b", YLabel: "CPU", Series: []ChartSeries{
				{Name: "cpu", Role: RoleAlternative, T: []time.Duration{0, sec, 2 * sec}, V: []float64{0.5, math.NaN(), 0.7}},
			}},
			{Title: "empty", YLabel: "members"},
		},
	}
	var b bytes.Buffer
	if err := WriteChartPNG(&b, c); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds(); got.Dx() != PNGWidth || got.Dy() != 110+3*PanelHeight {
		t.Errorf("image %v, want %dx%d", got, PNGWidth, 110+3*PanelHeight)
	}
	// Different data give a different picture.
	c.Panels[0].Series[1].V[1] = 9
	var b2 bytes.Buffer
	if err := WriteChartPNG(&b2, c); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	c.Panels[0].Series[1].V[1] = 4
	WriteChartPNG(&b, c)
	if bytes.Equal(b.Bytes(), b2.Bytes()) {
		t.Error("changing a series did not change the image")
	}

	for _, bad := range []Chart{
		{},
		{Panels: []ChartPanel{{Series: []ChartSeries{{Name: "x", T: []time.Duration{0}}}}}},
		{Panels: []ChartPanel{{Series: []ChartSeries{{Name: "x", Role: "neon"}}}}},
	} {
		var out bytes.Buffer
		if err := WriteChartPNG(&out, bad); err == nil || out.Len() != 0 {
			t.Errorf("WriteChartPNG(%+v) = %v, wrote %d bytes; want an error and nothing written", bad, err, out.Len())
		} else if !strings.HasPrefix(err.Error(), "report: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}
