package simulate

import (
	"testing"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/loadgen"
)

// TestPredictiveForecastsPeriodicLoad runs the predictive policy on a
// square wave of 20 minutes (10 at 165 req/s, 10 at 45) with the seed
// profile and a one-minute boot: once two periods are seen, the forecast
// adds the members before each rise from the third, so the SLO is violated far less than
// without the forecast, and less than by target tracking.
func TestPredictiveForecastsPeriodicLoad(t *testing.T) {
	var stages []loadgen.Stage
	for range 8 {
		stages = append(stages, hold(165, 10*time.Minute), hold(45, 10*time.Minute))
	}
	tr, err := FromStages("square-20m", stages, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pool := Pool{Max: 40, BootDelay: time.Minute, DrainDelay: 10 * time.Second, Timeout: 30 * time.Second}
	o := Options{Limits: pool.Limits(), BootDelay: pool.BootDelay}
	with := Predictive(o)
	without := Predictive(o)
	p := without.Policy.(policy.Predictive)
	p.Seasons = 0
	without.Policy, without.Name = p, "no-forecast"
	r, err := Compare(tr, pool, []Setup{with, without, TargetTracking(o), OracleSetup()})
	if err != nil {
		t.Fatal(err)
	}
	forecasts := 0
	for _, a := range r.Runs[0].Actions {
		if a.Reason == policy.ReasonForecast {
			forecasts++
			// The period is found once the history holds it twice (a
			// block of 15 s rates either way).
			if a.T < 38*time.Minute {
				t.Errorf("forecast at %s, before two periods were seen", a.T)
			}
		}
	}
	if forecasts < 5 {
		t.Errorf("%d changes by the forecast, want one before each rise from the third period (at least 5)", forecasts)
	}
	with_, without_, tt := r.Metrics[0].SLOViolation, r.Metrics[1].SLOViolation, r.Metrics[2].SLOViolation
	if !(with_ < without_/2 && with_ < tt/2) {
		t.Errorf("SLO violated %.2f%% with the forecast, %.2f%% without, %.2f%% by target tracking; want the forecast to halve both", with_, without_, tt)
	}
	t.Logf("SLO violated: predictive %.2f%%, without forecast %.2f%%, target tracking %.2f%%, oracle %.2f%%", with_, without_, tt, r.Metrics[3].SLOViolation)
}
