package report

import (
	"math"
	"testing"
	"time"
)

func TestPlotPoint(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		in   Sample
		want map[string]float64
		cpu  map[string]float64
	}{
		{
			name: "known",
			in: Sample{T: 1500 * time.Millisecond, OfferedRPS: 12.5, AnsweredRPS: 12, Errors: 2, Late: 1,
				P50: 20 * time.Millisecond, P95: 45500 * time.Microsecond, P99: time.Second,
				PoolSize: 3, RunningSize: 2, StartingSize: 1, DrainingSize: 0, AvgCPU: 0.815,
				CPU: map[string]float64{"a": 0.5, "b": nan}},
			want: map[string]float64{KeyOffered: 12.5, KeyAnswered: 12, KeyFailed: 2, KeyLate: 1,
				KeyP50: 20, KeyP95: 45.5, KeyP99: 1000, KeyPool: 3, KeyRunning: 2, KeyStarting: 1, KeyDraining: 0, KeyAvgCPU: 81.5},
			cpu: map[string]float64{"a": 50, "b": nan},
		},
		{
			name: "unknown",
			in:   Sample{PoolSize: -1, RunningSize: -1, StartingSize: -1, DrainingSize: -1, AvgCPU: nan},
			want: map[string]float64{KeyOffered: 0, KeyAnswered: 0, KeyFailed: 0, KeyLate: 0,
				KeyP50: nan, KeyP95: nan, KeyP99: nan, KeyPool: nan, KeyRunning: nan, KeyStarting: nan, KeyDraining: nan, KeyAvgCPU: nan},
		},
	}
	same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlotPoint(tt.in)
			if got.T != tt.in.T.Seconds() {
				t.Errorf("T = %v, want %v", got.T, tt.in.T.Seconds())
			}
			if len(got.Values) != len(tt.want) {
				t.Errorf("Values = %v, want %v", got.Values, tt.want)
			}
			for k, w := range tt.want {
				if v, ok := got.Values[k]; !ok || !same(v, w) {
					t.Errorf("Values[%s] = %v (present %v), want %v", k, v, ok, w)
				}
			}
			if len(got.CPU) != len(tt.cpu) {
				t.Errorf("CPU = %v, want %v", got.CPU, tt.cpu)
			}
			for k, w := range tt.cpu {
				if !same(got.CPU[k], w) {
					t.Errorf("CPU[%s] = %v, want %v", k, got.CPU[k], w)
				}
			}
		})
	}
}

// TestPanelsAreComplete checks that every series of Panels reads a value
// PlotPoint produces and every mark kind has a style, so a renderer that
// follows the spec (the live page) never meets an unknown key.
func TestPanelsAreComplete(t *testing.T) {
	values := PlotPoint(Sample{}).Values
	marks := Marks()
	ids := map[string]bool{}
	for _, p := range Panels() {
		if p.ID == "" || ids[p.ID] {
			t.Errorf("panel %q: empty or duplicate ID", p.Title)
		}
		ids[p.ID] = true
		if len(p.Series) == 0 {
			t.Errorf("panel %s has no series", p.ID)
		}
		for _, s := range p.Series {
			if _, ok := values[s.Key]; !ok {
				t.Errorf("panel %s series %q: key %q not in PlotPoint", p.ID, s.Name, s.Key)
			}
			if len(s.Line.Color) != 7 || s.Line.Width <= 0 {
				t.Errorf("panel %s series %q: line %+v", p.ID, s.Name, s.Line)
			}
		}
		for _, k := range p.Marks {
			if _, ok := marks[k]; !ok {
				t.Errorf("panel %s: mark kind %q has no MarkSpec", p.ID, k)
			}
		}
	}
	// Panels returns a copy.
	ps := Panels()
	ps[0].Series[0].Name = "changed"
	if Panels()[0].Series[0].Name == "changed" {
		t.Error("Panels shares its slices with the report")
	}
}

func TestCPUThresholds(t *testing.T) {
	tests := []struct {
		high, low float64
		want      []Threshold
	}{
		{0, 0, []Threshold{{"scale-out threshold 80 %", 80}, {"scale-in threshold 20 %", 20}}},
		{0.7, -1, []Threshold{{"scale-out threshold 70 %", 70}}},
	}
	for _, tt := range tests {
		got := CPUThresholds(Data{CPUHigh: tt.high, CPULow: tt.low})
		if len(got) != len(tt.want) {
			t.Fatalf("CPUThresholds(%v, %v) = %v, want %v", tt.high, tt.low, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("CPUThresholds(%v, %v)[%d] = %v, want %v", tt.high, tt.low, i, got[i], tt.want[i])
			}
		}
	}
}

func TestAlertsCell(t *testing.T) {
	tests := []struct {
		in   map[string]string
		want string
	}{
		{nil, "–"},
		{map[string]string{"A": AlertInactive}, "none"},
		{map[string]string{"B": AlertFiring, "A": AlertPending, "C": AlertInactive}, "A pending, B firing"},
	}
	for _, tt := range tests {
		if got := alertsCell(tt.in); got != tt.want {
			t.Errorf("alertsCell(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
