package simulate

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/loadgen"
	"tidepool/internal/monitoring"
)

const sec = time.Second

// stepTrace is 10 req/s for 100 s, then 20 req/s until 300 s. With
// stepPool (10 req/s per member, SLO at 50 %) the demand steps from 2 to 4
// members.
var stepTrace = Trace{Name: "step", Start: []time.Duration{0, 100 * sec}, Rate: []float64{10, 20}, End: 300 * sec}

var stepPool = Pool{Capacity: 10, SLO: 0.5, Min: 1, Max: 10, BootDelay: 30 * sec}

// instant is a pipeline that shows the last second's CPU at once.
var instant = Pipeline{Scrape: sec, Window: sec, Eval: sec}

// TestStepClosedForm runs the step from 2 to 4 members through the real
// policies and checks the supply and the metrics against values worked out
// by hand.
func TestStepClosedForm(t *testing.T) {
	limits := stepPool.Limits()
	tests := []struct {
		name       string
		setup      Setup
		wantSupply Series
		wantSize   Series
		wantU      float64 // θU
		wantTauU   float64
		wantViol   float64 // SLO violation, % of time
	}{
		{
			// The CPU is 100 % from 100 s (20 req/s on 2 members); the tick
			// at 110 s sees it and asks for 2 × 100 % / 50 % = 4; the new
			// members serve 30 s later. Catch-up delay 40 s.
			name:       "target tracking",
			setup:      Setup{Name: "tt", Policy: policy.TargetTracking{Limits: limits, Target: 0.5, Tolerance: 0.1}, Tick: 10 * sec, Metrics: instant},
			wantSupply: series(0*sec, 2, 140*sec, 4),
			wantSize:   series(0*sec, 2, 110*sec, 4),
			wantU:      2.0 * 40 / 300, wantTauU: 100 * 40.0 / 300, wantViol: 100 * 40.0 / 300,
		},
		{
			// The scale-up alert is pending from 101 s, fires at 104 s
			// (for 3 s), Alertmanager sends it at 105 s (group wait 1 s):
			// the tick at 110 s adds one member. While the loop waits for
			// it to boot, sends at 115, 125 and 135 s are queued, so the
			// deferred tick at 140 s adds another, serving at 170 s; then
			// the CPU is 50 % and no alert fires.
			name: "seed webhook with the alert path",
			setup: Setup{Name: "seed", Policy: policy.Webhook{Limits: limits}, Tick: 10 * sec, Metrics: instant,
				Alerts: &Alerts{UpAbove: 0.8, DownBelow: 0.2, For: 3 * sec, GroupWait: sec, GroupInterval: 10 * sec}},
			wantSupply: series(0*sec, 2, 140*sec, 3, 170*sec, 4),
			wantSize:   series(0*sec, 2, 110*sec, 3, 140*sec, 4),
			wantU:      (2.0*40 + 1*30) / 300, wantTauU: 100 * 70.0 / 300,
			wantViol: 100 * 40.0 / 300, // 66.7 % on 3 members is above the 50 % SLO too
		},
		{
			// The oracle launches at 70 s what serves at 100 s.
			name:       "oracle",
			setup:      OracleSetup(),
			wantSupply: series(0*sec, 2, 100*sec, 4),
			wantSize:   series(0*sec, 2, 70*sec, 4),
		},
	}
	// The seed's 3-member phase (140-170 s) is above the SLO as well.
	tests[1].wantViol = 100 * 70.0 / 300
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := Simulate(stepTrace, stepPool, tt.setup)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(run.Supply, tt.wantSupply) {
				t.Errorf("supply = %v, want %v", run.Supply, tt.wantSupply)
			}
			if !reflect.DeepEqual(run.Size, tt.wantSize) {
				t.Errorf("size = %v, want %v (actions %v)", run.Size, tt.wantSize, run.Actions)
			}
			e := Evaluate(run, stepPool.DemandSeries(stepTrace))
			if !near(e.ThetaU, tt.wantU) || !near(e.TauU, tt.wantTauU) || e.ThetaO != 0 || e.TauO != 0 {
				t.Errorf("θU %v τU %v θO %v τO %v, want θU %v τU %v and no over-provisioning", e.ThetaU, e.TauU, e.ThetaO, e.TauO, tt.wantU, tt.wantTauU)
			}
			if !near(e.SLOViolation, tt.wantViol) {
				t.Errorf("SLO violation %v%%, want %v%%", e.SLOViolation, tt.wantViol)
			}
			if wantHours := tt.wantSize.Integral(300*sec) / 3600; !near(e.InstanceHours, wantHours) {
				t.Errorf("instance-hours %v, want %v", e.InstanceHours, wantHours)
			}
			if e.Dropped != 0 {
				t.Errorf("dropped %v%%, want 0 (20 req/s on 2 members is exactly their capacity)", e.Dropped)
			}
		})
	}
}

