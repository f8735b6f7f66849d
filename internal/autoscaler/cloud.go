package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/backoff"
)

// Cloud is the subset of the Exoscale API client (github.com/exoscale/egoscale/v3)
// the autoscaler uses; v3.Client and *v3.Client satisfy it (build one with
// internal/exoclient). The client should not retry by itself: the autoscaler
// retries with backoff after re-reading the pool, so no change is applied
// twice.
type Cloud interface {
	GetInstancePool(ctx context.Context, id v3.UUID) (*v3.InstancePool, error)
	ScaleInstancePool(ctx context.Context, id v3.UUID, req v3.ScaleInstancePoolRequest) (*v3.Operation, error)
	EvictInstancePoolMembers(ctx context.Context, id v3.UUID, req v3.EvictInstancePoolMembersRequest) (*v3.Operation, error)
	ListInstances(ctx context.Context, opts ...v3.ListInstancesOpt) (*v3.ListInstancesResponse, error)
	GetInstance(ctx context.Context, id v3.UUID) (*v3.Instance, error)
	UpdateInstance(ctx context.Context, id v3.UUID, req v3.UpdateInstanceRequest) (*v3.Operation, error)
	GetLoadBalancerService(ctx context.Context, id v3.UUID, serviceID v3.UUID) (*v3.LoadBalancerService, error)
	GetOperation(ctx context.Context, id v3.UUID) (*v3.Operation, error)
}

var _ Cloud = (*v3.Client)(nil)

