package simulate

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"tidepool/internal/loadgen"
)

// Extra traces of the shapes the shipped ones do not cover, to check that
// the policies generalise: square waves of other periods (down to near the
// seed's tick), sines of other periods, bursts at irregular times, ramps
// faster than a boot, a sawtooth, and periodic work days. Each has a
// Poisson version. "design" traces were used while designing the
// predictive policy; "fresh" ones were made afterwards and run once.
type extraTrace struct {
	name, set string
	step      time.Duration
	stages    []loadgen.Stage
}

func squareStages(hi, lo float64, hiD, loD time.Duration, cycles int) []loadgen.Stage {
	var st []loadgen.Stage
	for range cycles {
		st = append(st, hold(hi, hiD), hold(lo, loD))
	}
	return st
}

func repeat(n int, st ...loadgen.Stage) []loadgen.Stage {
	var out []loadgen.Stage
	for range n {
		out = append(out, st...)
	}
	return out
}

func sine(mean, amp float64, period, length time.Duration) []loadgen.Stage {
	return []loadgen.Stage{{Kind: loadgen.KindSine, From: mean, Amplitude: amp, Period: period, Duration: length}}
}

var extraTraces = func() []extraTrace {
	m, s := time.Minute, time.Second
	return []extraTrace{
		{"sq10m", "design", s, squareStages(125, 25, 5*m, 5*m, 12)},
		{"sq30m", "design", s, squareStages(165, 45, 15*m, 15*m, 6)},
		{"sq2h", "design", s, squareStages(95, 15, 40*m, 80*m, 4)},
		{"sq90s", "design", s, squareStages(85, 35, 45*s, 45*s, 40)},
		{"sq4m", "design", s, squareStages(135, 35, 2*m, 2*m, 20)},
		{"sine1h", "design", 10 * s, sine(105, 85, time.Hour, 5*time.Hour)},
		{"sine20m", "design", s, sine(75, 55, 20*m, 3*time.Hour)},
		{"bursts", "design", s, []loadgen.Stage{hold(45, 7*m), hold(205, 90*s), hold(45, 13*m), hold(165, 3*m), hold(45, 21*m), hold(305, 40*s), hold(45, 15*m)}},
		{"ramps", "design", s, []loadgen.Stage{hold(20, 5*m), ramp(20, 280, 10*m), hold(280, 10*m), ramp(280, 20, 5*m), hold(20, 10*m), ramp(20, 100, 30*m), hold(100, 10*m)}},
		{"daily3", "design", m, sine(105, 95, 6*time.Hour, 18*time.Hour)},
		{"workday", "design", s, repeat(4, hold(25, 20*m), ramp(25, 175, 5*m), hold(175, 25*m), ramp(175, 25, 10*m))},

		{"sq7m", "fresh", s, squareStages(145, 55, 210*s, 210*s, 16)},
		{"sq45m", "fresh", s, squareStages(235, 65, 15*m, 30*m, 5)},
		{"sq75s", "fresh", s, squareStages(105, 45, 35*s, 40*s, 48)},
		{"sq2m-wide", "fresh", s, squareStages(195, 25, 60*s, 60*s, 30)},
		{"sine40m", "fresh", 5 * s, sine(135, 105, 40*m, 4*time.Hour)},
		{"sine3h", "fresh", 30 * s, sine(95, 75, 3*time.Hour, 12*time.Hour)},
		{"bursts2", "fresh", s, []loadgen.Stage{hold(65, 4*m), hold(265, 20*s), hold(65, 9*m), hold(145, 4*m), hold(65, 6*m), hold(225, 2*m), hold(65, 17*m), hold(355, 75*s), hold(65, 12*m)}},
		{"sawtooth", "fresh", s, repeat(8, ramp(25, 205, 10*m), hold(25, 2*m))},
		{"fastramp", "fresh", s, []loadgen.Stage{hold(15, 10*m), ramp(15, 315, 4*m), hold(315, 20*m), ramp(315, 15, 2*m), hold(15, 20*m)}},
		{"workday2", "fresh", s, repeat(5, hold(35, 15*m), ramp(35, 255, 3*m), hold(255, 12*m), ramp(255, 35, 15*m))},
	}
}()

// ExtraTraces returns the extra traces of set ("design", "fresh" or "" for
// both), each followed by its Poisson version.
func extraTraceSet(t testing.TB, set string) []Trace {
	var out []Trace
	for i, e := range extraTraces {
		if set != "" && e.set != set {
			continue
		}
		tr, err := FromStages(e.name, e.stages, e.step)
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		out = append(out, tr, tr.Poisson(e.name+PoissonSuffix, uint64(100+i)))
	}
	return out
}

// TestPredictiveGeneralises runs the standard setups on the extra traces
// (seed profile, one-minute boot) and requires the predictive policy to
// violate the SLO less than half as long as target tracking and the
// HPA-like policy on average over each set. With -v (or
// TIDEPOOL_GENERALISE=1) it prints the per-trace figures: SLO violation and
// instance-hours over the oracle's.
func TestPredictiveGeneralises(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 42 traces")
	}
	pool := Pool{Max: 40, BootDelay: time.Minute, DrainDelay: 10 * time.Second, Timeout: 30 * time.Second}
	setups := Standard(Options{Limits: pool.Limits(), BootDelay: pool.BootDelay})
	for _, set := range []string{"design", "fresh"} {
		var results []Result
		var b strings.Builder
		fmt.Fprintf(&b, "%s traces: SLO violated (%%) / cost (× oracle)\n%-14s", set, "trace")
		for _, s := range setups[:len(setups)-1] {
			fmt.Fprintf(&b, " %17s", s.Name)
		}
		b.WriteString("\n")
		for _, tr := range extraTraceSet(t, set) {
			r, err := Compare(tr, pool, setups)
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, r)
			oracle := r.Metrics[len(r.Metrics)-1].InstanceHours
			fmt.Fprintf(&b, "%-14s", tr.Name)
			for _, e := range r.Metrics[:len(r.Metrics)-1] {
				fmt.Fprintf(&b, " %8.2f / %5.2fx", e.SLOViolation, e.InstanceHours/oracle)
			}
			b.WriteString("\n")
		}
		mean := map[string]Summary{}
		fmt.Fprintf(&b, "%-14s", "mean")
		for _, s := range Summarize(results) {
			mean[s.Policy] = s
			if s.Policy != OracleName {
				fmt.Fprintf(&b, " %8.2f / %5.2fx", s.SLOViolation, s.Cost)
			}
		}
		if testing.Verbose() || os.Getenv("TIDEPOOL_GENERALISE") != "" {
			t.Log("\n" + b.String())
		}
		p := mean[PredictiveName].SLOViolation
		for _, other := range []string{TargetName, HPAName} {
			if o := mean[other].SLOViolation; !(p < o/2) || math.IsNaN(p) {
				t.Errorf("%s traces: predictive violates the SLO %.2f%% of the time, %s %.2f%%; want less than half", set, p, other, o)
			}
		}
	}
}
