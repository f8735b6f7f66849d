// Load-balancer reconciling: services bound to listeners, backends following the pools' running members.

package cloud

import (
	"context"
	"net/netip"
	"sort"
	"time"

	"tidepool/internal/cloud/nlb"
)

// loadBalancer is a network load balancer; each service is one listener.
type loadBalancer struct {
	rec      lbRecord
	services []*service
	deleting bool
}

// service is a load balancer service.
type service struct {
	rec      serviceRecord
	lb       balancer // nil while not bound
	cancel   context.CancelFunc
	state    string
	lastErr  string
	retryAt  time.Time
	deleting bool
	backends []nlb.Backend
}

func (c *Cloud) sortedNLBs() []*loadBalancer {
	ls := make([]*loadBalancer, 0, len(c.nlbs))
	for _, l := range c.nlbs {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].rec.CreatedAt.Before(ls[j].rec.CreatedAt) })
	return ls
}

// backendsLocked returns the pool's members a load balancer may use: those
// running and not leaving, by address.
func (c *Cloud) backendsLocked(poolID string) []nlb.Backend {
	var bs []nlb.Backend
	for _, m := range c.membersLocked(poolID) {
		if m.state == stateRunning && m.leave == stay {
			bs = append(bs, nlb.Backend{ID: m.rec.ID, IP: m.rec.IP})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].IP.Less(bs[j].IP) })
	return bs
}

// syncBackendsLocked gives every bound balancer its pool's current backends.
func (c *Cloud) syncBackendsLocked() {
	for _, lb := range c.nlbs {
		for _, s := range lb.services {
			if s.lb == nil {
				continue
			}
			bs := c.backendsLocked(s.rec.PoolID)
			if !equalBackends(bs, s.backends) {
				s.lb.SetBackends(bs)
				s.backends = bs
				c.log.Info("load balancer backends", "service", s.rec.ID, "count", len(bs))
			}
		}
	}
}

func equalBackends(a, b []nlb.Backend) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// reconcileNLBLocked binds missing service listeners and tears down a
// deleted load balancer.
func (c *Cloud) reconcileNLBLocked(ctx context.Context, lb *loadBalancer, now time.Time) {
	if lb.deleting {
		c.teardownNLBLocked(lb)
		return
	}
	for _, s := range lb.services {
		if !s.deleting && s.lb == nil && !now.Before(s.retryAt) {
			c.bindServiceLocked(ctx, lb, s, now)
		}
	}
}

// teardownNLBLocked unbinds the services of a deleted load balancer; it goes
// once they are all gone.
func (c *Cloud) teardownNLBLocked(lb *loadBalancer) {
	for _, s := range append([]*service(nil), lb.services...) {
		s.deleting = true
		if s.lb != nil {
			s.cancel()
		} else {
			c.removeServiceLocked(lb, s)
		}
	}
	if len(lb.services) == 0 {
		delete(c.nlbs, lb.rec.ID)
		c.nlbIPs.release(lb.rec.IP)
		c.log.Info("load balancer deleted", "nlb", lb.rec.ID)
	}
}

func (c *Cloud) removeServiceLocked(lb *loadBalancer, s *service) {
	for i, x := range lb.services {
		if x == s {
			lb.services = append(lb.services[:i], lb.services[i+1:]...)
			c.log.Info("load balancer service deleted", "nlb", lb.rec.ID, "service", s.rec.ID)
			return
		}
	}
}

func (c *Cloud) bindServiceLocked(ctx context.Context, lb *loadBalancer, s *service, now time.Time) {
	listen := netip.AddrPortFrom(lb.rec.IP, uint16(s.rec.Port)).String()
	b, err := c.newBalancer(s.rec.ID, listen, uint16(s.rec.TargetPort), checkOf(s.rec))
	if err != nil {
		s.state = "error"
		s.lastErr = err.Error()
		s.retryAt = now.Add(5 * time.Second)
		c.log.Warn("load balancer bind failed", "service", s.rec.ID, "listen", listen, "err", err)
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	s.lb, s.cancel, s.state, s.lastErr, s.backends = b, cancel, "running", "", nil
	c.log.Info("load balancer service listening", "nlb", lb.rec.ID, "service", s.rec.ID, "listen", listen, "target_port", s.rec.TargetPort)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := b.Run(sctx)
		cancel()
		c.mu.Lock()
		defer c.mu.Unlock()
		s.lb, s.cancel = nil, nil
		if err != nil && ctx.Err() == nil {
			s.state, s.lastErr = "error", err.Error()
			c.log.Warn("load balancer stopped", "service", s.rec.ID, "err", err)
		}
		if s.deleting {
			c.removeServiceLocked(lb, s)
		}
		c.poke()
	}()
}

// checkOf converts a service's spec health check (seconds) for nlb.
func checkOf(s serviceRecord) nlb.HealthCheck {
	hc := s.Healthcheck
	return nlb.HealthCheck{
		Mode:     hc.Mode,
		Port:     uint16(hc.Port),
		URI:      hc.URI,
		Interval: time.Duration(hc.Interval) * time.Second,
		Timeout:  time.Duration(hc.Timeout) * time.Second,
		Retries:  int(hc.Retries),
		TLSSNI:   hc.TLSSNI,
	}
}

// statusLocked returns the live health of a service's backends by address.
func (s *service) statusLocked() []apiServerStatus {
	out := []apiServerStatus{}
	if s.lb == nil {
		return out
	}
	for _, st := range s.lb.Status() {
		status := "failure"
		if st.Healthy {
			status = "success"
		}
		out = append(out, apiServerStatus{PublicIP: st.IP.String(), Status: status})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PublicIP < out[j].PublicIP })
	return out
}
