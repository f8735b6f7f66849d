package cloud

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
)

// Instance pool and instance endpoints.

func (c *Cloud) poolRoutes() []route {
	return []route{
		{"GET", "/instance-pool", c.listPoolsWithRefs},
		{"POST", "/instance-pool", c.createPoolWithRefs},
		{"GET", "/instance-pool/{id}", c.getPoolWithRefs},
		{"PUT", "/instance-pool/{id}", c.updatePoolWithRefs},
		{"PUT", "/instance-pool/{id}:scale", c.scalePool},
		{"PUT", "/instance-pool/{id}:evict", c.evictPool},
		{"DELETE", "/instance-pool/{id}", c.deletePoolWithRefs},
		{"DELETE", "/instance-pool/{id}/{field}", c.resetPoolFieldWithRefs},
		// Pool members and standalone instances (api_instance.go) alike.
		{"GET", "/instance", c.listAllInstances},
		{"GET", "/instance/{id}", c.getAnyInstance},
		{"PUT", "/instance/{id}", c.updateInstance},
		{"DELETE", "/instance/{id}", c.deleteAnyInstance},
	}
}

func (c *Cloud) poolAPILocked(p *pool) apiInstancePool {
	out := apiInstancePool{
		ID: p.rec.ID, Name: p.rec.Name, Description: p.rec.Description,
		State: c.poolStateLocked(p), Size: int64(p.rec.Size), InstancePrefix: p.rec.InstancePrefix,
		DiskSize: p.rec.DiskSize, MinAvailable: p.rec.MinAvailable, PublicIPAssignment: "inet4",
		Labels: p.rec.Labels, Instances: []apiRef{},
	}
	if t, ok := findInstanceType(p.rec.InstanceTypeID); ok {
		out.InstanceType = t.api()
	}
	if t, ok := findTemplate(p.rec.TemplateID); ok {
		out.Template = t.api()
	}
	for _, m := range c.membersLocked(p.rec.ID) {
		if m.leave == stay {
			out.Instances = append(out.Instances, apiRef{ID: m.rec.ID})
		}
	}
	return out
}

// poolLocked returns the pool id of zone that is not being deleted, else a
// 404 error.
func (c *Cloud) poolLocked(zone, id string) (*pool, error) {
	p := c.pools[id]
	if p == nil || p.deleting || p.rec.Zone != zone {
		return nil, notFound("instance pool", id)
	}
	return p, nil
}

func (c *Cloud) listPools(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []apiInstancePool{}
	for _, p := range c.sortedPools() {
		if !p.deleting && p.rec.Zone == zoneOf(r) {
			out = append(out, c.poolAPILocked(p))
		}
	}
	return map[string]any{"instance-pools": out}, nil
}

