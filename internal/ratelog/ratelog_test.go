package ratelog

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	l := New(time.Second)
	steps := []struct {
		at             time.Duration
		wantOK         bool
		wantSuppressed uint64
	}{
		{0, true, 0},
		{100 * time.Millisecond, false, 0},
		{999 * time.Millisecond, false, 0},
		{time.Second, true, 2},
		{1500 * time.Millisecond, false, 0},
		{5 * time.Second, true, 1},
		{6 * time.Second, true, 0},
	}
	for _, s := range steps {
		ok, n := l.Allow(start.Add(s.at))
		if ok != s.wantOK || n != s.wantSuppressed {
			t.Errorf("Allow(+%v) = %v, %d; want %v, %d", s.at, ok, n, s.wantOK, s.wantSuppressed)
		}
	}
	var none *Limiter
	if ok, _ := none.Allow(start); !ok {
		t.Error("nil Limiter must allow every event")
	}
}
