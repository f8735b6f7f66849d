package simulate

import (
	"math"
	"testing"
	"time"

	"tidepool/internal/autoscaler/policy"
)

// TestArrivalSignal checks the arrival rate the policy sees: one rate per
// evaluation, the last at the tick (never after it), each the members'
// counters' increase between their last two samples in the arrival window;
// it shows a load step one scrape later while the saturated CPU cannot;
// new members are missing from it until they have two samples.
func TestArrivalSignal(t *testing.T) {
	// 30 req/s, 90 from 100 s; members serve 20 req/s at 100 % CPU.
	tr := Trace{Name: "step", Start: []time.Duration{0, 100 * sec}, Rate: []float64{30, 90}, End: 200 * sec}
	pool := Pool{Capacity: 20, Max: 10, Initial: 3, BootDelay: 30 * sec}
	pipe := Pipeline{Scrape: 10 * sec, Offset: 5 * sec, Window: 20 * sec, Eval: 10 * sec, ArrivalWindow: 30 * sec, History: 50 * sec}
	tests := []struct {
		name string
		grow int
		want map[time.Duration]float64 // latest rate at the tick
	}{
		// At 110 s the window's last two samples (95 s, 105 s) straddle the
		// step.
		{"step", 0, map[time.Duration]float64{20 * sec: 30, 100 * sec: 30, 110 * sec: 60, 120 * sec: 90, 190 * sec: 90}},
		// 3 members added at 10 s serve from 40 s; their samples are at
		// 45 s and 55 s: at 50 s only the old members' share (30 req/s
		// over 6 members from 40 s) is counted.
		{"new members counted once scraped twice", 3, map[time.Duration]float64{40 * sec: 30, 50 * sec: 22.5, 60 * sec: 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []policy.Observation
			var at []time.Duration
			if _, err := Simulate(tr, pool, Setup{Name: "spy", Policy: spy{calls: &calls, at: &at, grow: tt.grow}, Tick: 10 * sec, Metrics: pipe}); err != nil {
				t.Fatal(err)
			}
			seen := 0
			for i, obs := range calls {
				l := obs.Metrics.Load
				now := epoch.Add(at[i])
				if !l.End.Equal(now) || l.Step != pipe.Eval || l.Window != 10*sec {
					t.Fatalf("at %s: load ends %s every %s over %s, want at the tick every 10s over 10s", at[i], l.End.Sub(epoch), l.Step, l.Window)
				}
				if want := min(int(at[i]/pipe.Eval), 6); len(l.Rates) != want {
					t.Errorf("at %s: %d rates, want %d (one per evaluation, History 50s)", at[i], len(l.Rates), want)
				}
				if wantCost := map[bool]float64{true: 0.05, false: 0}[obs.Metrics.Valid]; l.CostPerRequest != wantCost {
					t.Errorf("at %s: cost per request %v with CPU %+v, want %v (1/capacity once the CPU is known)", at[i], l.CostPerRequest, obs.Metrics, wantCost)
				}
				want, ok := tt.want[at[i]]
				if !ok {
					continue
				}
				seen++
				if got := l.Rates[len(l.Rates)-1]; math.Abs(got-want) > 1e-9 {
					t.Errorf("at %s: latest rate %v, want %v", at[i], got, want)
				}
			}
			if seen != len(tt.want) {
				t.Errorf("checked %d ticks, want %d", seen, len(tt.want))
			}
			if tt.grow == 0 {
				// The CPU the policy sees at 120 s is stuck at 100 %.
				if m := calls[11].Metrics; !m.Valid || m.CPU < 0.99 {
					t.Errorf("CPU at 120s = %+v, want saturated", m)
				}
			}
		})
	}
}
