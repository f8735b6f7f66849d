// Package provision creates the demo deployment through the Exoscale API, as
// Terraform does on real Exoscale: an instance pool and a network load
// balancer service in front of it. It only uses the egoscale v3 client, so it
// works against the local cloud and real Exoscale alike.
//
// It owns creating the deployment through the API and must not import the
// local cloud (internal/cloud) or any other tidepool package.
package provision

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
)

// PoolSpec describes an instance pool to create.
type PoolSpec struct {
	Name string
	Size int
	// InstanceType is "family.size" or an ID; "" means "standard.micro".
	InstanceType string
	// Template is a template name or ID; "" means "Linux Ubuntu 24.04 LTS 64-bit".
	Template string
	// DiskSize in GiB; 0 means 10.
	DiskSize int64
}

// CreatePool creates the pool and waits until it is running with all its
// members. It returns the pool ID.
func CreatePool(ctx context.Context, c *v3.Client, spec PoolSpec) (v3.UUID, error) {
	if spec.InstanceType == "" {
		spec.InstanceType = "standard.micro"
	}
	if spec.Template == "" {
		spec.Template = "Linux Ubuntu 24.04 LTS 64-bit"
	}
	if spec.DiskSize == 0 {
		spec.DiskSize = 10
	}
	types, err := c.ListInstanceTypes(ctx)
	if err != nil {
		return "", fmt.Errorf("list instance types: %w", err)
	}
	it, err := types.FindInstanceTypeByIdOrFamilyAndSize(spec.InstanceType)
	if err != nil {
		return "", fmt.Errorf("instance type %q: %w", spec.InstanceType, err)
	}
	tpls, err := c.ListTemplates(ctx)
	if err != nil {
		return "", fmt.Errorf("list templates: %w", err)
	}
	tpl, err := tpls.FindTemplate(spec.Template)
	if err != nil {
		return "", fmt.Errorf("template %q: %w", spec.Template, err)
	}
	op, err := c.CreateInstancePool(ctx, v3.CreateInstancePoolRequest{
		Name:         spec.Name,
		Size:         int64(spec.Size),
		DiskSize:     spec.DiskSize,
		InstanceType: &v3.InstanceType{ID: it.ID},
		Template:     &v3.Template{ID: tpl.ID},
	})
	if err != nil {
		return "", fmt.Errorf("create instance pool: %w", err)
	}
	if op, err = WaitOperation(ctx, c, op); err != nil {
		return "", fmt.Errorf("create instance pool: %w", err)
	}
	id := op.Reference.ID
	return id, WaitPoolRunning(ctx, c, id)
}

