package loadgen

import (
	"math"
	"strings"
	"testing"
	"time"
)

func mustSchedule(t testing.TB, specs ...string) *Schedule {
	t.Helper()
	stages := make([]Stage, len(specs))
	for i, s := range specs {
		st, err := ParseStage(s)
		if err != nil {
			t.Fatal(err)
		}
		stages[i] = st
	}
	s, err := NewSchedule(stages)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seconds(v float64) time.Duration { return time.Duration(math.Round(v * 1e9)) }

func TestScheduleRateAt(t *testing.T) {
	tests := []struct {
		stages []string
		at     time.Duration
		want   float64
	}{
		{[]string{"hold:10:1s"}, 0, 10},
		{[]string{"hold:10:1s"}, 999 * time.Millisecond, 10},
		{[]string{"hold:10:1s"}, time.Second, 0}, // after the end
		{[]string{"hold:10:1s"}, -time.Millisecond, 0},
		{[]string{"ramp:0-10:2s"}, 0, 0},
		{[]string{"ramp:0-10:2s"}, time.Second, 5},
		{[]string{"ramp:0-10:2s"}, 1500 * time.Millisecond, 7.5},
		{[]string{"ramp:10-0:2s"}, 500 * time.Millisecond, 7.5},
		{[]string{"spike:2-10/1s:3s"}, 500 * time.Millisecond, 10},
		{[]string{"spike:2-10/1s:3s"}, time.Second, 2},
		{[]string{"spike:2-10/1s:3s"}, 2500 * time.Millisecond, 2},
		{[]string{"sine:10±10/4s:4s"}, 0, 10},
		{[]string{"sine:10±10/4s:4s"}, time.Second, 20},
		{[]string{"sine:10±10/4s:4s"}, 2 * time.Second, 10},
		{[]string{"sine:10±10/4s:4s"}, 3 * time.Second, 0},
		{[]string{"sine:10±4/4s:8s"}, 5 * time.Second, 14}, // second period
		// Stages follow each other.
		{[]string{"hold:5:1s", "ramp:10-20:2s", "hold:1:1s"}, 500 * time.Millisecond, 5},
		{[]string{"hold:5:1s", "ramp:10-20:2s", "hold:1:1s"}, time.Second, 10},
		{[]string{"hold:5:1s", "ramp:10-20:2s", "hold:1:1s"}, 2 * time.Second, 15},
		{[]string{"hold:5:1s", "ramp:10-20:2s", "hold:1:1s"}, 3 * time.Second, 1},
		{[]string{"hold:5:1s", "ramp:10-20:2s", "hold:1:1s"}, 4 * time.Second, 0},
	}
	for _, tt := range tests {
		s := mustSchedule(t, tt.stages...)
		if got := s.RateAt(tt.at); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%v RateAt(%s) = %g; want %g", tt.stages, tt.at, got, tt.want)
		}
	}
}

