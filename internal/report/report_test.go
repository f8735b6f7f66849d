package report

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

const sec = time.Second

// loadSamples returns one sample per second with the given offered loads.
func loadSamples(offered ...float64) []Sample {
	out := make([]Sample, len(offered))
	for i, o := range offered {
		out[i] = Sample{T: time.Duration(i) * sec, OfferedRPS: o, AnsweredRPS: o, AvgCPU: math.NaN(), PoolSize: 1, RunningSize: 1}
	}
	return out
}

func TestSummarizeLoadAndScaling(t *testing.T) {
	tests := []struct {
		name                  string
		d                     Data
		wantRose, wantDropped bool
		wantRise, wantDrop    time.Duration
		wantLevel             float64
		wantOuts, wantIns     []time.Duration
		wantDuration          time.Duration
	}{
		{
			name: "empty",
		},
		{
			name:         "ramp up and down with scaling",
			d:            Data{Samples: loadSamples(0, 10, 20, 40, 60, 60, 60, 20, 5, 5, 5), Events: []Event{{T: 5 * sec, Kind: KindScaleOut, From: 1, To: 2}, {T: 9 * sec, Kind: KindScaleIn, From: 2, To: 1}, {T: 7 * sec, Kind: KindScaleOut, From: 2, To: 3}}},
			wantRose:     true,
			wantRise:     3 * sec, // 40 > 30 (50 % of 60)
			wantDropped:  true,
			wantDrop:     7 * sec, // first sample <= 30 after the last above
			wantLevel:    30,
			wantOuts:     []time.Duration{2 * sec, 4 * sec},
			wantIns:      []time.Duration{2 * sec},
			wantDuration: 10 * sec,
		},
		{
			name:         "exactly at the level is not above",
			d:            Data{Samples: loadSamples(0, 30, 60, 30, 0)},
			wantRose:     true,
			wantRise:     2 * sec,
			wantDropped:  true,
			wantDrop:     3 * sec,
			wantLevel:    30,
			wantDuration: 4 * sec,
		},
		{
			name:         "dip in the middle is not the drop",
			d:            Data{Samples: loadSamples(0, 50, 10, 50, 50, 0)},
			wantRose:     true,
			wantRise:     1 * sec,
			wantDropped:  true,
			wantDrop:     5 * sec,
			wantLevel:    25,
			wantDuration: 5 * sec,
		},
		{
			name:         "load never drops: no scale-in delays",
			d:            Data{Samples: loadSamples(0, 60, 60), Events: []Event{{T: 2 * sec, Kind: KindScaleIn, From: 2, To: 1}}},
			wantRose:     true,
			wantRise:     1 * sec,
			wantLevel:    30,
			wantDuration: 2 * sec,
		},
		{
			name:         "scale-out before the rise has a negative delay",
			d:            Data{Samples: loadSamples(0, 0, 0, 60, 0), Events: []Event{{T: 1 * sec, Kind: KindScaleOut, From: 1, To: 2}}},
			wantRose:     true,
			wantRise:     3 * sec,
			wantDropped:  true,
			wantDrop:     4 * sec,
			wantLevel:    30,
			wantOuts:     []time.Duration{-2 * sec},
			wantDuration: 4 * sec,
		},
		{
			name:         "custom threshold",
			d:            Data{Samples: loadSamples(0, 10, 20, 100, 20), LoadThreshold: 0.15},
			wantRose:     true,
			wantRise:     2 * sec,
			wantDropped:  false,
			wantLevel:    15,
			wantDuration: 4 * sec,
		},
		{
			name:         "no load at all, events still counted",
			d:            Data{Samples: loadSamples(0, 0, 0), Events: []Event{{T: 30 * sec, Kind: KindScaleOut, From: 1, To: 2}}},
			wantDuration: 30 * sec,
		},
		{
			name:         "NaN offered is neither rise nor drop",
			d:            Data{Samples: loadSamples(math.NaN(), 60, math.NaN(), math.NaN())},
			wantRose:     true,
			wantRise:     1 * sec,
			wantLevel:    30,
			wantDuration: 3 * sec,
		},
		{
			name:         "unsorted samples are sorted",
			d:            Data{Samples: reversed(loadSamples(0, 60, 60, 0))},
			wantRose:     true,
			wantRise:     1 * sec,
			wantDropped:  true,
			wantDrop:     3 * sec,
			wantLevel:    30,
			wantDuration: 3 * sec,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.d)
			if s.LoadRose != tt.wantRose || s.LoadRise != tt.wantRise {
				t.Errorf("rise = %v at %v, want %v at %v", s.LoadRose, s.LoadRise, tt.wantRose, tt.wantRise)
			}
			if s.LoadDropped != tt.wantDropped || s.LoadDrop != tt.wantDrop {
				t.Errorf("drop = %v at %v, want %v at %v", s.LoadDropped, s.LoadDrop, tt.wantDropped, tt.wantDrop)
			}
			if s.LoadLevel != tt.wantLevel {
				t.Errorf("LoadLevel = %v req/s, want %v", s.LoadLevel, tt.wantLevel)
			}
			if !slices.Equal(s.ScaleOuts, tt.wantOuts) {
				t.Errorf("ScaleOuts = %v, want %v", s.ScaleOuts, tt.wantOuts)
			}
			if !slices.Equal(s.ScaleIns, tt.wantIns) {
				t.Errorf("ScaleIns = %v, want %v", s.ScaleIns, tt.wantIns)
			}
			if s.Duration != tt.wantDuration {
				t.Errorf("Duration = %v, want %v", s.Duration, tt.wantDuration)
			}
			var outs, ins int
			for _, ev := range tt.d.Events {
				switch ev.Kind {
				case KindScaleOut:
					outs++
				case KindScaleIn:
					ins++
				}
			}
			if len(s.ScaleOutEvents) != outs || len(s.ScaleInEvents) != ins {
				t.Errorf("got %d scale-out and %d scale-in events, want %d and %d", len(s.ScaleOutEvents), len(s.ScaleInEvents), outs, ins)
			}
			if !slices.IsSortedFunc(s.ScaleOutEvents, func(a, b Event) int { return int(a.T - b.T) }) {
				t.Errorf("ScaleOutEvents not in time order: %v", s.ScaleOutEvents)
			}
		})
	}
}

