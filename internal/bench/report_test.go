package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func ptr(v float64) *float64 { return &v }

// fixture is a small but complete report, as Run would return it.
func fixture() *Report {
	tr := func(p50, p99, cpu float64) TargetResult {
		return TargetResult{P50MS: p50, P99MS: p99, WorstP99MS: p99 + 1, Sent: 2000, OK: 2000, CPUUSPerReq: cpu,
			Windows: []WindowResult{{P50MS: p50, P99MS: p99, MaxMS: p99 + 2, Sent: 1000, OK: 1000}, {P50MS: p50, P99MS: p99, MaxMS: p99 + 2, Sent: 1000, OK: 1000}}}
	}
	return &Report{
		Started:  time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		ElapsedS: 150.2,
		Host:     Host{CPUs: 2, GoVersion: "go1.26.8", HAProxy: "HAProxy version 2.6.12", LoadAvgStart: 0.5, LoadAvgEnd: 1.25},
		Settings: Settings{Rates: []float64{500}, DurationS: 4, WindowS: 1, Conns: []string{ConnNew, ConnReuse}, SearchP99LimitMS: 1000, SearchDurationS: 2},
		Processes: []Process{{Name: "backends", PID: 10, Stopped: true}, {Name: "nlb", PID: 11, Stopped: true},
			{Name: "haproxy", PID: 12, Stopped: true}},
		Proxy: ProxyReport{
			Modes: []ModeReport{
				{Conn: ConnNew, Rates: []RateComparison{{Rate: 500, Direct: tr(0.7, 3, 0), NLB: tr(1.0, 4, 520.5), HAProxy: tr(0.95, 3.5, 300),
					NLBAddedP50MS: 0.3, NLBAddedP99MS: 1, HAProxyAddedP50MS: 0.25, HAProxyAddedP99MS: 0.5, RatioP50: ptr(1.2), RatioP99: ptr(2),
					ExcessP50: Excess{MS: 0, LowMS: -0.05, HighMS: 0.05, Rounds: 2, Verdict: GoalWithinNoise},
					ExcessP99: Excess{MS: 0.4, LowMS: 0.25, HighMS: 0.5, Rounds: 2, Verdict: GoalWithinNoise}}}},
				{Conn: ConnReuse, Rates: []RateComparison{{Rate: 500, Direct: tr(0.4, 2, 0), NLB: tr(0.5, 2, 200), HAProxy: tr(0.55, 2.5, 120),
					NLBAddedP50MS: 0.1, NLBAddedP99MS: 0, HAProxyAddedP50MS: 0.15, HAProxyAddedP99MS: -0.2, RatioP50: ptr(0.667)}}},
			},
			MaxRate: &MaxRateReport{Conn: ConnNew,
				Direct:   SearchResult{MaxRate: 8800, LowestFail: 10000, Trials: []Trial{{Rate: 5000, Pass: true}, {Rate: 10000}, {Rate: 8800, Pass: true}}},
				NLB:      SearchResult{MaxRate: 3800, LowestFail: 4400, Trials: []Trial{{Rate: 5000}, {Rate: 2500, Pass: true}}},
				HAProxy:  SearchResult{MaxRate: 4400, Trials: []Trial{{Rate: 4400, Pass: true}}},
				NLBRatio: 0.864, DirectRatio: 2},
		},
		Generator: GeneratorReport{
			Rates: []Accuracy{{Conn: ConnNew, Requested: 500, Planned: 2000, Arrivals: 2000, Achieved: 499.75, ErrorPct: -0.05, WorstSecondPct: 0.2,
				TimingP50MS: 0.673, TimingP99MS: 4.5, TimingMaxMS: 9.25, LatencyP50MS: 0.9, LatencyP99MS: 5, CPUUSPerReq: 466.7}},
			Stall: []StallResult{{Conn: ConnNew, Rate: 500, DurationS: 4, StallMS: 1000, Workers: 50, Sent: 2000, OK: 2000, Late: 453,
				P50MS: 0.9, P90MS: 610, P99MS: 962, MaxMS: 1006.8, ExpectedP90MS: 600, ExpectedP99MS: 960, ExpectedMaxMS: 1000, Shows: true}},
		},
		Goals: []Goal{{Name: "generator within ±1%", Status: GoalMet, Detail: "new 500/s -0.05%"}},
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, fixture()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// Each want is a run of fields that must appear, in order, on one line.
	wants := [][]string{
		{"tidepool bench", "2026-11-25T12:00:00Z", "2 CPUs", "go1.26.8", "HAProxy version 2.6.12"},
		{"load average 0.50 at start, 1.25 at the end; 150s"},
		{"Load balancer latency, a new connection per request", "median of 1s windows, 4s per target and rate"},
		{"rate/s", "direct p50", "nlb p50", "haproxy p50", "ratio p50", "cpu µs/req nlb", "errors d/n/h"},
		{"500", "0.700", "3.000", "1.000", "4.000", "0.950", "3.500", "0.300", "1.000", "0.250", "0.500", "1.20", "2.00", "520.5", "300.0", "0/0/0"},
		{"Goal check: NLB added - 1.2 x HAProxy added", "95% interval over 2 rounds", "at least 10 to judge"},
		{"rate/s", "p50 excess", "interval", "verdict", "p99 excess", "interval", "verdict"},
		{"500", "+0.000", "-0.050 to +0.050", "within noise", "+0.400", "+0.250 to +0.500", "within noise"},
		{"Load balancer latency, kept-alive connections"},
		{"500", "0.400", "0.100", "0.000", "0.150", "-0.200", "0.67", "n/a", "200.0", "120.0"},
		{"Highest sustained rate, a new connection per request", "< 1% errors and p99 <= 1000ms", "2s trials"},
		{"direct", "8800", "10000", "2.00", "5000:ok 10000:FAIL 8800:ok"},
		{"nlb", "3800", "4400", "0.86", "5000:FAIL 2500:ok"},
		{"haproxy", "4400", "none", "1.00", "4400:ok"},
		{"Load generator accuracy"},
		{"new", "500", "499.8", "-0.05", "0.20", "2000/2000", "0.673", "4.500", "9.250", "0", "0", "0.900", "5.000", "466.7"},
		{"Stall test"},
		{"new", "500", "4", "1000", "50", "2000", "453", "0", "0.900", "610.000 (600.000)", "962.000 (960.000)", "1006.800 (1000.000)", "true"},
		{"Goals"},
		{"[met] generator within ±1%: new 500/s -0.05%"},
	}
	lines := strings.Split(out, "\n")
	at := 0
	for _, w := range wants {
		found := false
		for ; at < len(lines) && !found; at++ {
			rest := lines[at]
			ok := true
			for _, f := range w {
				i := strings.Index(rest, f)
				if i < 0 {
					ok = false
					break
				}
				rest = rest[i+len(f):]
			}
			found = ok
		}
		if !found {
			t.Fatalf("table lacks a line with %q (after the lines matched before); got:\n%s", w, out)
		}
	}
}

func TestWriteTableEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, &Report{}); err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"Load balancer", "Highest", "generator", "Stall", "Goals"} {
		if strings.Contains(buf.String(), section) {
			t.Errorf("empty report prints section %q:\n%s", section, buf.String())
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	want := fixture()
	if err := WriteJSON(&buf, want); err != nil {
		t.Fatal(err)
	}
	// Key names are part of the format.
	for _, key := range []string{`"started": "2026-11-25T12:00:00Z"`, `"load_avg_start": 0.5`, `"conns": [`, `"modes": [`,
		`"conn": "reuse"`, `"nlb_added_p50_ms": 0.3`, `"ratio_p99": null`, `"cpu_us_per_req": 520.5`, `"max_rate": {`,
		`"lowest_fail": 10000`, `"nlb_ratio": 0.864`, `"timing_p99_ms": 4.5`, `"expected_p99_ms": 960`, `"status": "met"`,
		`"stopped": true`, `"excess_p99": {`, `"rounds": 2`, `"low_ms": 0.25`} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, buf.String())
		}
	}
	var got Report
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := WriteJSON(&again, &got); err != nil {
		t.Fatal(err)
	}
	if again.String() != buf.String() {
		t.Errorf("JSON does not round-trip:\nfirst  %s\nsecond %s", buf.String(), again.String())
	}
}