func (c *Cloud) getPool(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.poolLocked(zoneOf(r), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return c.poolAPILocked(p), nil
}

func poolLink(id string) string { return "/v2/instance-pool/" + id }

// validSize checks a requested pool size.
func (c *Cloud) validSize(size *int64, minSize int64) error {
	if size == nil {
		return errorf(http.StatusBadRequest, "size is required")
	}
	if *size < minSize || *size > int64(c.cfg.MaxPoolSize) {
		return errorf(http.StatusBadRequest, "invalid size %d: must be between %d and %d", *size, minSize, c.cfg.MaxPoolSize)
	}
	return nil
}

func validName(field, v string) error {
	if v == "" || len(v) > 255 {
		return errorf(http.StatusBadRequest, "invalid %s %q: must be 1 to 255 characters", field, v)
	}
	return nil
}

func validDescription(v string) error {
	if len(v) > 255 {
		return errorf(http.StatusBadRequest, "invalid description: at most 255 characters")
	}
	return nil
}

func validPrefix(v string) error {
	if v == "" || len(v) > 30 {
		return errorf(http.StatusBadRequest, "invalid instance-prefix %q: must be 1 to 30 characters", v)
	}
	return nil
}

func validDiskSize(v int64) error {
	if v < 10 || v > 51200 {
		return errorf(http.StatusBadRequest, "invalid disk-size %d: must be between 10 and 51200", v)
	}
	return nil
}

func validInstanceType(ref *apiRef) error {
	if ref == nil || ref.ID == "" {
		return errorf(http.StatusBadRequest, "instance-type is required")
	}
	if _, ok := findInstanceType(ref.ID); !ok {
		return errorf(http.StatusBadRequest, "unknown instance-type %q", ref.ID)
	}
	return nil
}

func validTemplate(ref *apiRef) error {
	if ref == nil || ref.ID == "" {
		return errorf(http.StatusBadRequest, "template is required")
	}
	if _, ok := findTemplate(ref.ID); !ok {
		return errorf(http.StatusBadRequest, "unknown template %q", ref.ID)
	}
	return nil
}

func (c *Cloud) createPool(r *http.Request) (any, error) {
	var req createPoolRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.InstancePrefix == "" {
		req.InstancePrefix = "pool"
	}
	if req.DiskSize == 0 {
		req.DiskSize = 50
	}
	for _, err := range []error{
		validName("name", req.Name), validDescription(req.Description), c.validSize(req.Size, 1),
		validInstanceType(req.InstanceType), validTemplate(req.Template),
		validPrefix(req.InstancePrefix), validDiskSize(req.DiskSize),
	} {
		if err != nil {
			return nil, err
		}
	}
	if req.MinAvailable < 0 {
		return nil, errorf(http.StatusBadRequest, "invalid min-available %d", req.MinAvailable)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pools {
		if p.rec.Name == req.Name && !p.deleting && p.rec.Zone == zoneOf(r) {
			return nil, errorf(http.StatusConflict, "an instance pool named %q already exists", req.Name)
		}
	}
	p := &pool{rec: poolRecord{
		ID: newUUID(), Zone: zoneOf(r), Name: req.Name, Description: req.Description, Size: int(*req.Size),
		InstanceTypeID: req.InstanceType.ID, TemplateID: req.Template.ID, InstancePrefix: req.InstancePrefix,
		DiskSize: req.DiskSize, MinAvailable: req.MinAvailable, Labels: req.Labels, CreatedAt: c.now().UTC(),
	}}
	c.pools[p.rec.ID] = p
	c.log.Info("instance pool created", "pool", p.rec.ID, "name", p.rec.Name, "size", p.rec.Size)
	return c.addOpLocked(zoneOf(r), &operation{kind: opPoolConverge, command: "create-instance-pool", refID: p.rec.ID, link: poolLink(p.rec.ID), sizeGen: p.sizeGen}).api(), nil
}

func (c *Cloud) updatePool(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req updatePoolRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	var errs []error
	if req.Name != nil {
		errs = append(errs, validName("name", *req.Name))
	}
	if req.Description != nil {
		errs = append(errs, validDescription(*req.Description))
	}
	if req.InstanceType != nil {
		errs = append(errs, validInstanceType(req.InstanceType))
	}
	if req.Template != nil {
		errs = append(errs, validTemplate(req.Template))
	}
	if req.InstancePrefix != nil {
		errs = append(errs, validPrefix(*req.InstancePrefix))
	}
	if req.DiskSize != nil {
		errs = append(errs, validDiskSize(*req.DiskSize))
	}
	if req.MinAvailable != nil && *req.MinAvailable < 0 {
		errs = append(errs, errorf(http.StatusBadRequest, "invalid min-available %d", *req.MinAvailable))
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.poolLocked(zoneOf(r), id)
	if err != nil {
		return nil, err
	}
	rec := &p.rec
	if req.Name != nil {
		rec.Name = *req.Name
	}
	if req.Description != nil {
		rec.Description = *req.Description
	}
	if req.InstanceType != nil {
		rec.InstanceTypeID = req.InstanceType.ID
	}
	if req.Template != nil {
		rec.TemplateID = req.Template.ID
	}
	if req.InstancePrefix != nil {
		rec.InstancePrefix = *req.InstancePrefix
	}
	if req.DiskSize != nil {
		rec.DiskSize = *req.DiskSize
	}
	if req.MinAvailable != nil {
		rec.MinAvailable = *req.MinAvailable
	}
	if req.Labels != nil {
		rec.Labels = req.Labels
	}
	c.log.Info("instance pool updated", "pool", id)
	return c.addOpLocked(zoneOf(r), &operation{kind: opDone, command: "update-instance-pool", refID: id, link: poolLink(id)}).api(), nil
}

// resetPoolField serves DELETE /instance-pool/{id}/{field}: the field goes
// back to its default (Terraform clears a description, labels or user data
// this way). The references and user data are kept and cleared by
// resetPoolFieldWithRefs (api_pool_refs.go).
func (c *Cloud) resetPoolField(r *http.Request) (any, error) {
	id, field := r.PathValue("id"), r.PathValue("field")
	switch field {
	case "description", "labels", "anti-affinity-groups", "security-groups", "elastic-ips", "private-networks", "ssh-key", "user-data":
	default:
		return nil, errorf(http.StatusBadRequest, "instance pool field %q cannot be reset", field)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.poolLocked(zoneOf(r), id)
	if err != nil {
		return nil, err
	}
	switch field {
	case "description":
		p.rec.Description = ""
	case "labels":
		p.rec.Labels = nil
	}
	c.log.Info("instance pool field reset", "pool", id, "field", field)
	return c.addOpLocked(zoneOf(r), &operation{kind: opDone, command: "reset-instance-pool-field", refID: id, link: poolLink(id)}).api(), nil
}

func (c *Cloud) scalePool(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req scalePoolRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := c.validSize(req.Size, 0); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.poolLocked(zoneOf(r), id)
	if err != nil {
		return nil, err
	}
	c.log.Info("instance pool scaled", "pool", id, "from", p.rec.Size, "to", *req.Size)
	p.rec.Size = int(*req.Size)
	p.sizeGen++                   // supersedes pending create and scale operations
	p.retryAt = c.now()           // a new request retries at once
	p.failures, p.lastErr = 0, "" // and is judged on its own failures
	return c.addOpLocked(zoneOf(r), &operation{kind: opPoolConverge, command: "scale-instance-pool", refID: id, link: poolLink(id), sizeGen: p.sizeGen}).api(), nil
}

// evictIDs parses the evict body: the spec's {"instances": ["id", ...]}, and
// also {"instances": [{"id": "..."}, ...]}.
func evictIDs(r *http.Request) ([]string, error) {
	var req struct {
		Instances []json.RawMessage `json:"instances"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.Instances) == 0 {
		return nil, errorf(http.StatusBadRequest, "instances: at least one instance ID is required")
	}
	ids := make([]string, 0, len(req.Instances))
	seen := map[string]bool{}
	for _, raw := range req.Instances {
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			var ref apiRef
			if err := json.Unmarshal(raw, &ref); err != nil || ref.ID == "" {
				return nil, errorf(http.StatusBadRequest, "instances: want instance IDs, got %s", raw)
			}
			id = ref.ID
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (c *Cloud) evictPool(r *http.Request) (any, error) {
	id := r.PathValue("id")
	ids, err := evictIDs(r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.poolLocked(zoneOf(r), id)
	if err != nil {
		return nil, err
	}
	for _, iid := range ids {
		inst := c.instances[iid]
		if inst == nil || inst.rec.PoolID != id || inst.leave != stay {
			return nil, errorf(http.StatusBadRequest, "instance %q is not a member of instance pool %q", iid, id)
		}
	}
	for _, iid := range ids {
		c.requestLeaveLocked(c.instances[iid], leaveEvict)
	}
	p.rec.Size = max(0, p.rec.Size-len(ids))
	p.sizeGen++ // supersedes pending create and scale operations
	c.log.Info("instance pool members evicted", "pool", id, "instances", ids, "size", p.rec.Size)
	return c.addOpLocked(zoneOf(r), &operation{kind: opPoolEvict, command: "evict-instance-pool-members", refID: id, link: poolLink(id), evicted: ids}).api(), nil
}

func (c *Cloud) deletePool(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.poolLocked(zoneOf(r), id)
	if err != nil {
		return nil, err
	}
	for _, lb := range c.nlbs {
		for _, s := range lb.services {
			if s.rec.PoolID == id && !s.deleting && !lb.deleting {
				return nil, errorf(http.StatusConflict, "instance pool %q is used by load balancer service %q", id, s.rec.ID)
			}
		}
	}
	p.deleting = true
	c.log.Info("instance pool deleting", "pool", id)
	return c.addOpLocked(zoneOf(r), &operation{kind: opPoolDelete, command: "delete-instance-pool", refID: id, link: poolLink(id)}).api(), nil
}

func (c *Cloud) instanceAPILocked(inst *instance) apiInstance {
	out := apiInstance{
		ID: inst.rec.ID, Name: inst.rec.Name, State: inst.state, PublicIP: inst.rec.IP.String(),
		PublicIPAssignment: "inet4", MACAddress: macAddress(inst.rec.IP), CreatedAt: inst.rec.CreatedAt,
		DiskSize: inst.rec.DiskSize, Labels: c.instanceLabelsLocked(inst),
	}
	if inst.rec.PoolID != "" {
		out.Manager = &apiManager{ID: inst.rec.PoolID, Type: "instance-pool"}
	}
	if t, ok := findInstanceType(inst.rec.InstanceTypeID); ok {
		out.InstanceType = t.api()
	}
	if t, ok := findTemplate(inst.rec.TemplateID); ok {
		out.Template = t.api()
	}
	return out
}

// macAddress derives a member's MAC address from its IPv4 address: a
// locally administered unicast 06:74:70 ("tp") prefix, then the address's
// last three bytes, so that it is stable and unique per member.
func macAddress(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("06:74:70:%02x:%02x:%02x", b[1], b[2], b[3])
}

func (c *Cloud) listInstances(r *http.Request) (any, error) {
	q := r.URL.Query()
	managerID, managerType, ip := q.Get("manager-id"), q.Get("manager-type"), q.Get("ip-address")
	if managerType != "" && managerType != "instance-pool" && managerType != "sks-nodepool" {
		return nil, errorf(http.StatusBadRequest, "invalid manager-type %q", managerType)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []apiInstance{}
	for _, inst := range c.instances {
		switch {
		case managerID != "" && inst.rec.PoolID != managerID,
			managerType != "" && (managerType != "instance-pool" || inst.rec.PoolID == ""),
			ip != "" && inst.rec.IP.String() != ip,
			inst.rec.Zone != zoneOf(r):
			continue
		}
		out = append(out, c.instanceAPILocked(inst))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].Name < out[j].Name
	})
	return map[string]any{"instances": out}, nil
}

func (c *Cloud) getInstance(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst := c.instances[r.PathValue("id")]
	if inst == nil || inst.rec.Zone != zoneOf(r) {
		return nil, notFound("instance", r.PathValue("id"))
	}
	return c.instanceAPILocked(inst), nil
}

func (c *Cloud) deleteInstance(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	inst := c.instances[id]
	if inst == nil || inst.rec.Zone != zoneOf(r) {
		return nil, notFound("instance", id)
	}
	c.log.Info("instance deleted by request", "instance", id, "pool", inst.rec.PoolID)
	c.requestLeaveLocked(inst, leaveKill)
	return c.addOpLocked(zoneOf(r), &operation{kind: opInstanceDelete, command: "delete-instance", refID: id, link: "/v2/instance/" + id}).api(), nil
}
