package nlb

import (
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// target is one healthy member as the data path sees it: where to dial and
// whose counters to bump.
type target struct {
	m    *member
	addr string         // "ip:port" dialed for client traffic
	ap   netip.AddrPort // the same, for the epoll data path's connect(2)
}

// table is the immutable view of the member set read by the data path. A new
// table is published whenever the members, their health or the target port
// change, so picking a backend costs one atomic load and no lock.
type table struct {
	healthy []target // sorted by member ID
}

// buildTable returns the table for members (only healthy ones, sorted by ID)
// with traffic sent to port. It reads member health, so the caller holds the
// lock guarding it.
func buildTable(members map[string]*member, port uint16) *table {
	t := &table{}
	for _, m := range members {
		if !m.healthy {
			continue
		}
		ap := netip.AddrPortFrom(m.ip.Unmap(), port)
		t.healthy = append(t.healthy, target{m: m, addr: ap.String(), ap: ap})
	}
	slices.SortFunc(t.healthy, func(a, b target) int { return strings.Compare(a.m.id, b.m.id) })
	return t
}

// selector chooses the first target to try for a new connection (caddy
// selectionpolicies style). When a dial to it fails, the caller tries the
// following targets of pool in ring order. Implementations are safe for
// concurrent use and do not allocate.
type selector interface {
	// Select returns an index into pool, or -1 when pool is empty.
	Select(pool []target) int
}

// roundRobin hands out the targets of the pool in turn. The zero value is
// ready to use.
type roundRobin struct {
	next atomic.Uint64
}

var _ selector = (*roundRobin)(nil)

// Select implements selector.
func (r *roundRobin) Select(pool []target) int {
	if len(pool) == 0 {
		return -1
	}
	return int((r.next.Add(1) - 1) % uint64(len(pool)))
}