func TestEvaluateGoals(t *testing.T) {
	// ex is a goal check with the verdict v, its interval as wide as
	// excessOf could have made it for that verdict.
	ex := func(nlb, ha float64, v string) Excess {
		e := Excess{MS: round3(excessFrom(0, nlb, ha)), Rounds: 10, Verdict: v}
		switch v {
		case GoalMet:
			e.LowMS, e.HighMS = e.MS-0.1, 0
		case GoalNotMet:
			e.LowMS, e.HighMS = 0.001, e.MS+0.1
		default:
			e.LowMS, e.HighMS = -0.5, 0.5
		}
		return e
	}
	// rc is one rate whose p50 and p99 checks came out as v50 and v99.
	rc := func(nlb50, ha50, nlb99, ha99 float64, v50, v99 string) RateComparison {
		return RateComparison{Rate: 500, NLBAddedP50MS: nlb50, HAProxyAddedP50MS: ha50, NLBAddedP99MS: nlb99, HAProxyAddedP99MS: ha99,
			ExcessP50: ex(nlb50, ha50, v50), ExcessP99: ex(nlb99, ha99, v99)}
	}
	acc := func(rate, errPct float64) Accuracy { return Accuracy{Conn: ConnNew, Requested: rate, ErrorPct: errPct} }
	tests := []struct {
		name string
		rep  Report
		cfg  Config
		want []string // statuses, in order
		in   []string // substrings of the details, in order of goals
	}{
		{"all met", Report{
			Proxy:     ProxyReport{Modes: []ModeReport{{Conn: ConnNew, Rates: []RateComparison{rc(0.3, 0.25, 1.1, 1, GoalMet, GoalMet)}}}},
			Generator: GeneratorReport{Rates: []Accuracy{acc(500, 0.5), acc(5000, -1), acc(8000, -30)}, Stall: []StallResult{{Shows: true}}},
		}, Config{Rates: []float64{500, 5000, 8000}}, []string{GoalMet, GoalMet, GoalMet}, []string{"met at 500/s p50 +0.300 vs +0.250 ms; 500/s p99", "new 5000/s -1.00%", "workers"}},
		{"over the ratio, rate off, stall hidden", Report{
			Proxy:     ProxyReport{Modes: []ModeReport{{Conn: ConnReuse, Rates: []RateComparison{rc(0.31, 0.25, 1, 1, GoalNotMet, GoalWithinNoise)}}}},
			Generator: GeneratorReport{Rates: []Accuracy{acc(2000, -1.5)}, Stall: []StallResult{{Shows: true}, {Shows: false}}},
		}, Config{Rates: []float64{2000}}, []string{GoalNotMet, GoalNotMet, GoalNotMet},
			[]string{"not met at 500/s p50 +0.310 vs +0.250 ms (excess +0.010, 95% interval +0.001 to +0.110); within noise at 500/s p99", "off at new 2000/s -1.50%", ""}},
		{"within noise", Report{
			Proxy: ProxyReport{Modes: []ModeReport{{Conn: ConnReuse, Rates: []RateComparison{rc(0.1, 0.2, 0.4, 0.3, GoalMet, GoalWithinNoise)}}}},
		}, Config{Rates: []float64{500}}, []string{GoalWithinNoise, GoalNotMeasured, GoalNotMeasured},
			[]string{"within noise at 500/s p99 +0.400 vs +0.300 ms (excess +0.040, 95% interval -0.500 to +0.500); met at 500/s p50 +0.100 vs +0.200 ms", "no rate", "skipped"}},
		{"haproxy added nothing", Report{
			Proxy: ProxyReport{Modes: []ModeReport{{Conn: ConnNew, Rates: []RateComparison{rc(0.01, -0.02, -1, -2, GoalNotMet, GoalMet)}}}},
		}, Config{Rates: []float64{500}}, []string{GoalNotMet, GoalNotMeasured, GoalNotMeasured}, []string{"not met at 500/s p50 +0.010 vs -0.020 ms (excess +0.010, 95% interval +0.001 to +0.110)", "no rate", "skipped"}},
		{"low rates only", Report{
			Proxy:     ProxyReport{Modes: []ModeReport{{Conn: ConnNew}}},
			Generator: GeneratorReport{Rates: []Accuracy{acc(100, 0)}},
		}, Config{Rates: []float64{100}}, []string{GoalNotMeasured, GoalMet, GoalNotMeasured}, []string{"no rates", "only measured up to 100/s", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			goals := evaluateGoals(&tt.rep, tt.cfg)
			if len(goals) != len(tt.want) {
				t.Fatalf("%d goals %+v; want %d", len(goals), goals, len(tt.want))
			}
			for i, g := range goals {
				if g.Status != tt.want[i] || !strings.Contains(g.Detail, tt.in[i]) {
					t.Errorf("goal %d %q = %s %q; want %s, detail containing %q", i, g.Name, g.Status, g.Detail, tt.want[i], tt.in[i])
				}
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"negative rate", Config{Rates: []float64{-1}}, "rate -1"},
		{"huge rate", Config{Rates: []float64{2e6}}, "rate 2e+06"},
		{"bad mode", Config{Conns: []string{"pipelined"}}, `connection mode "pipelined"`},
		{"mode twice", Config{Conns: []string{ConnNew, ConnNew}}, "given twice"},
		{"window too long", Config{Duration: time.Second, Window: 2 * time.Second}, "window 2s longer"},
		{"search start over max", Config{SearchStart: 9000, SearchMax: 8000}, "search from 9000 to 8000"},
		{"precision", Config{SearchPrecision: 1.5}, "precision"},
		{"backends", Config{Backends: 300}, "backends 300"},
		{"stall", Config{Stall: time.Hour}, "longer than 1m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("withDefaults() error = %v; want it to contain %q", err, tt.wantErr)
			}
		})
	}
	got, err := Config{HAProxy: "/bin/true", Helper: []string{"x"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Rates) != 3 || got.Rates[2] != 5000 || got.SearchStart != 5000 || got.SearchMax != DefaultSearchMax ||
		got.Duration != DefaultDuration || len(got.Conns) != 2 || got.Conns[0] != ConnNew || got.Logger == nil {
		t.Errorf("defaults %+v; want rates 500,2000,5000, search from 5000, conns new,reuse, a logger", got)
	}
}
