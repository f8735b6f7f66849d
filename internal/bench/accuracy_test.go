package bench

import (
	"math"
	"testing"
	"time"

	"tidepool/internal/loadgen"
)

func TestArrivalAccuracy(t *testing.T) {
	const rate = 100.0
	const d = 2 * time.Second
	started := int64(1_700_000_000) * int64(time.Second)
	planned := make([]time.Duration, int(rate*d.Seconds()))
	for i := range planned {
		planned[i] = time.Duration(float64(i) / rate * float64(time.Second))
	}
	// arrivals builds Unix-ns arrival times from planned offsets.
	arrivals := func(f func(i int, p time.Duration) (time.Duration, bool)) []int64 {
		var out []int64
		for i, p := range planned {
			if at, ok := f(i, p); ok {
				out = append(out, started+int64(at))
			}
		}
		// Shuffled order must not matter.
		for i := range out {
			j := (i * 7) % len(out)
			out[i], out[j] = out[j], out[i]
		}
		return out
	}
	const delay = 300 * time.Microsecond
	tests := []struct {
		name           string
		arr            []int64
		wantAchieved   float64
		wantWorstPct   float64
		wantTimingP50  time.Duration
		wantTimingMax  time.Duration
		wantErrorAbove float64 // |error| must be at least this
	}{
		{"on time", arrivals(func(_ int, p time.Duration) (time.Duration, bool) { return p, true }), 100, 0, 0, 0, 0},
		{"constant transfer delay", arrivals(func(_ int, p time.Duration) (time.Duration, bool) { return p + delay, true }), 100, 0, delay, delay, 0},
		{"a tenth never arrives", arrivals(func(i int, p time.Duration) (time.Duration, bool) { return p + delay, i%10 != 0 }), 90, 10, -1, -1, 9.9},
		{"second half 20% slower", arrivals(func(i int, p time.Duration) (time.Duration, bool) {
			if p < time.Second {
				return p, true
			}
			return time.Second + (p-time.Second)*12/10, true
		}), 92, 16, 0, 200 * time.Millisecond, 7.9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := arrivalAccuracy(rate, d, started, planned, tt.arr)
			if st.Arrivals != len(tt.arr) {
				t.Errorf("arrivals %d; want %d", st.Arrivals, len(tt.arr))
			}
			if math.Abs(st.Achieved-tt.wantAchieved) > 0.6 {
				t.Errorf("achieved %g; want %g", st.Achieved, tt.wantAchieved)
			}
			if math.Abs(st.ErrorPct-100*(st.Achieved/rate-1)) > 1e-9 || math.Abs(st.ErrorPct) < tt.wantErrorAbove {
				t.Errorf("error %g%% for achieved %g; want it consistent and |error| >= %g", st.ErrorPct, st.Achieved, tt.wantErrorAbove)
			}
			if math.Abs(st.WorstSecondPct-tt.wantWorstPct) > 3.1 {
				t.Errorf("worst second %g%%; want about %g%%", st.WorstSecondPct, tt.wantWorstPct)
			}
			if tt.wantTimingP50 >= 0 && st.TimingP50 != tt.wantTimingP50 {
				t.Errorf("timing p50 %s; want %s", st.TimingP50, tt.wantTimingP50)
			}
			if tt.wantTimingMax >= 0 && (st.TimingMax < tt.wantTimingMax-10*time.Millisecond || st.TimingMax > tt.wantTimingMax+10*time.Millisecond) {
				t.Errorf("timing max %s; want about %s", st.TimingMax, tt.wantTimingMax)
			}
		})
	}
	if st := arrivalAccuracy(rate, d, started, planned, nil); st.Achieved != 0 || st.ErrorPct != -100 || st.Arrivals != 0 {
		t.Errorf("no arrivals: %+v; want achieved 0, error -100%%", st)
	}
}

func TestStallQuantile(t *testing.T) {
	base := time.Millisecond
	tests := []struct {
		q           float64
		stall, d    time.Duration
		want        time.Duration
		description string
	}{
		{0.99, time.Second, 5 * time.Second, 950 * time.Millisecond, "1% of 5s = 50ms below the stall"},
		{0.90, time.Second, 5 * time.Second, 500 * time.Millisecond, "10% of 5s = 500ms below the stall"},
		{0.50, time.Second, 5 * time.Second, base, "the median is unaffected"},
		{0.99, 100 * time.Millisecond, 20 * time.Second, base, "a stall shorter than 1% of the run"},
	}
	for _, tt := range tests {
		if got := stallQuantile(tt.q, tt.stall, tt.d, base); got != tt.want {
			t.Errorf("stallQuantile(%g, %s, %s) = %s; want %s (%s)", tt.q, tt.stall, tt.d, got, tt.want, tt.description)
		}
	}
}

func TestMedianAndQuantile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tt := range []struct {
		in   []time.Duration
		want time.Duration
	}{{nil, 0}, {ms(3), 3 * time.Millisecond}, {ms(5, 1, 3), 3 * time.Millisecond}, {ms(4, 1, 2, 3), 2500 * time.Microsecond}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %s; want %s", tt.in, got, tt.want)
		}
	}
	sorted := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for q, want := range map[float64]time.Duration{0.5: 5 * time.Millisecond, 0.99: 10 * time.Millisecond, 0.1: time.Millisecond} {
		if got := loadgen.Quantile(sorted, q); got != want {
			t.Errorf("quantile(1..10ms, %g) = %s; want %s", q, got, want)
		}
	}
}

func TestParseCPUTime(t *testing.T) {
	tests := []struct {
		stat    string
		want    time.Duration
		wantErr bool
	}{
		// comm with spaces and parentheses; utime 250 and stime 50 ticks.
		{"1234 (tide (pool) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200", 3 * time.Second, false},
		{"1234 (x) S 1", 0, true},
		{"garbage", 0, true},
		{"1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0 0", 0, true},
	}
	for _, tt := range tests {
		got, err := parseCPUTime([]byte(tt.stat))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseCPUTime(%q) = %s, %v; want %s, error %v", tt.stat, got, err, tt.want, tt.wantErr)
		}
	}
}
