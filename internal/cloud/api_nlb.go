package cloud

import (
	"net/http"
	"strings"
)

// Network load balancer and service endpoints.

func (c *Cloud) nlbRoutes() []route {
	return []route{
		{"GET", "/load-balancer", c.listNLBs},
		{"POST", "/load-balancer", c.createNLB},
		{"GET", "/load-balancer/{id}", c.getNLB},
		{"PUT", "/load-balancer/{id}", c.updateNLB},
		{"DELETE", "/load-balancer/{id}", c.deleteNLB},
		{"DELETE", "/load-balancer/{id}/{field}", c.resetNLBField},
		{"POST", "/load-balancer/{id}/service", c.addService},
		{"GET", "/load-balancer/{id}/service/{service-id}", c.getService},
		{"PUT", "/load-balancer/{id}/service/{service-id}", c.updateService},
		{"DELETE", "/load-balancer/{id}/service/{service-id}", c.deleteService},
		{"DELETE", "/load-balancer/{id}/service/{service-id}/{field}", c.resetServiceField},
	}
}

func nlbLink(id string) string { return "/v2/load-balancer/" + id }

func (c *Cloud) serviceAPILocked(s *service) apiService {
	hc := s.rec.Healthcheck
	state := s.state
	if s.deleting {
		state = "deleting"
	}
	return apiService{
		ID: s.rec.ID, Name: s.rec.Name, Description: s.rec.Description, State: state,
		Protocol: s.rec.Protocol, Strategy: s.rec.Strategy, Port: s.rec.Port, TargetPort: s.rec.TargetPort,
		InstancePool: &apiRef{ID: s.rec.PoolID}, Healthcheck: &hc, HealthcheckStatus: s.statusLocked(),
	}
}

func (c *Cloud) nlbAPILocked(lb *loadBalancer) apiLoadBalancer {
	out := apiLoadBalancer{
		ID: lb.rec.ID, Name: lb.rec.Name, Description: lb.rec.Description, State: "running",
		IP: lb.rec.IP.String(), CreatedAt: lb.rec.CreatedAt, Labels: lb.rec.Labels, Services: []apiService{},
	}
	if lb.deleting {
		out.State = "deleting"
	}
	for _, s := range lb.services {
		out.Services = append(out.Services, c.serviceAPILocked(s))
	}
	return out
}

// nlbLocked returns the load balancer id of zone that is not being
// deleted, else a 404 error.
func (c *Cloud) nlbLocked(zone, id string) (*loadBalancer, error) {
	lb := c.nlbs[id]
	if lb == nil || lb.deleting || lb.rec.Zone != zone {
		return nil, notFound("load balancer", id)
	}
	return lb, nil
}

func (c *Cloud) listNLBs(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []apiLoadBalancer{}
	for _, lb := range c.sortedNLBs() {
		if !lb.deleting && lb.rec.Zone == zoneOf(r) {
			out = append(out, c.nlbAPILocked(lb))
		}
	}
	return map[string]any{"load-balancers": out}, nil
}

func (c *Cloud) getNLB(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, err := c.nlbLocked(zoneOf(r), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return c.nlbAPILocked(lb), nil
}

func (c *Cloud) createNLB(r *http.Request) (any, error) {
	var req loadBalancerRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Name == nil {
		return nil, errorf(http.StatusBadRequest, "name is required")
	}
	if err := validName("name", *req.Name); err != nil {
		return nil, err
	}
	rec := lbRecord{Zone: zoneOf(r), Name: *req.Name, Labels: req.Labels}
	if req.Description != nil {
		if err := validDescription(*req.Description); err != nil {
			return nil, err
		}
		rec.Description = *req.Description
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ip, err := c.nlbIPs.alloc()
	if err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "allocate load balancer address: %v", err)
	}
	rec.ID, rec.IP, rec.CreatedAt = newUUID(), ip, c.now().UTC()
	c.nlbs[rec.ID] = &loadBalancer{rec: rec}
	c.log.Info("load balancer created", "nlb", rec.ID, "name", rec.Name, "ip", ip)
	return c.addOpLocked(zoneOf(r), &operation{kind: opDone, command: "create-load-balancer", refID: rec.ID, link: nlbLink(rec.ID)}).api(), nil
}

