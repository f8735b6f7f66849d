package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	tests := []struct {
		n          int
		first, lim time.Duration
		want       time.Duration
	}{
		{0, time.Second, time.Minute, 0},
		{-1, time.Second, time.Minute, 0},
		{1, time.Second, time.Minute, time.Second},
		{2, time.Second, time.Minute, 2 * time.Second},
		{3, time.Second, time.Minute, 4 * time.Second},
		{6, time.Second, time.Minute, 32 * time.Second},
		{7, time.Second, time.Minute, time.Minute},
		{1000, time.Second, time.Minute, time.Minute},
		{3, time.Minute, time.Minute, time.Minute},
		{1, time.Minute, time.Second, time.Second},           // limit below first
		{6, time.Second, 30 * time.Second, 30 * time.Second}, // the cloud's restart schedule
		{5, time.Second, 16 * time.Second, 16 * time.Second}, // the autoscaler's retries
		{80, time.Hour, 1<<63 - 1, 1<<63 - 1},                // no overflow
		{63, time.Nanosecond, 1<<63 - 1, 1 << 62},            // the largest doubling below the limit
		{64, time.Nanosecond, 1<<63 - 1, 1<<63 - 1},
	}
	for _, tt := range tests {
		if got := Delay(tt.n, tt.first, tt.lim); got != tt.want {
			t.Errorf("Delay(%d, %v, %v) = %v, want %v", tt.n, tt.first, tt.lim, got, tt.want)
		}
	}
}
