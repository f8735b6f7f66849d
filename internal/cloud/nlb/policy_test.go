package nlb

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
)

func testPool(n int) []target {
	pool := make([]target, n)
	for i := range pool {
		pool[i] = target{m: &member{id: string(rune('a' + i))}}
	}
	return pool
}

func TestRoundRobinSelect(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		rounds int
	}{
		{"single member", 1, 5},
		{"two members", 2, 7},
		{"five members", 5, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rr roundRobin
			pool := testPool(tt.size)
			got := make([]int, tt.size)
			var order []int
			for range tt.size * tt.rounds {
				i := rr.Select(pool)
				if i < 0 || i >= tt.size {
					t.Fatalf("Select = %d, want index in [0,%d)", i, tt.size)
				}
				got[i]++
				order = append(order, i)
			}
			for i, n := range got {
				if n != tt.rounds {
					t.Errorf("member %d picked %d times, want %d (picks %v)", i, n, tt.rounds, got)
				}
			}
			for k := 1; k < len(order); k++ {
				if want := (order[k-1] + 1) % tt.size; order[k] != want {
					t.Fatalf("pick %d = %d after %d, want %d (in turn)", k, order[k], order[k-1], want)
				}
			}
		})
	}
}

func TestRoundRobinEmptyPool(t *testing.T) {
	var rr roundRobin
	for _, pool := range [][]target{nil, {}} {
		if got := rr.Select(pool); got != -1 {
			t.Errorf("Select(%v) = %d, want -1", pool, got)
		}
	}
}

// TestRoundRobinConcurrent checks that concurrent pickers still share the
// pool evenly (run with -race).
func TestRoundRobinConcurrent(t *testing.T) {
	const workers, perWorker, size = 8, 300, 3
	var rr roundRobin
	pool := testPool(size)
	var mu sync.Mutex
	got := make([]int, size)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := make([]int, size)
			for range perWorker {
				local[rr.Select(pool)]++
			}
			mu.Lock()
			for i, n := range local {
				got[i] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, n := range got {
		if want := workers * perWorker / size; n != want {
			t.Errorf("member %d picked %d times, want %d", i, n, want)
		}
	}
}

func TestBuildTable(t *testing.T) {
	mk := func(id, ip string, healthy bool) *member {
		return &member{id: id, ip: netip.MustParseAddr(ip), healthy: healthy}
	}
	tests := []struct {
		name    string
		members []*member
		port    uint16
		want    []string // "id addr", in table order
	}{
		{"empty", nil, 80, nil},
		{"only healthy, sorted by id", []*member{
			mk("c", "127.0.0.3", true), mk("a", "127.0.0.1", true), mk("b", "127.0.0.2", false),
		}, 8080, []string{"a 127.0.0.1:8080", "c 127.0.0.3:8080"}},
		{"none healthy", []*member{mk("a", "127.0.0.1", false)}, 80, nil},
		{"ipv6", []*member{mk("v6", "::1", true)}, 443, []string{"v6 [::1]:443"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members := make(map[string]*member)
			for _, m := range tt.members {
				members[m.id] = m
			}
			var got []string
			for _, tg := range buildTable(members, tt.port).healthy {
				got = append(got, tg.m.id+" "+tg.addr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("buildTable = %q, want %q", got, tt.want)
			}
		})
	}
}