// Operation names, the "operation" label of tidepool_autoscaler_cloud_errors_total.
const (
	opGetPool       = "get-instance-pool"
	opListInstances = "list-instances"
	opGetInstance   = "get-instance"
	opScale         = "scale-instance-pool"
	opEvict         = "evict-instance-pool-members"
	opGetOperation  = "get-operation"
	opGetNLBService = "get-load-balancer-service"
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// isPermanent reports errors not worth retrying: our own permanent errors
// and API answers that will not change (bad request, wrong credentials,
// unknown IDs).
func isPermanent(err error) bool {
	var p permanentError
	if errors.As(err, &p) {
		return true
	}
	for _, e := range []error{v3.ErrBadRequest, v3.ErrUnauthorized, v3.ErrForbidden, v3.ErrNotFound,
		v3.ErrMethodNotAllowed, v3.ErrUnprocessableEntity} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// retries configures retries of cloud calls.
type retries struct {
	attempts  int           // total attempts, at least 1
	base, max time.Duration // first delay and delay cap; the delay doubles
}

// retry runs fn until it succeeds, returns a permanent error, ctx is done or
// the attempts are used up, sleeping with exponential backoff in between.
// The last error is returned.
func retry(ctx context.Context, b retries, log *slog.Logger, what string, fn func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || isPermanent(err) || attempt >= b.attempts || ctx.Err() != nil {
			return err
		}
		delay := backoff.Delay(attempt, b.base, b.max)
		log.Warn("cloud call failed, retrying", "what", what, "attempt", attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry interrupted: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// cloudPool reads and changes one instance pool through Cloud, retrying
// failed calls. Every change re-reads the pool first, so a retried change is
// never applied twice.
type cloudPool struct {
	api       Cloud
	id        v3.UUID
	backoff   retries
	opTimeout time.Duration // bound on waiting for one operation / for the pool to be running
	poll      time.Duration // first poll interval of waits
	metrics   *metrics
	log       *slog.Logger
}

// note counts a failed call and wraps its error with the operation name.
func (c *cloudPool) note(op string, err error) error {
	if err == nil {
		return nil
	}
	c.metrics.cloudErrors.WithLabelValues(op).Inc()
	return fmt.Errorf("%s: %w", op, err)
}

func (c *cloudPool) getPool(ctx context.Context) (*v3.InstancePool, error) {
	p, err := c.api.GetInstancePool(ctx, c.id)
	if err != nil {
		return nil, c.note(opGetPool, err)
	}
	return p, nil
}

// observe returns the pool's size, state and members (with creation time and
// public IP) and the members' drain marks, retrying failed calls.
func (c *cloudPool) observe(ctx context.Context) (policy.Pool, marks, error) {
	var out policy.Pool
	var ms marks
	err := retry(ctx, c.backoff, c.log, "observe pool", func(ctx context.Context) error {
		p, err := c.getPool(ctx)
		if err != nil {
			return err
		}
		members, mks, err := c.members(ctx, p)
		if err != nil {
			return err
		}
		out, ms = policy.Pool{Size: int(p.Size), State: string(p.State), Members: members}, mks
		return nil
	})
	return out, ms, err
}

// members resolves the pool's instances to members and reads their drain
// marks (labels). Instance references in the pool often carry only the ID,
// and never the labels, so details come from ListInstances filtered by the
// pool (manager) and, for any instance missing there, from GetInstance.
func (c *cloudPool) members(ctx context.Context, p *v3.InstancePool) ([]policy.Member, marks, error) {
	members := make([]policy.Member, 0, len(p.Instances))
	ms := make(marks, len(p.Instances))
	for _, in := range p.Instances {
		members = append(members, policy.Member{ID: string(in.ID), CreatedAt: in.CreatedAT, PublicIP: ipString(in.PublicIP)})
	}
	if len(members) == 0 {
		return members, ms, nil
	}
	list, err := c.api.ListInstances(ctx, v3.ListInstancesWithManagerID(c.id),
		v3.ListInstancesWithManagerType(v3.ListInstancesManagerTypeInstancePool))
	if err != nil {
		return nil, nil, c.note(opListInstances, err)
	}
	byID := make(map[v3.UUID]v3.ListInstancesResponseInstances, len(list.Instances))
	for _, in := range list.Instances {
		byID[in.ID] = in
	}
	for i, m := range members {
		if in, ok := byID[v3.UUID(m.ID)]; ok {
			members[i] = policy.Member{ID: m.ID, CreatedAt: in.CreatedAT, PublicIP: ipString(in.PublicIP)}
			ms[m.ID] = readMark(in.Labels)
			continue
		}
		in, err := c.api.GetInstance(ctx, v3.UUID(m.ID))
		if errors.Is(err, v3.ErrNotFound) {
			continue // being removed; keep what the pool said
		}
		if err != nil {
			return nil, nil, c.note(opGetInstance, err)
		}
		members[i] = policy.Member{ID: m.ID, CreatedAt: in.CreatedAT, PublicIP: ipString(in.PublicIP)}
		ms[m.ID] = readMark(in.Labels)
	}
	return members, ms, nil
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

func hasInstance(p *v3.InstancePool, id string) bool {
	return slices.ContainsFunc(p.Instances, func(in v3.Instance) bool { return string(in.ID) == id })
}

// scaleUp grows the pool from size from to size to and waits for the
// operation and for the pool to be running again. sent reports whether a
// scale request reached the API (so the change may have happened even on
// error). A pool found at another size than from before any request was sent
// means the decision is stale: nothing is done.
func (c *cloudPool) scaleUp(ctx context.Context, from, to int) (sent bool, err error) {
	err = retry(ctx, c.backoff, c.log, "scale up", func(ctx context.Context) error {
		p, err := c.getPool(ctx)
		if err != nil {
			return err
		}
		switch size := int(p.Size); {
		case sent && size == to:
			return nil // an earlier attempt got through
		case size != from:
			return permanent(fmt.Errorf("pool size is %d, not %d as decided: decision is stale, not scaling", size, from))
		case p.State != v3.InstancePoolStateRunning:
			return fmt.Errorf("pool is %s, not running", p.State)
		}
		sent = true
		op, err := c.api.ScaleInstancePool(ctx, c.id, v3.ScaleInstancePoolRequest{Size: int64(to)})
		if err != nil {
			return c.note(opScale, err)
		}
		return c.wait(ctx, op)
	})
	if err != nil {
		return sent, err
	}
	return sent, c.waitRunning(ctx)
}

// checkVictim confirms, before a member is drained, that the pool still has
// size and member id, waiting (with retries) while it is not running.
func (c *cloudPool) checkVictim(ctx context.Context, size int, id string) error {
	return retry(ctx, c.backoff, c.log, "check victim", func(ctx context.Context) error {
		p, err := c.getPool(ctx)
		if err != nil {
			return err
		}
		switch {
		case int(p.Size) != size:
			return permanent(fmt.Errorf("pool size is %d, not %d as decided: decision is stale, not scaling", p.Size, size))
		case !hasInstance(p, id):
			return permanent(fmt.Errorf("member %s is no longer in the pool: decision is stale, not scaling", id))
		case p.State != v3.InstancePoolStateRunning:
			return fmt.Errorf("pool is %s, not running", p.State)
		}
		return nil
	})
}

// evict removes member id from the pool and waits for the operation and for
// the pool to be running again. sent reports whether an evict request
// reached the API. Once sent, a member found gone counts as success.
func (c *cloudPool) evict(ctx context.Context, id string) (sent bool, err error) {
	err = retry(ctx, c.backoff, c.log, "evict", func(ctx context.Context) error {
		p, err := c.getPool(ctx)
		if err != nil {
			return err
		}
		switch {
		case !hasInstance(p, id) && sent:
			return nil
		case !hasInstance(p, id):
			return permanent(fmt.Errorf("member %s is no longer in the pool", id))
		case p.State != v3.InstancePoolStateRunning:
			return fmt.Errorf("pool is %s, not running", p.State)
		}
		sent = true
		op, err := c.api.EvictInstancePoolMembers(ctx, c.id, v3.EvictInstancePoolMembersRequest{Instances: []v3.UUID{v3.UUID(id)}})
		if err != nil {
			return c.note(opEvict, err)
		}
		return c.wait(ctx, op)
	})
	if err != nil {
		return sent, err
	}
	return sent, c.waitRunning(ctx)
}

// wait polls op until it leaves the pending state (at most opTimeout) and
// returns an error unless it succeeded.
func (c *cloudPool) wait(ctx context.Context, op *v3.Operation) error {
	if op == nil {
		return errors.New("no operation returned")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	interval, failures := c.poll, 0
	for op.State == v3.OperationStatePending || op.State == "" {
		if err := sleep(ctx, interval); err != nil {
			return fmt.Errorf("wait for operation %s: %w", op.ID, err)
		}
		interval = min(interval*2, 2*time.Second)
		o, err := c.api.GetOperation(ctx, op.ID)
		if err != nil {
			if failures++; failures >= 5 || isPermanent(err) {
				return c.note(opGetOperation, err)
			}
			c.note(opGetOperation, err)
			continue
		}
		failures = 0
		op = o
	}
	if op.State != v3.OperationStateSuccess {
		// The cloud tried and gave up: retrying the step (which would find
		// the size already changed) must not turn this into a success.
		return permanent(fmt.Errorf("operation %s %s: reason %q, message %q", op.ID, op.State, op.Reason, op.Message))
	}
	return nil
}

// waitRunning polls the pool until its state is running (at most opTimeout).
func (c *cloudPool) waitRunning(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	interval := c.poll
	for {
		p, err := c.getPool(ctx)
		if err == nil && p.State == v3.InstancePoolStateRunning {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("pool is %s", p.State)
		}
		if serr := sleep(ctx, interval); serr != nil {
			return fmt.Errorf("wait for the pool to be running: %w (last: %w)", serr, err)
		}
		interval = min(interval*2, 2*time.Second)
	}
}

// nlbMemberStatus returns the healthcheck status of the backend with ip in
// the NLB service, and whether the service lists it.
func (c *cloudPool) nlbMemberStatus(ctx context.Context, nlbID, svcID v3.UUID, ip string) (v3.LoadBalancerServerStatusStatus, bool, error) {
	svc, err := c.api.GetLoadBalancerService(ctx, nlbID, svcID)
	if err != nil {
		return "", false, c.note(opGetNLBService, err)
	}
	for _, st := range svc.HealthcheckStatus {
		if st.PublicIP != nil && st.PublicIP.String() == ip {
			return st.Status, true, nil
		}
	}
	return "", false, nil
}

// nlbTargetPort returns the NLB service's target port.
func (c *cloudPool) nlbTargetPort(ctx context.Context, nlbID, svcID v3.UUID) (int, error) {
	var port int
	err := retry(ctx, c.backoff, c.log, "get NLB service", func(ctx context.Context) error {
		svc, err := c.api.GetLoadBalancerService(ctx, nlbID, svcID)
		if err != nil {
			return c.note(opGetNLBService, err)
		}
		port = int(svc.TargetPort)
		return nil
	})
	return port, err
}

// sleep waits d or until ctx is done, returning ctx.Err() in that case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