func reversed(s []Sample) []Sample {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

func TestSummarizePoolAndRequests(t *testing.T) {
	tests := []struct {
		name                                     string
		d                                        Data
		wantStart, wantPeak, wantFinal           int
		wantPeakRun, wantFinalRun                int
		wantRequests, wantOK, wantFailed, wantLt int
		wantPoolKnown, wantRunningKnown          bool
	}{
		{name: "empty"},
		{
			name: "sums and pool sizes, unknown pool ignored",
			d: Data{Samples: []Sample{
				{T: 0, PoolSize: 1, RunningSize: 1, OK: 10, Errors: 1, Late: 2},
				{T: sec, PoolSize: 3, RunningSize: 1, OK: 20, Errors: 0, Late: 0},
				{T: 2 * sec, PoolSize: -1, RunningSize: -1, OK: 5, Errors: 4, Late: 1},
				{T: 3 * sec, PoolSize: 2, RunningSize: 2, OK: 1},
			}},
			wantStart: 1, wantPeak: 3, wantFinal: 2, wantPeakRun: 2, wantFinalRun: 2,
			wantRequests: 41, wantOK: 36, wantFailed: 5, wantLt: 3,
			wantPoolKnown: true, wantRunningKnown: true,
		},
		{
			name: "peak from an event the samples missed",
			d: Data{
				Samples: []Sample{{T: 0, PoolSize: 1, RunningSize: 1}, {T: 9 * sec, PoolSize: 1, RunningSize: 1}},
				Events:  []Event{{T: 3 * sec, Kind: KindScaleOut, From: 1, To: 5}, {T: 6 * sec, Kind: KindScaleIn, From: 5, To: 1}},
			},
			wantStart: 1, wantPeak: 5, wantFinal: 1, wantPeakRun: 1, wantFinalRun: 1,
			wantPoolKnown: true, wantRunningKnown: true,
		},
		{
			name:      "events only",
			d:         Data{Events: []Event{{T: 3 * sec, Kind: KindScaleOut, From: 2, To: 4}, {T: 6 * sec, Kind: KindScaleIn, From: 4, To: 3}}},
			wantStart: 2, wantPeak: 4, wantFinal: 3,
			wantPoolKnown: true,
		},
		{
			name: "unknown sizes only",
			d:    Data{Samples: []Sample{{PoolSize: -1, RunningSize: -1}}},
		},
		{
			name: "totals override sample sums",
			d: Data{
				Samples: []Sample{{OK: 10, Errors: 1}},
				Totals:  &Totals{Requests: 100, OK: 90, Failed: 10, Late: 7},
			},
			wantRequests: 100, wantOK: 90, wantFailed: 10, wantLt: 7,
			wantPoolKnown: true, wantRunningKnown: true, // a zero size is a known size
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.d)
			if s.StartPool != tt.wantStart || s.PeakPool != tt.wantPeak || s.FinalPool != tt.wantFinal {
				t.Errorf("pool start/peak/final = %d/%d/%d, want %d/%d/%d", s.StartPool, s.PeakPool, s.FinalPool, tt.wantStart, tt.wantPeak, tt.wantFinal)
			}
			if s.PeakRunning != tt.wantPeakRun || s.FinalRunning != tt.wantFinalRun {
				t.Errorf("running peak/final = %d/%d, want %d/%d", s.PeakRunning, s.FinalRunning, tt.wantPeakRun, tt.wantFinalRun)
			}
			if s.PoolKnown != tt.wantPoolKnown || s.RunningKnown != tt.wantRunningKnown {
				t.Errorf("PoolKnown/RunningKnown = %v/%v, want %v/%v", s.PoolKnown, s.RunningKnown, tt.wantPoolKnown, tt.wantRunningKnown)
			}
			if s.Requests != tt.wantRequests || s.OK != tt.wantOK || s.Failed != tt.wantFailed || s.Late != tt.wantLt {
				t.Errorf("requests/ok/failed/late = %d/%d/%d/%d, want %d/%d/%d/%d", s.Requests, s.OK, s.Failed, s.Late, tt.wantRequests, tt.wantOK, tt.wantFailed, tt.wantLt)
			}
		})
	}
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestSummarizeLatency(t *testing.T) {
	same := Sample{OK: 100, P50: ms(10), P95: ms(50), P99: ms(100)}
	tests := []struct {
		name          string
		d             Data
		want50        time.Duration
		want95        time.Duration
		want99        time.Duration
		wantExact     bool
		tolerance     time.Duration
		notMaxOfP95s  bool
		wantNoLatency bool
	}{
		{name: "no data", d: Data{Samples: []Sample{{OK: 5}}}, wantNoLatency: true},
		{
			name:   "identical seconds give their own percentiles",
			d:      Data{Samples: []Sample{same, same, same}},
			want50: ms(10), want95: ms(50), want99: ms(100),
		},
		{
			// 1000 fast requests (p95 20 ms, p99 30 ms) and 10 slow ones
			// (p50 1 s). Between 20 and 30 ms, F_fast(x) = 0.95 + 4(x-0.02)
			// and F_slow(x) = 0.5·x/1 s (interpolated from 0 ms), so the
			// mixture's p95 solves 1000·F_fast + 10·F_slow = 0.95·1010,
			// i.e. 4005·x = 89.5 (x in seconds): 22.347 ms, where the
			// max of per-second p95 would say 2 s.
			name: "slow second with few requests does not dominate",
			d: Data{Samples: []Sample{
				{OK: 1000, P50: ms(10), P95: ms(20), P99: ms(30)},
				{OK: 10, P50: ms(1000), P95: ms(2000), P99: ms(3000)},
			}},
			want95:       ms(89.5 / 4005 * 1000),
			tolerance:    time.Microsecond,
			notMaxOfP95s: true,
		},
		{
			name: "weights use errors too",
			d: Data{Samples: []Sample{
				{OK: 0, Errors: 100, P50: ms(10), P95: ms(50), P99: ms(100)},
				{OK: 0, Errors: 0, P50: ms(900), P95: ms(900), P99: ms(900)},
			}},
			want50: ms(10), want95: ms(50), want99: ms(100),
		},
		{
			name:   "no counts at all: seconds weigh the same",
			d:      Data{Samples: []Sample{{P50: ms(10), P95: ms(50), P99: ms(100)}, {P50: ms(10), P95: ms(50), P99: ms(100)}}},
			want50: ms(10), want95: ms(50), want99: ms(100),
		},
		{
			name:   "missing p50 and p99 interpolate from what is known",
			d:      Data{Samples: []Sample{{OK: 10, P95: ms(95)}}},
			want50: ms(50), want95: ms(95), want99: ms(95),
		},
		{
			name: "exact totals win",
			d: Data{
				Samples: []Sample{same},
				Totals:  &Totals{P50: ms(1), P95: ms(2), P99: ms(3)},
			},
			want50: ms(1), want95: ms(2), want99: ms(3), wantExact: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.d)
			if s.LatencyExact != tt.wantExact {
				t.Errorf("LatencyExact = %v, want %v", s.LatencyExact, tt.wantExact)
			}
			if tt.wantNoLatency {
				if s.P50 != 0 || s.P95 != 0 || s.P99 != 0 {
					t.Errorf("percentiles = %v/%v/%v, want 0 (no data)", s.P50, s.P95, s.P99)
				}
				return
			}
			check := func(name string, got, want time.Duration) {
				t.Helper()
				if want == 0 {
					return
				}
				if diff := got - want; diff > tt.tolerance || -diff > tt.tolerance {
					t.Errorf("%s = %v, want %v (±%v)", name, got, want, tt.tolerance)
				}
			}
			check("P50", s.P50, tt.want50)
			check("P95", s.P95, tt.want95)
			check("P99", s.P99, tt.want99)
			if tt.notMaxOfP95s {
				var maxP95 time.Duration
				for _, smp := range tt.d.Samples {
					maxP95 = max(maxP95, smp.P95)
				}
				if s.P95 >= maxP95 {
					t.Errorf("P95 = %v, want well below the max of per-second p95 %v", s.P95, maxP95)
				}
			}
		})
	}
}

