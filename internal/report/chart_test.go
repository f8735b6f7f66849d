package report

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

func tickLabels(ticks []plot.Tick) []string {
	var out []string
	for _, t := range ticks {
		out = append(out, t.Label)
	}
	return out
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		hi      float64
		integer bool
		want    []string
	}{
		{60, false, []string{"0", "20", "40", "60"}},
		{61, false, []string{"0", "20", "40", "60", "80"}},
		{100, false, []string{"0", "20", "40", "60", "80", "100"}},
		{1, false, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0.9, false, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{1250, false, []string{"0", "250", "500", "750", "1000", "1250"}},
		{4, true, []string{"0", "1", "2", "3", "4"}},
		{1, true, []string{"0", "1"}},
		{23, true, []string{"0", "5", "10", "15", "20", "25"}},
		{0, false, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{math.NaN(), true, []string{"0", "1"}},
		{math.Inf(1), true, []string{"0", "1"}},
	}
	for _, tt := range tests {
		if got := tickLabels(niceTicks(tt.hi, tt.integer)); !slices.Equal(got, tt.want) {
			t.Errorf("niceTicks(%v, %v) = %v, want %v", tt.hi, tt.integer, got, tt.want)
		}
	}
}

func TestTimeTicks(t *testing.T) {
	tests := []struct {
		xmax       float64
		wantFirst  string
		wantSecond string
		wantLast   string
	}{
		{240, "0:00", "0:15", "4:00"},
		{29, "0:00", "0:02", "0:28"},
		{1, "0:00", "0:01", "0:01"},
		{3600, "0:00:00", "0:05:00", "1:00:00"},
		{7 * 3600, "0:00:00", "0:30:00", "7:00:00"},
	}
	for _, tt := range tests {
		got := tickLabels(timeTicks(tt.xmax))
		if len(got) < 2 || len(got) > 17 || got[0] != tt.wantFirst || got[1] != tt.wantSecond || got[len(got)-1] != tt.wantLast {
			t.Errorf("timeTicks(%v) = %v, want %s, %s … %s with 2..17 ticks", tt.xmax, got, tt.wantFirst, tt.wantSecond, tt.wantLast)
		}
	}
}

func TestInstanceOrder(t *testing.T) {
	samples := []Sample{
		{CPU: map[string]float64{"app-10": 0.1, "app-2": 0.1, "late": math.NaN()}},
		{CPU: map[string]float64{"app-1": 0.2, "app-10": 0.2}},
		{CPU: map[string]float64{"late": 0.5, "10.0.0.9": 0.1, "10.0.0.10": 0.1}},
	}
	want := []string{"app-2", "app-10", "app-1", "10.0.0.9", "10.0.0.10", "late"}
	if got := instanceOrder(samples); !slices.Equal(got, want) {
		t.Errorf("instanceOrder = %v, want %v (first appearance, then natural order)", got, want)
	}
}

func TestSegments(t *testing.T) {
	nan := math.NaN()
	pts := []xy{{0, 1}, {1, 2}, {2, nan}, {3, 4}, {4, math.Inf(1)}, {5, nan}, {6, 7}, {7, 8}}
	got := segments(pts)
	want := []plotter.XYs{{{X: 0, Y: 1}, {X: 1, Y: 2}}, {{X: 3, Y: 4}}, {{X: 6, Y: 7}, {X: 7, Y: 8}}}
	if !slices.EqualFunc(got, want, func(a, b plotter.XYs) bool { return slices.Equal(a, b) }) {
		t.Errorf("segments = %v, want %v", got, want)
	}
	if got := segments([]xy{{0, nan}}); len(got) != 0 {
		t.Errorf("segments(all NaN) = %v, want none", got)
	}
}

func TestDecimate(t *testing.T) {
	seg := make(plotter.XYs, 10000)
	for i := range seg {
		seg[i] = plotter.XY{X: float64(i), Y: math.Sin(float64(i) / 50)}
	}
	seg[4321].Y = 100 // a one-sample spike must survive
	got := decimate(seg, 1000)
	if len(got) > 1002 {
		t.Errorf("decimate kept %d points, want <= 1002", len(got))
	}
	if got[0] != seg[0] || got[len(got)-1] != seg[len(seg)-1] {
		t.Errorf("decimate lost an end point: %v … %v", got[0], got[len(got)-1])
	}
	if !slices.Contains(got, seg[4321]) {
		t.Errorf("decimate lost the spike at x=4321")
	}
	if !slices.IsSortedFunc(got, func(a, b plotter.XY) int { return int(a.X - b.X) }) {
		t.Errorf("decimate output not in x order")
	}
	short := seg[:500]
	if got := decimate(short, 1000); len(got) != len(short) {
		t.Errorf("decimate changed a short series: %d points, want %d", len(got), len(short))
	}
}

func TestStepLabel(t *testing.T) {
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{From: 2, To: 3}, "+1 → 3"},
		{Event{From: 4, To: 1}, "−3 → 1"},
		{Event{From: 2, To: 2}, "→ 2"},
	}
	for _, tt := range tests {
		if got := stepLabel(tt.ev); got != tt.want {
			t.Errorf("stepLabel(%d→%d) = %q, want %q", tt.ev.From, tt.ev.To, got, tt.want)
		}
	}
}