// WaitPoolRunning polls the pool until its state is running with as many
// instances as its size, or ctx ends.
func WaitPoolRunning(ctx context.Context, c *v3.Client, id v3.UUID) error {
	var last string
	for {
		p, err := c.GetInstancePool(ctx, id)
		if err == nil {
			last = fmt.Sprintf("state %s, size %d, %d instances", p.State, p.Size, len(p.Instances))
			if p.State == v3.InstancePoolStateRunning && int64(len(p.Instances)) == p.Size {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance pool %s not running: %w (last: %s)", id, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ServiceSpec describes a load balancer service in front of a pool.
type ServiceSpec struct {
	Name string
	Pool v3.UUID
	// Port is the service port; TargetPort the members' app port.
	Port, TargetPort uint16
	// HealthURI is the HTTP health check path; "" means "/health".
	HealthURI string
	// Interval, Timeout (seconds) and Retries of the health check; zero
	// means 10, 5 and 1 (Exoscale's defaults).
	Interval, Timeout, Retries int64
}

// Service is a created load balancer service.
type Service struct {
	NLBID, ServiceID v3.UUID
	// Addr is the service's "ip:port".
	Addr string
}

// CreateNLBService creates a network load balancer with one TCP round-robin
// service and an HTTP health check, and waits until the service is running.
func CreateNLBService(ctx context.Context, c *v3.Client, spec ServiceSpec) (Service, error) {
	if spec.HealthURI == "" {
		spec.HealthURI = "/health"
	}
	if spec.Interval == 0 {
		spec.Interval = 10
	}
	if spec.Timeout == 0 {
		spec.Timeout = 5
	}
	if spec.Retries == 0 {
		spec.Retries = 1
	}
	op, err := c.CreateLoadBalancer(ctx, v3.CreateLoadBalancerRequest{Name: spec.Name})
	if err != nil {
		return Service{}, fmt.Errorf("create load balancer: %w", err)
	}
	if op, err = WaitOperation(ctx, c, op); err != nil {
		return Service{}, fmt.Errorf("create load balancer: %w", err)
	}
	s := Service{NLBID: op.Reference.ID}
	lb, err := c.GetLoadBalancer(ctx, s.NLBID)
	if err != nil {
		return Service{}, fmt.Errorf("get load balancer: %w", err)
	}
	before := map[v3.UUID]bool{}
	for _, svc := range lb.Services {
		before[svc.ID] = true
	}
	op, err = c.AddServiceToLoadBalancer(ctx, s.NLBID, v3.AddServiceToLoadBalancerRequest{
		Name:         spec.Name,
		Port:         int64(spec.Port),
		TargetPort:   int64(spec.TargetPort),
		Protocol:     v3.AddServiceToLoadBalancerRequestProtocolTCP,
		Strategy:     v3.AddServiceToLoadBalancerRequestStrategyRoundRobin,
		InstancePool: &v3.InstancePool{ID: spec.Pool},
		Healthcheck: &v3.LoadBalancerServiceHealthcheck{
			Mode: v3.LoadBalancerServiceHealthcheckModeHTTP, Port: int64(spec.TargetPort), URI: spec.HealthURI,
			Interval: spec.Interval, Timeout: spec.Timeout, Retries: spec.Retries,
		},
	})
	if err != nil {
		return Service{}, fmt.Errorf("add load balancer service: %w", err)
	}
	if _, err = WaitOperation(ctx, c, op); err != nil {
		return Service{}, fmt.Errorf("add load balancer service: %w", err)
	}
	// The operation references the load balancer, not the new service: find
	// the service that was not there before and has the name asked for.
	for {
		lb, err := c.GetLoadBalancer(ctx, s.NLBID)
		if err != nil {
			return Service{}, fmt.Errorf("get load balancer: %w", err)
		}
		svc, err := newService(lb, before, spec.Name)
		if err != nil {
			return Service{}, fmt.Errorf("load balancer %s: %w", s.NLBID, err)
		}
		s.ServiceID = svc.ID
		if svc.State == v3.LoadBalancerServiceStateRunning {
			ip, err := netip.ParseAddr(lb.IP.String())
			if err != nil {
				return Service{}, fmt.Errorf("load balancer ip %q: %w", lb.IP, err)
			}
			s.Addr = netip.AddrPortFrom(ip, spec.Port).String()
			return s, nil
		}
		select {
		case <-ctx.Done():
			return Service{}, fmt.Errorf("load balancer service %s not running: %w", s.ServiceID, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// newService returns the service of lb that is not in before and is named
// name, as egoscale v2 identifies a service it just added; an error when
// there is none or more than one.
func newService(lb *v3.LoadBalancer, before map[v3.UUID]bool, name string) (v3.LoadBalancerService, error) {
	var found []v3.LoadBalancerService
	for _, svc := range lb.Services {
		if !before[svc.ID] && svc.Name == name {
			found = append(found, svc)
		}
	}
	switch len(found) {
	case 0:
		return v3.LoadBalancerService{}, fmt.Errorf("no new service named %q", name)
	case 1:
		return found[0], nil
	}
	return v3.LoadBalancerService{}, fmt.Errorf("%d new services named %q", len(found), name)
}

// WaitOperation polls op every 100ms until it succeeds (returning the final
// operation), fails, or ctx ends. egoscale's Client.Wait polls every 3 s,
// which slows the local cloud's quick operations down for nothing.
func WaitOperation(ctx context.Context, c *v3.Client, op *v3.Operation) (*v3.Operation, error) {
	for {
		switch op.State {
		case v3.OperationStateSuccess:
			return op, nil
		case v3.OperationStateFailure, v3.OperationStateTimeout:
			return op, fmt.Errorf("operation %s %s: %s %s", op.ID, op.State, op.Reason, op.Message)
		}
		select {
		case <-ctx.Done():
			return op, fmt.Errorf("operation %s: %w", op.ID, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		next, err := c.GetOperation(ctx, op.ID)
		if err != nil {
			return op, fmt.Errorf("get operation %s: %w", op.ID, err)
		}
		op = next
	}
}
