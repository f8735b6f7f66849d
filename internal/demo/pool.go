package demo

import (
	"context"

	"tidepool/internal/provision"
)

// runPool is the pool and load balancer phase: through the Exoscale API, as
// Terraform would, an instance pool of MinSize members and a load balancer
// service in front of it with an HTTP health check on /health. It waits
// until both run; the cloud phase stops what they started.
func (s *session) runPool(ctx context.Context, ready func()) error {
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	var err error
	if s.poolID, err = provision.CreatePool(setupCtx, s.client, provision.PoolSpec{Name: "tidepool-demo", Size: s.cfg.MinSize}); err != nil {
		return err
	}
	if s.svc, err = provision.CreateNLBService(setupCtx, s.client, provision.ServiceSpec{
		Name: "tidepool-demo", Pool: s.poolID, Port: s.cfg.ServicePort, TargetPort: s.addrs.appPort,
		Interval: 1, Timeout: 1, Retries: 1,
	}); err != nil {
		return err
	}
	s.say("pool %s running with %d member(s); load balancer service on %s", s.poolID, s.cfg.MinSize, s.svc.Addr)
	ready()
	<-ctx.Done()
	return nil
}