func TestSummarizeDoesNotModifyInput(t *testing.T) {
	d := synthetic(60, 3)
	d.Samples = reversed(d.Samples)
	before := slices.Clone(d.Samples)
	beforeEv := slices.Clone(d.Events)
	Summarize(d)
	for i := range before {
		if before[i].T != d.Samples[i].T {
			t.Fatalf("sample %d moved: T = %v, was %v", i, d.Samples[i].T, before[i].T)
		}
	}
	if !slices.Equal(beforeEv, d.Events) {
		t.Fatalf("events changed")
	}
}

func TestSummaryText(t *testing.T) {
	tests := []struct {
		name string
		d    Data
		want []string
	}{
		{
			name: "synthetic demo",
			d:    synthetic(240, 1),
			want: []string{
				"Duration", "4m00s (241 samples)",
				"peak 60.0 req/s; rose above 30.0 req/s at 31s, fell back at 2m38s",
				"Scale-outs     3: +1 → 2 at 35s (4.0s after load rise)",
				"−1 → 3 at 3m00s (22s after load drop)",
				"start 1, peak 4, final 1 members",
				"failed (", " %)", "sent late",
				"p95 ", " ms", "request-weighted",
			},
		},
		{
			name: "empty",
			d:    Data{},
			want: []string{"Duration", "0.0s (0 samples)", "no offered load recorded", "Scale-outs     none", "Latency        no data", "Pool CPU       no data", "Pool size      no data", "0 total"},
		},
		{
			name: "negative delay and exact latency",
			d: Data{
				Samples: loadSamples(0, 0, 60, 0),
				Events:  []Event{{T: 0, Kind: KindScaleOut, From: 1, To: 2}},
				Totals:  &Totals{Requests: 10, OK: 9, Failed: 1, P50: ms(1.5), P95: ms(250), P99: ms(0.5)},
			},
			want: []string{"(2.0s before load rise)", "p50 1.5 ms, p95 250 ms, p99 0.50 ms (exact", "1 failed (10.00 %)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.d).Text()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Text() missing %q; got:\n%s", w, got)
				}
			}
			if !strings.HasSuffix(got, "\n") || strings.Contains(got, "NaN") {
				t.Errorf("Text() should end in a newline and never print NaN; got:\n%s", got)
			}
		})
	}
}

func TestFmtDur(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.0s"},
		{1500 * time.Millisecond, "1.5s"},
		{42 * sec, "42s"},
		{65 * sec, "1m05s"},
		{3723 * sec, "1h02m03s"},
		{-12 * sec, "-12s"},
	}
	for _, tt := range tests {
		if got := fmtDur(tt.d); got != tt.want {
			t.Errorf("fmtDur(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
