// Pool reconciling: each pass brings an instance pool's members toward its size.

package cloud

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"
)

// pool is an instance pool.
type pool struct {
	rec      poolRecord
	deleting bool
	failures int // consecutive member start failures
	lastErr  string
	retryAt  time.Time
	// sizeGen counts the requests that set the size (create, scale, evict):
	// an operation waiting for an earlier size has been superseded.
	sizeGen int
}

func (c *Cloud) sortedPools() []*pool {
	ps := make([]*pool, 0, len(c.pools))
	for _, p := range c.pools {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].rec.CreatedAt.Before(ps[j].rec.CreatedAt) })
	return ps
}

// membersLocked returns the pool's members (leaving ones included) in
// creation order.
func (c *Cloud) membersLocked(poolID string) []*instance {
	var ms []*instance
	for _, inst := range c.instances {
		if inst.rec.PoolID == poolID {
			ms = append(ms, inst)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].rec.Index < ms[j].rec.Index })
	return ms
}

func (c *Cloud) poolCountsLocked(p *pool) poolCounts {
	pc := poolCounts{Size: p.rec.Size, Deleting: p.deleting, EverRunning: p.rec.EverRunning}
	for _, m := range c.membersLocked(p.rec.ID) {
		switch {
		case m.leave != stay:
			pc.Leaving++
		case m.state == stateRunning:
			pc.Active++
			pc.ActiveRunning++
		default:
			pc.Active++
		}
	}
	return pc
}

func (c *Cloud) poolStateLocked(p *pool) string {
	return poolState(c.poolCountsLocked(p))
}

// reconcilePoolLocked removes surplus members and creates missing ones.
func (c *Cloud) reconcilePoolLocked(ctx context.Context, p *pool, now time.Time) {
	members := c.membersLocked(p.rec.ID)
	if p.deleting {
		for _, m := range members {
			c.requestLeaveLocked(m, leavePoolDelete)
		}
		if len(members) == 0 {
			delete(c.pools, p.rec.ID)
			c.log.Info("instance pool deleted", "pool", p.rec.ID, "name", p.rec.Name)
		}
		return
	}
	var active []victim
	for _, m := range members {
		if m.leave == stay {
			active = append(active, victim{ID: m.rec.ID, Running: m.state == stateRunning, Index: m.rec.Index})
		}
	}
	if surplus := len(active) - p.rec.Size; surplus > 0 {
		for _, id := range pickVictims(active, surplus) {
			c.log.Info("scaling down member", "pool", p.rec.ID, "instance", id, "size", p.rec.Size)
			c.requestLeaveLocked(c.instances[id], leaveScaleDown)
		}
		return
	}
	if state := poolState(c.poolCountsLocked(p)); state == poolRunning && !p.rec.EverRunning {
		p.rec.EverRunning = true
	}
	missing := p.rec.Size - len(active)
	if missing <= 0 || now.Before(p.retryAt) {
		return
	}
	for range missing {
		ip, err := c.memberIPs.alloc()
		if err != nil {
			if n := c.leavingLocked(); n > 0 {
				// Not a failure: the addresses come back as those members go
				// (each departure pokes the reconciler).
				c.log.Debug("member address range exhausted, waiting for leaving members", "pool", p.rec.ID, "leaving", n)
				return
			}
			c.poolFailedLocked(p, fmt.Errorf("allocate member address: %w", err), now)
			return
		}
		p.rec.NextIndex++
		inst := &instance{
			rec: instanceRecord{
				ID:             newUUID(),
				Zone:           p.rec.Zone,
				Name:           fmt.Sprintf("%s-%s-%d", p.rec.InstancePrefix, p.rec.ID[:5], p.rec.NextIndex),
				PoolID:         p.rec.ID,
				Index:          p.rec.NextIndex,
				IP:             ip,
				InstanceTypeID: p.rec.InstanceTypeID,
				TemplateID:     p.rec.TemplateID,
				DiskSize:       p.rec.DiskSize,
				CreatedAt:      now.UTC(),
				Labels:         maps.Clone(p.rec.Labels), // members carry their pool's labels, as on Exoscale
			},
			state: stateStarting,
			stop:  make(chan struct{}),
		}
		c.instances[inst.rec.ID] = inst
		c.log.Info("creating member", "pool", p.rec.ID, "instance", inst.rec.ID, "name", inst.rec.Name, "ip", ip)
		c.startWorkerLocked(ctx, inst)
	}
}

// leavingLocked counts the members of every pool that are leaving but
// still hold their address.
func (c *Cloud) leavingLocked() int {
	n := 0
	for _, inst := range c.instances {
		if inst.leave != stay {
			n++
		}
	}
	return n
}

// poolFailedLocked records a member failure and delays the next start.
func (c *Cloud) poolFailedLocked(p *pool, err error, now time.Time) {
	p.failures++
	p.lastErr = err.Error()
	p.retryAt = now.Add(restartBackoff(p.failures))
	c.log.Warn("pool member failure", "pool", p.rec.ID, "failures", p.failures, "retry_at", p.retryAt, "err", err)
}
