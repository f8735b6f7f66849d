package validate

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"tidepool/internal/buildbin"
	"tidepool/internal/demo"
	"tidepool/internal/loopback"
	"tidepool/internal/report"
	"tidepool/internal/simulate"
)

func TestMain(m *testing.M) {
	code := m.Run()
	buildbin.Cleanup()
	os.Exit(code)
}

// TestValidate puts Stages through the real local stack (the demo:
// local cloud, member processes in cgroups, load balancer, Prometheus,
// Alertmanager, autoscaler) and through the simulator with the same
// settings, and requires the pool-size curves to agree (Validation.OK: mean
// difference at most 0.5 members, within ±1 member 80 % of the time, equal
// peaks ±1). The seed's webhook policy is validated by default (about 3
// minutes); TIDEPOOL_VALIDATE takes a `tidepool simulate -validate-policy`
// value instead (webhook, target-tracking, predictive, both or all; about 3
// minutes per policy).
func TestValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo: about 3 minutes per policy")
	}
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	policies := []string{"webhook"}
	if v := os.Getenv("TIDEPOOL_VALIDATE"); v != "" {
		if policies, err = Policies(v); err != nil {
			t.Fatalf("TIDEPOOL_VALIDATE %v", err)
		}
	}
	for _, pol := range policies {
		t.Run(pol, func(t *testing.T) {
			memberNet, nlbNet := loopback.Ranges()
			out := t.TempDir()
			var progress bytes.Buffer
			cfg := Config{Policy: pol, Demo: demo.Config{
				OutDir:       out,
				AppCommand:   []string{bin, "app"},
				MemberNet:    memberNet,
				NLBNet:       nlbNet,
				CgroupParent: fmt.Sprintf("tidepool-validatetest-%d", rand.IntN(1e6)),
				Out:          &progress,
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			v, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("Validate: %v\ndemo output:\n%s", err, progress.String())
			}
			t.Log(v.Summary())
			var img bytes.Buffer
			if err := v.WriteChart(&img); err != nil {
				t.Fatal(err)
			}
			if _, err := png.Decode(bytes.NewReader(img.Bytes())); err != nil {
				t.Errorf("chart: %v", err)
			}
			if !v.OK && v.HostOverloaded() {
				// The simulator models members that get their CPU quota;
				// a starved host breaks that premise, not the simulator.
				t.Skipf("host overloaded during the real run, comparison not meaningful: %s", v.Summary())
			}
			if !v.OK {
				t.Errorf("%s\ndemo output:\n%s", v.Summary(), progress.String())
			}
			if v.PeakReal < 3 {
				t.Errorf("the real pool peaked at %d members, want the load to take it to at least 3", v.PeakReal)
			}
		})
	}
}

// TestValidationCompare checks the comparison on hand-made curves.
func TestValidationCompare(t *testing.T) {
	v := Validation{Tolerance: 0.5, Sim: simulate.Run{Size: simulate.Series{T: []time.Duration{0, 10 * sec, 20 * sec}, V: []int{1, 3, 1}}}}
	for s := range 30 {
		real := 1.0
		if s >= 11 && s < 21 { // one second late
			real = 3
		}
		v.RealSize = append(v.RealSize, simulate.Point{T: time.Duration(s) * sec, V: real})
	}
	v.compare()
	// Seconds 10 and 20 differ by 2 members: mean 4/30, within ±1 28/30.
	if !near(v.MeanAbsDiff, 4.0/30) || !near(v.Within, 28.0/30) || v.PeakReal != 3 || v.PeakSim != 3 || !v.OK {
		t.Errorf("compare: mean %v within %v peaks %d/%d ok %v; want 0.133, 0.933, 3/3, true", v.MeanAbsDiff, v.Within, v.PeakReal, v.PeakSim, v.OK)
	}
	v.RealSize[15].V = 9
	v.compare()
	if v.OK {
		t.Errorf("compare with a peak 6 members off: OK, want not OK (%s)", v.Summary())
	}
}

func TestFitCapacity(t *testing.T) {
	var samples []report.Sample
	for i := range 20 {
		// 3 running members at 60 % serving 18 req/s: 10 req/s each at 100 %
		// (what was answered counts, not what was offered).
		samples = append(samples, report.Sample{T: time.Duration(i) * sec, OfferedRPS: 25, AnsweredRPS: 18, PoolSize: 3, RunningSize: 3, AvgCPU: 0.6})
	}
	// Ignored: a member booting, CPU saturated or too low to measure.
	samples = append(samples,
		report.Sample{AnsweredRPS: 50, PoolSize: 4, RunningSize: 3, AvgCPU: 0.6},
		report.Sample{AnsweredRPS: 50, PoolSize: 3, RunningSize: 3, AvgCPU: 1},
		report.Sample{AnsweredRPS: 1, PoolSize: 3, RunningSize: 3, AvgCPU: 0.1})
	if c, ok := FitCapacity(samples); !ok || !near(c, 10) {
		t.Errorf("FitCapacity = %v, %v; want 10", c, ok)
	}
	if _, ok := FitCapacity(samples[20:]); ok {
		t.Error("FitCapacity without qualifying samples: ok")
	}
}

const sec = time.Second

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }
