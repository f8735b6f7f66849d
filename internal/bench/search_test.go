package bench

import (
	"slices"
	"strings"
	"testing"
	"time"

	"tidepool/internal/loadgen"
)

func TestRateSearch(t *testing.T) {
	tests := []struct {
		name      string
		s         rateSearch
		capacity  float64 // a trial passes at or below this rate
		wantRates []float64
		wantLo    float64
		wantHi    float64
	}{
		{"doubles then bisects", rateSearch{start: 5000, max: 50000, precision: 0.15, maxTrials: 10}, 12300,
			[]float64{5000, 10000, 20000, 15000, 13000, 12000}, 12000, 13000},
		{"reaches the cap", rateSearch{start: 5000, max: 12000, precision: 0.15, maxTrials: 10}, 1e9,
			[]float64{5000, 10000, 12000}, 12000, 0},
		{"first trial fails: halves down", rateSearch{start: 5000, max: 50000, precision: 0.15, maxTrials: 10}, 1400,
			[]float64{5000, 2500, 1300, 1900, 1600, 1500}, 1300, 1500},
		{"trial limit", rateSearch{start: 5000, max: 50000, precision: 0.15, maxTrials: 3}, 12300,
			[]float64{5000, 10000, 20000}, 10000, 20000},
		{"nothing passes", rateSearch{start: 40, max: 100, precision: 0.15, maxTrials: 10}, 1,
			[]float64{40, 20, 10}, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			var rates []float64
			for {
				r, ok := s.next()
				if !ok {
					break
				}
				if len(rates) > 20 {
					t.Fatalf("search does not end: %v", rates)
				}
				rates = append(rates, r)
				s.record(r, r <= tt.capacity)
			}
			if !slices.Equal(rates, tt.wantRates) || s.lo != tt.wantLo || s.hi != tt.wantHi {
				t.Errorf("trials %v, highest pass %g, lowest fail %g; want %v, %g, %g", rates, s.lo, s.hi, tt.wantRates, tt.wantLo, tt.wantHi)
			}
		})
	}
}

func TestRoundRate(t *testing.T) {
	for in, want := range map[float64]float64{12345: 12000, 15000: 15000, 7500: 7500, 1875: 1900, 62.5: 63, 0: 0, -3: 0} {
		if got := roundRate(in); got != want {
			t.Errorf("roundRate(%g) = %g; want %g", in, got, want)
		}
	}
}

func TestJudgeTrial(t *testing.T) {
	tests := []struct {
		name       string
		s          loadgen.Summary
		wantPass   bool
		wantReason string
	}{
		{"clean", loadgen.Summary{Planned: 1000, Sent: 1000, OK: 1000, P99: 3 * time.Millisecond}, true, "0.00% errors, p99 3ms"},
		{"under 1%", loadgen.Summary{Planned: 1000, Sent: 1000, OK: 991, Errors: map[string]int{"timeout": 9}, P99: 3 * time.Millisecond}, true, "0.90% errors"},
		{"1% errors", loadgen.Summary{Planned: 1000, Sent: 1000, OK: 990, Errors: map[string]int{"timeout": 6, "conn_reset": 4}}, false, "1.00% errors (conn_reset=4 timeout=6)"},
		{"missed count", loadgen.Summary{Planned: 1000, Sent: 980, OK: 980, Missed: 20}, false, "2.00% errors (missed=20)"},
		{"slow", loadgen.Summary{Planned: 1000, Sent: 1000, OK: 1000, P99: 1500 * time.Millisecond}, false, "p99 1.5s > 1s"},
		{"empty", loadgen.Summary{}, false, "nothing planned"},
	}
	for _, tt := range tests {
		pass, reason := judgeTrial(tt.s, time.Second)
		if pass != tt.wantPass || !strings.Contains(reason, tt.wantReason) {
			t.Errorf("%s: judgeTrial = %v, %q; want %v, %q", tt.name, pass, reason, tt.wantPass, tt.wantReason)
		}
	}
}