// spy is a policy that records what it is shown and grows once.
type spy struct {
	calls *[]policy.Observation
	at    *[]time.Duration
	grow  int
}

func (s spy) Decide(obs policy.Observation, now time.Time) policy.Decision {
	*s.calls = append(*s.calls, obs)
	*s.at = append(*s.at, now.Sub(epoch))
	to := obs.Pool.Size
	if len(*s.calls) == 1 {
		to += s.grow
	}
	return policy.Limits{}.Apply(obs, now, policy.Proposal{To: to, Reason: "spy", Because: "spy"})
}

// TestTicksDeferredWhileBusy checks the control loop's timing: ticks that
// fall while a change is carried out are merged into one right after it
// (time.Ticker's one-slot buffer), and the policy sees the pool and the
// time of the last change.
func TestTicksDeferredWhileBusy(t *testing.T) {
	var calls []policy.Observation
	var at []time.Duration
	tr := Trace{Name: "flat", Start: []time.Duration{0}, Rate: []float64{5}, End: 60 * sec}
	pool := Pool{Capacity: 10, Max: 10, Initial: 2, BootDelay: 25 * sec}
	_, err := Simulate(tr, pool, Setup{Name: "spy", Policy: spy{calls: &calls, at: &at, grow: 3}, Tick: 10 * sec, Metrics: instant})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{10 * sec, 35 * sec, 40 * sec, 50 * sec}
	if !slices.Equal(at, want) {
		t.Fatalf("decisions at %v, want %v", at, want)
	}
	if got := calls[1]; got.Pool.Size != 5 || len(got.Pool.Members) != 5 || !got.LastScale.Equal(epoch.Add(35*sec)) {
		t.Errorf("second observation: size %d, %d members, last scale %v; want 5, 5, at 35s", got.Pool.Size, len(got.Pool.Members), got.LastScale.Sub(epoch))
	}
	if got := calls[1].Pool.Members[4]; got.ID != "m0000005" || !got.CreatedAt.Equal(epoch.Add(10*sec)) {
		t.Errorf("newest member = %+v, want m0000005 created at 10s", got)
	}
	if !calls[1].Metrics.Valid || !near(calls[1].Metrics.CPU, 0.25) || calls[1].Metrics.Members != 2 {
		t.Errorf("metrics right after the boot = %+v, want 25%% over the 2 old members (the new have no data yet)", calls[1].Metrics)
	}
	if m := calls[2].Metrics; !m.Valid || !near(m.CPU, 0.1) || m.Members != 5 {
		t.Errorf("metrics at 40s = %+v, want 10%% over 5 members", m)
	}
}

// TestScaleInDrainsOneByOne checks that victims leave the load balancer one
// after the other, each gone DrainDelay later, the newest first.
func TestScaleInDrainsOneByOne(t *testing.T) {
	tr := Trace{Name: "low", Start: []time.Duration{0}, Rate: []float64{1}, End: 100 * sec}
	pool := Pool{Capacity: 10, Max: 10, Initial: 4, DrainDelay: 5 * sec}
	run, err := Simulate(tr, pool, Setup{Name: "tt", Policy: policy.TargetTracking{Limits: pool.Limits(), Target: 0.5}, Tick: 10 * sec, Metrics: instant})
	if err != nil {
		t.Fatal(err)
	}
	// 1 req/s on 4 members is 2.5 %: the tick at 10 s asks for 1 member.
	if want := series(0*sec, 4, 10*sec, 3, 15*sec, 2, 20*sec, 1); !reflect.DeepEqual(run.Supply, want) {
		t.Errorf("supply = %v, want %v", run.Supply, want)
	}
	if want := series(0*sec, 4, 15*sec, 3, 20*sec, 2, 25*sec, 1); !reflect.DeepEqual(run.Size, want) {
		t.Errorf("size = %v, want %v", run.Size, want)
	}
	if len(run.Actions) != 1 || run.Actions[0].To != 1 {
		t.Errorf("actions = %v, want one change to 1", run.Actions)
	}
}

