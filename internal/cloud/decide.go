package cloud

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"tidepool/internal/backoff"
)

// Instance states (spec enum instance-state) used by this cloud.
//
//	starting ──(process up, /health 200)──> running
//	   │                                       │
//	   ├──(evict, scale down, pool delete)─────┴──> stopping ──> (gone)
//	   ├──(DELETE /instance)───────────────────────> destroying ──> (gone)
//	   └──(start failed, process exited)───────────> error ──> (gone, replaced)
//
// A member kept across a restart of the cloud is "stopped" between the
// shutdown and the next Run, which starts it again.
const (
	stateStarting   = "starting"
	stateRunning    = "running"
	stateStopping   = "stopping"
	stateDestroying = "destroying"
	stateError      = "error"
	stateStopped    = "stopped"
)

// Instance pool states (spec enum).
const (
	poolCreating    = "creating"
	poolScalingUp   = "scaling-up"
	poolScalingDown = "scaling-down"
	poolRunning     = "running"
	poolDestroying  = "destroying"
)

// leaveReason says why a member leaves its pool; stay means it does not.
type leaveReason int

const (
	stay leaveReason = iota
	leaveScaleDown
	leaveEvict
	leavePoolDelete
	leaveKill  // DELETE /instance: hard kill, the pool replaces it
	leaveCrash // the process exited or never became ready: replaced
)

func (r leaveReason) String() string {
	return [...]string{"stay", "scale-down", "evict", "pool-delete", "kill", "crash"}[r]
}

// poolCounts is what the pool state depends on.
type poolCounts struct {
	Size          int
	Active        int // members not leaving
	ActiveRunning int // active members in state running
	Leaving       int // members leaving but not gone yet
	Deleting      bool
	EverRunning   bool // the pool has been running at least once
}

// poolState derives the spec pool state from its members: running only when
// exactly size members are running and none is still leaving.
func poolState(p poolCounts) string {
	switch {
	case p.Deleting:
		return poolDestroying
	case p.Active < p.Size || p.ActiveRunning < p.Active:
		if !p.EverRunning {
			return poolCreating
		}
		return poolScalingUp
	case p.Active > p.Size || p.Leaving > 0:
		return poolScalingDown
	default:
		return poolRunning
	}
}

// victim is a scale-down candidate.
type victim struct {
	ID      string
	Running bool
	Index   int // creation order within the pool
}

// pickVictims chooses n members to remove when a pool shrinks without naming
// members: members not yet running first (they serve nothing), then the
// newest. Returned IDs are in removal order.
func pickVictims(members []victim, n int) []string {
	if n <= 0 {
		return nil
	}
	c := append([]victim(nil), members...)
	sort.SliceStable(c, func(i, j int) bool {
		if c[i].Running != c[j].Running {
			return !c[i].Running
		}
		return c[i].Index > c[j].Index
	})
	if n > len(c) {
		n = len(c)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = c[i].ID
	}
	return ids
}

// restartBackoff is how long a pool waits before starting a new member after
// failures consecutive start failures: 1s, 2s, 4s ... capped at 30s.
func restartBackoff(failures int) time.Duration {
	return backoff.Delay(failures, time.Second, 30*time.Second)
}

// ipPool hands out addresses of a prefix, from .2 upward, never one in use.
type ipPool struct {
	prefix netip.Prefix
	used   map[netip.Addr]bool
}

func newIPPool(prefix netip.Prefix) *ipPool {
	return &ipPool{prefix: prefix.Masked(), used: map[netip.Addr]bool{}}
}

// alloc returns the lowest free address from the network address + 2.
func (p *ipPool) alloc() (netip.Addr, error) {
	a := p.prefix.Addr().Next()
	for a = a.Next(); a.IsValid() && p.prefix.Contains(a); a = a.Next() {
		if !p.used[a] && p.prefix.Contains(a.Next()) { // keep the last (broadcast) address free
			p.used[a] = true
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address in %s", p.prefix)
}

// reserve marks a as used (restoring state); false if it is outside the
// prefix or already used.
func (p *ipPool) reserve(a netip.Addr) bool {
	if !p.prefix.Contains(a) || p.used[a] {
		return false
	}
	p.used[a] = true
	return true
}

func (p *ipPool) release(a netip.Addr) { delete(p.used, a) }