func (c *Cloud) updateNLB(r *http.Request) (any, error) {
	var req loadBalancerRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Name != nil {
		if err := validName("name", *req.Name); err != nil {
			return nil, err
		}
	}
	if req.Description != nil {
		if err := validDescription(*req.Description); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, err := c.nlbLocked(zoneOf(r), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if req.Name != nil {
		lb.rec.Name = *req.Name
	}
	if req.Description != nil {
		lb.rec.Description = *req.Description
	}
	if req.Labels != nil {
		lb.rec.Labels = req.Labels
	}
	return c.addOpLocked(zoneOf(r), &operation{kind: opDone, command: "update-load-balancer", refID: lb.rec.ID, link: nlbLink(lb.rec.ID)}).api(), nil
}

// resetNLBField serves DELETE /load-balancer/{id}/{field}: description or
// labels go back to empty.
func (c *Cloud) resetNLBField(r *http.Request) (any, error) {
	field := r.PathValue("field")
	if field != "description" && field != "labels" {
		return nil, errorf(http.StatusBadRequest, "load balancer field %q cannot be reset", field)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, err := c.nlbLocked(zoneOf(r), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if field == "description" {
		lb.rec.Description = ""
	} else {
		lb.rec.Labels = nil
	}
	return c.addOpLocked(zoneOf(r), &operation{kind: opDone, command: "reset-load-balancer-field", refID: lb.rec.ID, link: nlbLink(lb.rec.ID)}).api(), nil
}

func (c *Cloud) deleteNLB(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, err := c.nlbLocked(zoneOf(r), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	lb.deleting = true
	c.log.Info("load balancer deleting", "nlb", lb.rec.ID)
	c.teardownNLBLocked(lb)
	return c.addOpLocked(zoneOf(r), &operation{kind: opNLBDelete, command: "delete-load-balancer", refID: lb.rec.ID, link: nlbLink(lb.rec.ID)}).api(), nil
}

// validateService checks a complete service spec and fills defaults.
func (c *Cloud) validateService(zone string, s *serviceRecord) error {
	if err := validName("name", s.Name); err != nil {
		return err
	}
	if err := validDescription(s.Description); err != nil {
		return err
	}
	if s.Protocol != "tcp" {
		return errorf(http.StatusBadRequest, "unsupported protocol %q: only tcp", s.Protocol)
	}
	if s.Strategy != "round-robin" {
		return errorf(http.StatusBadRequest, "unsupported strategy %q: only round-robin", s.Strategy)
	}
	if s.Port < 1 || s.Port > 65535 {
		return errorf(http.StatusBadRequest, "invalid port %d", s.Port)
	}
	if s.TargetPort < 1 || s.TargetPort > 65535 {
		return errorf(http.StatusBadRequest, "invalid target-port %d", s.TargetPort)
	}
	if p := c.pools[s.PoolID]; p == nil || p.deleting || p.rec.Zone != zone {
		return errorf(http.StatusBadRequest, "unknown instance-pool %q", s.PoolID)
	}
	hc := &s.Healthcheck
	if hc.Mode != "http" && hc.Mode != "https" && hc.Mode != "tcp" {
		return errorf(http.StatusBadRequest, "unsupported healthcheck mode %q: tcp, http or https", hc.Mode)
	}
	if hc.Port == 0 {
		hc.Port = s.TargetPort
	}
	if hc.Mode != "tcp" && hc.URI == "" {
		hc.URI = "/"
	}
	if hc.Mode != "tcp" && !strings.HasPrefix(hc.URI, "/") {
		return errorf(http.StatusBadRequest, "invalid healthcheck uri %q: must start with /", hc.URI)
	}
	if hc.Interval == 0 {
		hc.Interval = 10
	}
	if hc.Timeout == 0 {
		hc.Timeout = min(2, hc.Interval)
	}
	if hc.Retries == 0 {
		hc.Retries = 1
	}
	switch {
	case hc.Port < 1 || hc.Port > 65535:
		return errorf(http.StatusBadRequest, "invalid healthcheck port %d", hc.Port)
	case hc.Interval < 1 || hc.Interval > 300:
		return errorf(http.StatusBadRequest, "invalid healthcheck interval %d: must be between 1 and 300 seconds", hc.Interval)
	case hc.Timeout < 1 || hc.Timeout > 60 || hc.Timeout > hc.Interval:
		return errorf(http.StatusBadRequest, "invalid healthcheck timeout %d: must be between 1 and 60 seconds and at most the interval", hc.Timeout)
	case hc.Retries < 1 || hc.Retries > 20:
		return errorf(http.StatusBadRequest, "invalid healthcheck retries %d: must be between 1 and 20", hc.Retries)
	}
	return nil
}

// applyServiceRequest overlays the fields present in req onto s.
func applyServiceRequest(s *serviceRecord, req serviceRequest) {
	if req.Name != nil {
		s.Name = *req.Name
	}
	if req.Description != nil {
		s.Description = *req.Description
	}
	if req.Protocol != nil {
		s.Protocol = *req.Protocol
	}
	if req.Strategy != nil {
		s.Strategy = *req.Strategy
	}
	if req.Port != nil {
		s.Port = *req.Port
	}
	if req.TargetPort != nil {
		s.TargetPort = *req.TargetPort
	}
	if req.InstancePool != nil {
		s.PoolID = req.InstancePool.ID
	}
	if req.Healthcheck != nil {
		s.Healthcheck = *req.Healthcheck
	}
}

func (c *Cloud) portInUseLocked(lb *loadBalancer, port int64, except string) bool {
	for _, s := range lb.services {
		if s.rec.ID != except && s.rec.Port == port {
			return true
		}
	}
	return false
}

func (c *Cloud) addService(r *http.Request) (any, error) {
	var req serviceRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	switch {
	case req.Name == nil:
		return nil, errorf(http.StatusBadRequest, "name is required")
	case req.Port == nil:
		return nil, errorf(http.StatusBadRequest, "port is required")
	case req.TargetPort == nil:
		return nil, errorf(http.StatusBadRequest, "target-port is required")
	case req.InstancePool == nil:
		return nil, errorf(http.StatusBadRequest, "instance-pool is required")
	case req.Healthcheck == nil:
		return nil, errorf(http.StatusBadRequest, "healthcheck is required")
	}
	rec := serviceRecord{Protocol: "tcp", Strategy: "round-robin"}
	applyServiceRequest(&rec, req)
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, err := c.nlbLocked(zoneOf(r), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := c.validateService(lb.rec.Zone, &rec); err != nil {
		return nil, err
	}
	if c.portInUseLocked(lb, rec.Port, "") {
		return nil, errorf(http.StatusConflict, "port %d is already used by a service of load balancer %q", rec.Port, lb.rec.ID)
	}
	rec.ID = newUUID()
	s := &service{rec: rec, state: "creating"}
	lb.services = append(lb.services, s)
	c.log.Info("load balancer service created", "nlb", lb.rec.ID, "service", rec.ID, "port", rec.Port, "pool", rec.PoolID)
	return c.addOpLocked(zoneOf(r), &operation{kind: opServiceReady, command: "add-service-to-load-balancer", refID: lb.rec.ID,
		link: nlbLink(lb.rec.ID), serviceID: rec.ID}).api(), nil
}

func (c *Cloud) serviceLocked(r *http.Request) (*loadBalancer, *service, error) {
	lb, err := c.nlbLocked(zoneOf(r), r.PathValue("id"))
	if err != nil {
		return nil, nil, err
	}
	_, s := c.findServiceLocked(lb.rec.ID, r.PathValue("service_id"))
	if s == nil || s.deleting {
		return nil, nil, notFound("load balancer service", r.PathValue("service_id"))
	}
	return lb, s, nil
}

func (c *Cloud) getService(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, s, err := c.serviceLocked(r)
	if err != nil {
		return nil, err
	}
	return c.serviceAPILocked(s), nil
}

func (c *Cloud) updateService(r *http.Request) (any, error) {
	var req serviceRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, s, err := c.serviceLocked(r)
	if err != nil {
		return nil, err
	}
	rec := s.rec
	if req.Healthcheck != nil { // a partial health check keeps the other fields
		hc := rec.Healthcheck
		in := *req.Healthcheck
		if in.Mode != "" {
			hc.Mode = in.Mode
		}
		if in.Port != 0 {
			hc.Port = in.Port
		}
		if in.URI != "" {
			hc.URI = in.URI
		}
		if in.Interval != 0 {
			hc.Interval = in.Interval
		}
		if in.Timeout != 0 {
			hc.Timeout = in.Timeout
		}
		if in.Retries != 0 {
			hc.Retries = in.Retries
		}
		req.Healthcheck = &hc
	}
	applyServiceRequest(&rec, req)
	if err := c.validateService(lb.rec.Zone, &rec); err != nil {
		return nil, err
	}
	if c.portInUseLocked(lb, rec.Port, rec.ID) {
		return nil, errorf(http.StatusConflict, "port %d is already used by a service of load balancer %q", rec.Port, lb.rec.ID)
	}
	rebind := rec.Port != s.rec.Port
	s.rec = rec
	switch {
	case s.lb != nil && rebind:
		s.state = "updating"
		s.cancel() // its Run returns; the reconciler binds the new port
	case s.lb != nil:
		s.lb.SetConfig(uint16(rec.TargetPort), checkOf(rec))
		s.backends = nil // resync under the new config
		c.syncBackendsLocked()
	}
	c.log.Info("load balancer service updated", "nlb", lb.rec.ID, "service", rec.ID)
	return c.addOpLocked(zoneOf(r), &operation{kind: opServiceReady, command: "update-load-balancer-service", refID: lb.rec.ID,
		link: nlbLink(lb.rec.ID), serviceID: rec.ID}).api(), nil
}

// resetServiceField serves DELETE /load-balancer/{id}/service/{service-id}/{field}:
// the description goes back to empty. Like every service operation, it
// references the load balancer.
func (c *Cloud) resetServiceField(r *http.Request) (any, error) {
	if field := r.PathValue("field"); field != "description" {
		return nil, errorf(http.StatusBadRequest, "load balancer service field %q cannot be reset", field)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, s, err := c.serviceLocked(r)
	if err != nil {
		return nil, err
	}
	s.rec.Description = ""
	return c.addOpLocked(zoneOf(r), &operation{kind: opDone, command: "reset-load-balancer-service-field", refID: lb.rec.ID, link: nlbLink(lb.rec.ID)}).api(), nil
}

func (c *Cloud) deleteService(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, s, err := c.serviceLocked(r)
	if err != nil {
		return nil, err
	}
	s.deleting = true
	if s.lb != nil {
		s.cancel()
	} else {
		c.removeServiceLocked(lb, s)
	}
	return c.addOpLocked(zoneOf(r), &operation{kind: opServiceDelete, command: "delete-load-balancer-service", refID: lb.rec.ID,
		link: nlbLink(lb.rec.ID), serviceID: s.rec.ID}).api(), nil
}