// randomTrace builds a trace of random holds, ramps and spikes, sometimes
// made noisy.
func randomTrace(rng *rand.Rand, i int) Trace {
	var stages []loadgen.Stage
	rate := 5 + rng.Float64()*50
	for range 2 + rng.IntN(5) {
		d := time.Duration(1+rng.IntN(8)) * time.Minute
		switch rng.IntN(3) {
		case 0:
			stages = append(stages, loadgen.Stage{Kind: loadgen.KindHold, From: rate, Duration: d})
		case 1:
			to := 1 + rng.Float64()*150
			stages = append(stages, loadgen.Stage{Kind: loadgen.KindRamp, From: rate, To: to, Duration: d})
			rate = to
		case 2:
			stages = append(stages, loadgen.Stage{Kind: loadgen.KindSpike, From: rate, To: rate * (1 + 4*rng.Float64()),
				Period: time.Duration(1+rng.IntN(60)) * sec, Duration: d})
		}
	}
	tr, err := FromStages(fmt.Sprintf("random-%d", i), stages, sec)
	if err != nil {
		panic(err)
	}
	if rng.IntN(2) == 0 {
		tr = tr.Poisson(tr.Name+"-poisson", rng.Uint64())
	}
	return tr
}

// TestOracleNeverBeatenOnUnderProvisioning is the property that the oracle
// is the physical limit: on random traces and pools, no policy has a lower
// θU.
func TestOracleNeverBeatenOnUnderProvisioning(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 40 {
		tr := randomTrace(rng, i)
		pool := Pool{
			Capacity: 5 + rng.Float64()*20, SLO: 0.5 + rng.Float64()*0.5,
			Min: 1 + rng.IntN(3), Max: 5 + rng.IntN(40),
			BootDelay: time.Duration(rng.IntN(120)) * sec, DrainDelay: time.Duration(rng.IntN(20)) * sec,
			Timeout: time.Duration(rng.IntN(30)) * sec,
		}
		prof := monitoring.Seed()
		if rng.IntN(2) == 0 {
			prof = monitoring.Fast()
		}
		r, err := Compare(tr, pool, Standard(Options{Profile: prof, Target: 0.3 + rng.Float64()*0.6, Limits: pool.Limits()}))
		if err != nil {
			t.Fatalf("%s: %v", tr.Name, err)
		}
		oracle := r.Metrics[len(r.Metrics)-1]
		for j, e := range r.Metrics[:len(r.Metrics)-1] {
			if e.ThetaU < oracle.ThetaU-1e-9 {
				t.Errorf("%s with %+v: %s has θU %v below the oracle's %v", tr.Name, pool, r.Runs[j].Setup, e.ThetaU, oracle.ThetaU)
			}
		}
		// Between its limits the oracle is never under-provisioned after
		// the boot delay.
		orun := r.Runs[len(r.Runs)-1]
		for k, at := range r.Demand.T {
			if at < pool.BootDelay {
				continue
			}
			if want := pool.Clamp(r.Demand.V[k]); orun.Supply.At(at) < want {
				t.Fatalf("%s: oracle supply %d at %s below the demand %d", tr.Name, orun.Supply.At(at), at, want)
			}
		}
	}
}

func TestSimulateIsDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := randomTrace(rng, 0).Poisson("noisy", 7)
	pool := Pool{Max: 30, BootDelay: 40 * sec, DrainDelay: 5 * sec, Timeout: 30 * sec}
	for _, s := range Standard(Options{Limits: pool.Limits()}) {
		a, err := Simulate(tr, pool, s)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Simulate(tr, pool, s)
		if !reflect.DeepEqual(a.Supply, b.Supply) || !reflect.DeepEqual(a.Size, b.Size) || a.Dropped != b.Dropped {
			t.Errorf("%s: two runs differ", s.Name)
		}
	}
}

func TestSimulateRejectsBadInput(t *testing.T) {
	good := Setup{Name: "tt", Policy: policy.TargetTracking{}, Tick: sec, Metrics: instant}
	tests := []struct {
		name  string
		tr    Trace
		pool  Pool
		setup Setup
	}{
		{"empty trace", Trace{Name: "x"}, Pool{}, good},
		{"negative rate", Trace{Name: "x", Start: []time.Duration{0}, Rate: []float64{-1}, End: sec}, Pool{}, good},
		{"max below min", stepTrace, Pool{Min: 3, Max: 2}, good},
		{"SLO above 1", stepTrace, Pool{SLO: 1.5}, good},
		{"no tick", stepTrace, Pool{}, Setup{Name: "x", Policy: policy.Webhook{}, Metrics: instant}},
		{"no scrape", stepTrace, Pool{}, Setup{Name: "x", Policy: policy.Webhook{}, Tick: sec}},
		{"window too short", stepTrace, Pool{}, Setup{Name: "x", Policy: policy.Webhook{}, Tick: sec, Metrics: Pipeline{Scrape: 2 * sec, Window: sec, Eval: sec}}},
		{"invalid policy", stepTrace, Pool{}, Setup{Name: "x", Policy: policy.TargetTracking{Target: 2}, Tick: sec, Metrics: instant}},
	}
	for _, tt := range tests {
		if _, err := Simulate(tt.tr, tt.pool, tt.setup); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}