func TestSchedulePlannedAt(t *testing.T) {
	tests := []struct {
		name         string
		stages       []string
		wantRequests uint64
		want         map[uint64]time.Duration // k -> planned offset
	}{
		{"hold", []string{"hold:10:1s"}, 10, map[uint64]time.Duration{
			0: 0, 1: 100 * time.Millisecond, 5: 500 * time.Millisecond, 9: 900 * time.Millisecond}},
		{"hold fractional", []string{"hold:2.5:1s"}, 3, map[uint64]time.Duration{
			0: 0, 1: 400 * time.Millisecond, 2: 800 * time.Millisecond}},
		// H(t) = 2.5t², t_k = sqrt(k/2.5).
		{"ramp up from zero", []string{"ramp:0-10:2s"}, 10, map[uint64]time.Duration{
			0: 0, 1: seconds(math.Sqrt(0.4)), 4: seconds(math.Sqrt(1.6)), 9: seconds(math.Sqrt(3.6))}},
		// H(t) = 10t - 2.5t², t_k = (10 - sqrt(100 - 10k)) / 5.
		{"ramp down to zero", []string{"ramp:10-0:2s"}, 10, map[uint64]time.Duration{
			0: 0, 5: seconds((10 - math.Sqrt(50)) / 5), 9: seconds((10 - math.Sqrt(10)) / 5)}},
		// 10 req/s for 1s, then 2 req/s for 2s.
		{"spike", []string{"spike:2-10/1s:3s"}, 14, map[uint64]time.Duration{
			0: 0, 9: 900 * time.Millisecond, 10: time.Second, 11: 1500 * time.Millisecond, 13: 2500 * time.Millisecond}},
		// H(t) = 10t + (20/π)(1 - cos(πt/2)); total 40.
		{"sine", []string{"sine:10±10/4s:4s"}, 40, map[uint64]time.Duration{0: 0}},
		{"zero stage plans nothing", []string{"hold:0:1s", "hold:10:1s"}, 10, map[uint64]time.Duration{
			0: time.Second, 1: 1100 * time.Millisecond, 9: 1900 * time.Millisecond}},
		{"zero base spike", []string{"spike:5-0/1s:2s"}, 5, map[uint64]time.Duration{
			0: time.Second, 4: 1800 * time.Millisecond}},
		{"all zero", []string{"hold:0:10s", "ramp:0-0:1s"}, 0, nil},
		{"sequence", []string{"hold:1:2s", "hold:4:1s"}, 6, map[uint64]time.Duration{
			0: 0, 1: time.Second, 2: 2 * time.Second, 5: 2750 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSchedule(t, tt.stages...)
			if got := s.Requests(); got != tt.wantRequests {
				t.Errorf("Requests() = %d; want %d", got, tt.wantRequests)
			}
			for k, want := range tt.want {
				got, ok := s.PlannedAt(k)
				if !ok || absDur(got-want) > time.Microsecond {
					t.Errorf("PlannedAt(%d) = %s, %v; want %s, true", k, got, ok, want)
				}
			}
			if got, ok := s.PlannedAt(tt.wantRequests); ok {
				t.Errorf("PlannedAt(%d) = %s, true; want false (past the last request)", tt.wantRequests, got)
			}
		})
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestSchedulePlannedAtInvertsExpected checks, for every kind and for
// composed schedules, that request k is planned where H reaches k, that
// planned times never go backwards and stay inside the schedule, and that
// the count is H(end) rounded up.
func TestSchedulePlannedAtInvertsExpected(t *testing.T) {
	schedules := [][]string{
		{"hold:37:3s"},
		{"ramp:0-100:10s"},
		{"ramp:80-3:7s"},
		{"spike:3-90/2s:5s"},
		{"sine:40±40/3s:10s"},
		{"sine:25±7/1.5s:4.2s"},
		{"ramp:0-50:2s", "hold:50:1s", "spike:10-100/500ms:2s", "hold:0:1s", "sine:30±20/2s:3s", "ramp:30-0:1s"},
	}
	for _, specs := range schedules {
		s := mustSchedule(t, specs...)
		total := s.Expected(s.Duration())
		if want := uint64(math.Ceil(total - 1e-6)); s.Requests() != want {
			t.Errorf("%v: Requests() = %d; want ceil(H(end)=%g) = %d", specs, s.Requests(), total, want)
		}
		prev := time.Duration(-1)
		for k := range s.Requests() {
			p, ok := s.PlannedAt(k)
			if !ok {
				t.Fatalf("%v: PlannedAt(%d) not ok, Requests() = %d", specs, k, s.Requests())
			}
			if p < prev || p < 0 || p >= s.Duration() {
				t.Fatalf("%v: PlannedAt(%d) = %s after %s; want non-decreasing in [0, %s)", specs, k, p, prev, s.Duration())
			}
			prev = p
			// H just after the planned time exceeds k, H just before does not.
			// 2µs of slack covers the rounding to whole nanoseconds.
			if h := s.Expected(p - 2*time.Microsecond); h > float64(k)+1e-6 {
				t.Errorf("%v: request %d planned at %s but H(%s) = %g already exceeds %d", specs, k, p, p-2*time.Microsecond, h, k)
			}
			if h := s.Expected(p + 2*time.Microsecond); h <= float64(k) {
				t.Errorf("%v: request %d planned at %s but H(%s) = %g does not exceed %d", specs, k, p, p+2*time.Microsecond, h, k)
			}
		}
	}
}

func TestScheduleExpected(t *testing.T) {
	tests := []struct {
		stages []string
		at     time.Duration
		want   float64
	}{
		{[]string{"hold:10:2s"}, time.Second, 10},
		{[]string{"hold:10:2s"}, 5 * time.Second, 20},
		{[]string{"hold:10:2s"}, -time.Second, 0},
		{[]string{"ramp:0-10:2s"}, time.Second, 2.5},
		{[]string{"ramp:0-10:2s"}, 2 * time.Second, 10},
		{[]string{"spike:2-10/1s:3s"}, 2 * time.Second, 12},
		{[]string{"sine:10±10/4s:4s"}, 2 * time.Second, 20 + 40/math.Pi},
		{[]string{"sine:10±10/4s:4s"}, 4 * time.Second, 40},
		{[]string{"hold:1:2s", "ramp:0-10:2s"}, 3 * time.Second, 4.5},
	}
	for _, tt := range tests {
		s := mustSchedule(t, tt.stages...)
		if got := s.Expected(tt.at); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%v Expected(%s) = %g; want %g", tt.stages, tt.at, got, tt.want)
		}
	}
}

func TestNewScheduleErrors(t *testing.T) {
	if _, err := NewSchedule(nil); err == nil {
		t.Error("NewSchedule(nil) = nil error; want error")
	}
	_, err := NewSchedule([]Stage{{Kind: KindHold, From: 1, Duration: time.Second}, {Kind: KindHold, To: 1, Duration: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "stage 2") {
		t.Errorf("NewSchedule(bad second stage) = %v; want error naming stage 2", err)
	}
}
