package cloud

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestPoolState(t *testing.T) {
	tests := []struct {
		name string
		in   poolCounts
		want string
	}{
		{"new pool, nothing yet", poolCounts{Size: 2}, poolCreating},
		{"new pool, members starting", poolCounts{Size: 2, Active: 2, ActiveRunning: 1}, poolCreating},
		{"all running", poolCounts{Size: 2, Active: 2, ActiveRunning: 2, EverRunning: true}, poolRunning},
		{"first time all running", poolCounts{Size: 2, Active: 2, ActiveRunning: 2}, poolRunning},
		{"scale up", poolCounts{Size: 3, Active: 2, ActiveRunning: 2, EverRunning: true}, poolScalingUp},
		{"replacement starting", poolCounts{Size: 2, Active: 2, ActiveRunning: 1, Leaving: 1, EverRunning: true}, poolScalingUp},
		{"evicted member draining", poolCounts{Size: 1, Active: 1, ActiveRunning: 1, Leaving: 1, EverRunning: true}, poolScalingDown},
		{"surplus", poolCounts{Size: 1, Active: 2, ActiveRunning: 2, EverRunning: true}, poolScalingDown},
		{"scaled to zero", poolCounts{Size: 0, EverRunning: true}, poolRunning},
		{"deleting", poolCounts{Size: 2, Active: 2, ActiveRunning: 2, Deleting: true}, poolDestroying},
	}
	for _, tt := range tests {
		if got := poolState(tt.in); got != tt.want {
			t.Errorf("%s: poolState(%+v) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestPickVictims(t *testing.T) {
	members := []victim{
		{ID: "a", Running: true, Index: 1},
		{ID: "b", Running: true, Index: 2},
		{ID: "c", Running: false, Index: 3},
		{ID: "d", Running: true, Index: 4},
	}
	tests := []struct {
		n    int
		want []string
	}{
		{0, nil},
		{1, []string{"c"}},           // not running first
		{2, []string{"c", "d"}},      // then newest
		{3, []string{"c", "d", "b"}}, // ...
		{9, []string{"c", "d", "b", "a"}},
	}
	for _, tt := range tests {
		if got := pickVictims(members, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("pickVictims(n=%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestRestartBackoff(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 30 * time.Second}, {100, 30 * time.Second}}
	for _, tt := range tests {
		if got := restartBackoff(tt.failures); got != tt.want {
			t.Errorf("restartBackoff(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestIPPool(t *testing.T) {
	p := newIPPool(netip.MustParsePrefix("127.9.9.0/29")) // .0-.7: .2-.6 usable
	var got []string
	for {
		a, err := p.alloc()
		if err != nil {
			break
		}
		got = append(got, a.String())
	}
	want := []string{"127.9.9.2", "127.9.9.3", "127.9.9.4", "127.9.9.5", "127.9.9.6"}
	if !slices.Equal(got, want) {
		t.Fatalf("allocations = %v, want %v", got, want)
	}
	p.release(netip.MustParseAddr("127.9.9.4"))
	if a, err := p.alloc(); err != nil || a.String() != "127.9.9.4" {
		t.Errorf("alloc after release = %v, %v; want 127.9.9.4", a, err)
	}
	if p.reserve(netip.MustParseAddr("127.9.9.3")) {
		t.Errorf("reserve of an address in use succeeded")
	}
	if p.reserve(netip.MustParseAddr("127.9.10.3")) {
		t.Errorf("reserve of an address outside the prefix succeeded")
	}
	p.release(netip.MustParseAddr("127.9.9.6"))
	if !p.reserve(netip.MustParseAddr("127.9.9.6")) {
		t.Errorf("reserve of a released address failed")
	}
}
