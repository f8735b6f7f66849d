package cloud

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"time"
)

// Standalone instances (POST /instance) are records with a state machine
// (running <-> stopped; reboot keeps running), not processes: the local
// cloud cannot run a template's operating system or its cloud-init user
// data, so it keeps the user data and answers it back unchanged. Each gets a
// public IP of the member range (--member-net) so that addresses stay
// unique, but nothing listens there. Pool members are served by api_pool.go;
// the list, get and delete endpoints below answer for both.

type standaloneRecord struct {
	ID                 string            `json:"id"`
	Zone               string            `json:"zone"`
	Name               string            `json:"name"`
	State              string            `json:"state"`
	InstanceTypeID     string            `json:"instance-type"`
	TemplateID         string            `json:"template"`
	DiskSize           int64             `json:"disk-size"`
	IP                 netip.Addr        `json:"ip,omitzero"`
	PublicIPAssignment string            `json:"public-ip-assignment"`
	UserData           string            `json:"user-data,omitempty"`
	Labels             map[string]string `json:"labels,omitempty"`
	SecurityGroups     []string          `json:"security-groups,omitempty"`
	SSHKeys            []string          `json:"ssh-keys,omitempty"`
	AntiAffinityGroups []string          `json:"anti-affinity-groups,omitempty"`
	SecurebootEnabled  bool              `json:"secureboot-enabled,omitempty"`
	TPMEnabled         bool              `json:"tpm-enabled,omitempty"`
	Protected          bool              `json:"protected,omitempty"`
	CreatedAt          time.Time         `json:"created-at"`
}

// apiStandaloneInstance is the instance schema of a standalone instance: the
// fields pool members report plus what only standalone instances carry.
type apiStandaloneInstance struct {
	apiInstance
	UserData           string      `json:"user-data,omitempty"`
	SecurityGroups     []apiRef    `json:"security-groups,omitempty"`
	SSHKey             *apiSSHKey  `json:"ssh-key,omitempty"`
	SSHKeys            []apiSSHKey `json:"ssh-keys,omitempty"`
	AntiAffinityGroups []apiRef    `json:"anti-affinity-groups,omitempty"`
}

// standaloneMAC derives a standalone instance's MAC address from its ID
// (locally administered, prefix 06:74:73, "ts").
func standaloneMAC(id string) string {
	b := sha256.Sum256([]byte(id))
	return fmt.Sprintf("06:74:73:%02x:%02x:%02x", b[0], b[1], b[2])
}

func instanceLink(id string) string { return "/v2/instance/" + id }

func refs(ids []string) []apiRef {
	var out []apiRef
	for _, id := range ids {
		out = append(out, apiRef{ID: id})
	}
	return out
}

func (c *Cloud) standaloneAPILocked(s *standaloneRecord) apiStandaloneInstance {
	out := apiStandaloneInstance{
		apiInstance: apiInstance{
			ID: s.ID, Name: s.Name, State: s.State, PublicIPAssignment: s.PublicIPAssignment,
			CreatedAt: s.CreatedAt, DiskSize: s.DiskSize, Labels: s.Labels, MACAddress: standaloneMAC(s.ID),
			SecurebootEnabled: s.SecurebootEnabled, TPMEnabled: s.TPMEnabled,
		},
		UserData: s.UserData, SecurityGroups: refs(s.SecurityGroups), AntiAffinityGroups: refs(s.AntiAffinityGroups),
	}
	if s.IP.IsValid() {
		out.PublicIP = s.IP.String()
	}
	if t, ok := findInstanceType(s.InstanceTypeID); ok {
		out.InstanceType = t.api()
	}
	if t, ok := findTemplate(s.TemplateID); ok {
		out.Template = t.api()
	}
	out.SSHKeys, out.SSHKey = c.sshKeysAPILocked(s.SSHKeys)
	return out
}

func (c *Cloud) standaloneLocked(zone, id string) (*standaloneRecord, error) {
	s, ok := lookupZonal(c.res.standalone, zone, id)
	if !ok {
		return nil, notFound("instance", id)
	}
	return s, nil
}

// createInstanceRequest is the body of create-instance.
type createInstanceRequest struct {
	Name               string            `json:"name"`
	InstanceType       *apiRef           `json:"instance-type"`
	Template           *apiRef           `json:"template"`
	DiskSize           *int64            `json:"disk-size"`
	UserData           *string           `json:"user-data"`
	Labels             map[string]string `json:"labels"`
	AutoStart          *bool             `json:"auto-start"`
	PublicIPAssignment string            `json:"public-ip-assignment"`
	SecurityGroups     []apiRef          `json:"security-groups"`
	AntiAffinityGroups []apiRef          `json:"anti-affinity-groups"`
	SSHKey             *apiSSHKey        `json:"ssh-key"`
	SSHKeys            []apiSSHKey       `json:"ssh-keys"`
	SecurebootEnabled  bool              `json:"secureboot-enabled"`
	TPMEnabled         bool              `json:"tpm-enabled"`
	IPv6Enabled        bool              `json:"ipv6-enabled"`
}

// validUserData checks user data: base64 (as Exoscale requires) of at most
// 32768 characters.
func validUserData(v string) error {
	if v == "" || len(v) > 32768 {
		return errorf(http.StatusBadRequest, "invalid user-data: 1 to 32768 characters")
	}
	if _, err := base64.StdEncoding.DecodeString(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid user-data: must be base64-encoded")
	}
	return nil
}

func validIPAssignment(v string) error {
	if v != "inet4" && v != "dual" && v != "none" {
		return errorf(http.StatusBadRequest, "invalid public-ip-assignment %q: want inet4, dual or none", v)
	}
	return nil
}

func (c *Cloud) createStandalone(r *http.Request) (any, error) {
	var req createInstanceRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.PublicIPAssignment == "" {
		req.PublicIPAssignment = "inet4"
	}
	if req.DiskSize == nil {
		return nil, errorf(http.StatusBadRequest, "disk-size is required")
	}
	errs := []error{
		validInstanceType(req.InstanceType), validTemplate(req.Template), validDiskSize(*req.DiskSize),
		validLabels(req.Labels), validIPAssignment(req.PublicIPAssignment),
	}
	if req.Name != "" {
		errs = append(errs, validName("name", req.Name))
	}
	if req.UserData != nil {
		errs = append(errs, validUserData(*req.UserData))
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	s := &standaloneRecord{
		ID: newUUID(), Zone: zoneOf(r), Name: req.Name, State: stateRunning, InstanceTypeID: req.InstanceType.ID,
		TemplateID: req.Template.ID, DiskSize: *req.DiskSize, PublicIPAssignment: req.PublicIPAssignment,
		Labels: withoutReserved(req.Labels), SecurebootEnabled: req.SecurebootEnabled, TPMEnabled: req.TPMEnabled,
	}
	if req.UserData != nil {
		s.UserData = *req.UserData
	}
	if req.AutoStart != nil && !*req.AutoStart {
		s.State = stateStopped
	}
	if s.Name == "" {
		s.Name = "vm-" + s.ID[:8]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ref := range req.SecurityGroups {
		if _, err := c.sgLocked(ref.ID); err != nil {
			return nil, err
		}
		if !slices.Contains(s.SecurityGroups, ref.ID) {
			s.SecurityGroups = append(s.SecurityGroups, ref.ID)
		}
	}
	for _, ref := range req.AntiAffinityGroups {
		if _, ok := lookupZonal(c.res.antiAffinity, s.Zone, ref.ID); !ok {
			return nil, notFound("anti-affinity group", ref.ID)
		}
		s.AntiAffinityGroups = append(s.AntiAffinityGroups, ref.ID)
	}
	keys := req.SSHKeys
	if req.SSHKey != nil {
		keys = append([]apiSSHKey{*req.SSHKey}, keys...)
	}
	for _, k := range keys {
		if c.res.sshKeys[k.Name] == nil {
			return nil, notFound("SSH key", k.Name)
		}
		if !slices.Contains(s.SSHKeys, k.Name) {
			s.SSHKeys = append(s.SSHKeys, k.Name)
		}
	}
	if s.PublicIPAssignment != "none" {
		ip, err := c.memberIPs.alloc()
		if err != nil {
			return nil, errorf(http.StatusServiceUnavailable, "allocate instance address: %v", err)
		}
		s.IP = ip
	}
	s.CreatedAt = c.nowUTC()
	c.res.standalone[s.ID] = s
	c.log.Info("standalone instance created", "instance", s.ID, "name", s.Name, "ip", s.IP, "state", s.State)
	return c.doneOpLocked(r, "create-instance", s.ID, instanceLink(s.ID)), nil
}

// updateInstance serves PUT /instance/{id} (update-instance) for standalone
// instances and pool members alike. Labels, when present and not null,
// replace the instance's ({} removes them all), except DrainTokenLabel,
// which cannot be set or removed: a member always shows the cloud's token.
// A standalone instance takes name, user-data and public-ip-assignment too;
// a pool member takes its name, and its user-data and public-ip-assignment
// are checked but belong to its pool's template (no effect). The change is
// saved before the answer (the autoscaler's draining mark must survive a
// restart of the cloud).
func (c *Cloud) updateInstance(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req struct {
		Name               *string           `json:"name"`
		UserData           *string           `json:"user-data"`
		PublicIPAssignment *string           `json:"public-ip-assignment"`
		Labels             map[string]string `json:"labels"`
		// Accepted, no effect (there is no disk to snapshot).
		ApplicationConsistentSnapshotEnabled *bool `json:"application-consistent-snapshot-enabled"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	errs := []error{validLabels(req.Labels)}
	if req.Name != nil {
		errs = append(errs, validName("name", *req.Name))
	}
	if req.UserData != nil {
		errs = append(errs, validUserData(*req.UserData))
	}
	if req.PublicIPAssignment != nil {
		errs = append(errs, validIPAssignment(*req.PublicIPAssignment))
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	labels := withoutReserved(req.Labels)
	if len(labels) > maxInstanceLabels {
		return nil, errorf(http.StatusBadRequest, "too many labels: %d, at most %d", len(labels), maxInstanceLabels)
	}
	zone := zoneOf(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := lookupZonal(c.res.standalone, zone, id); ok {
		if req.Name != nil {
			s.Name = *req.Name
		}
		if req.UserData != nil {
			s.UserData = *req.UserData
		}
		if req.PublicIPAssignment != nil {
			s.PublicIPAssignment = *req.PublicIPAssignment
		}
		if labels != nil {
			s.Labels = labels
		}
		c.log.Info("standalone instance updated", "instance", id)
	} else {
		m := c.instances[id]
		if m == nil || m.rec.Zone != zone {
			return nil, notFound("instance", id)
		}
		if req.Name != nil {
			m.rec.Name = *req.Name
		}
		if labels != nil {
			if len(labels) == 0 {
				labels = nil
			}
			m.rec.Labels = labels
		}
		c.log.Info("pool member updated", "instance", id, "pool", m.rec.PoolID, "labels", len(labels))
	}
	c.saveLocked()
	return c.doneOpLocked(r, "update-instance", id, instanceLink(id)), nil
}

// standaloneForUpdateLocked returns standalone instance id of zone; a pool
// member of zone is refused with 400, an unknown ID with 404.
func (c *Cloud) standaloneForUpdateLocked(zone, id string) (*standaloneRecord, error) {
	if s, ok := lookupZonal(c.res.standalone, zone, id); ok {
		return s, nil
	}
	if m := c.instances[id]; m != nil && m.rec.Zone == zone {
		return nil, errorf(http.StatusBadRequest, "instance %q is managed by instance pool %q", id, m.rec.PoolID)
	}
	return nil, notFound("instance", id)
}

// instanceAction returns the handler of PUT /instance/{id}:ACTION for a
// standalone instance: start (stopped -> running), stop (running ->
// stopped), reboot (running stays running), add-protection and
// remove-protection (a protected instance cannot be deleted). The body, if
// any (start's rescue-profile), is ignored.
func (c *Cloud) instanceAction(action string) apiFunc {
	return func(r *http.Request) (any, error) {
		id := r.PathValue("id")
		c.mu.Lock()
		defer c.mu.Unlock()
		s, err := c.standaloneForUpdateLocked(zoneOf(r), id)
		if err != nil {
			return nil, err
		}
		var command string
		switch action {
		case "start":
			command = "start-instance"
			if s.State == stateRunning {
				return nil, errorf(http.StatusConflict, "instance %q is already running", id)
			}
			s.State = stateRunning
		case "stop":
			command = "stop-instance"
			if s.State == stateStopped {
				return nil, errorf(http.StatusConflict, "instance %q is already stopped", id)
			}
			s.State = stateStopped
		case "reboot":
			command = "reboot-instance"
			if s.State != stateRunning {
				return nil, errorf(http.StatusConflict, "instance %q is not running", id)
			}
		case "add-protection":
			command, s.Protected = "add-instance-protection", true
		case "remove-protection":
			command, s.Protected = "remove-instance-protection", false
		}
		c.log.Info("standalone instance changed", "instance", id, "command", command, "state", s.State)
		return c.doneOpLocked(r, command, id, instanceLink(id)), nil
	}
}

// listAllInstances serves GET /instance: pool members (listInstances) and
// standalone instances, which have no manager, in creation order.
func (c *Cloud) listAllInstances(r *http.Request) (any, error) {
	members, err := c.listInstances(r)
	if err != nil {
		return nil, err
	}
	type entry struct {
		created time.Time
		name    string
		v       any
	}
	var all []entry
	if m, ok := members.(map[string]any); ok {
		if list, ok := m["instances"].([]apiInstance); ok {
			for _, inst := range list {
				all = append(all, entry{inst.CreatedAt, inst.Name, inst})
			}
		}
	}
	q := r.URL.Query()
	if q.Get("manager-id") == "" && q.Get("manager-type") == "" {
		ip := q.Get("ip-address")
		c.mu.Lock()
		for _, s := range inZone(c.res.standalone, zoneOf(r)) {
			if ip == "" || (s.IP.IsValid() && s.IP.String() == ip) {
				all = append(all, entry{s.CreatedAt, s.Name, c.standaloneAPILocked(s)})
			}
		}
		c.mu.Unlock()
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].created.Equal(all[j].created) {
			return all[i].created.Before(all[j].created)
		}
		return all[i].name < all[j].name
	})
	out := make([]any, 0, len(all))
	for _, e := range all {
		out = append(out, e.v)
	}
	return map[string]any{"instances": out}, nil
}

// getAnyInstance serves GET /instance/{id} for standalone instances and pool
// members.
func (c *Cloud) getAnyInstance(r *http.Request) (any, error) {
	c.mu.Lock()
	s, ok := lookupZonal(c.res.standalone, zoneOf(r), r.PathValue("id"))
	var out apiStandaloneInstance
	if ok {
		out = c.standaloneAPILocked(s)
	}
	c.mu.Unlock()
	if !ok {
		return c.getInstance(r)
	}
	return out, nil
}

// deleteAnyInstance serves DELETE /instance/{id}: a standalone instance is
// gone at once (refused while protected); a pool member is killed.
func (c *Cloud) deleteAnyInstance(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	s, ok := lookupZonal(c.res.standalone, zoneOf(r), id)
	if !ok {
		c.mu.Unlock()
		return c.deleteInstance(r)
	}
	defer c.mu.Unlock()
	if s.Protected {
		return nil, errorf(http.StatusForbidden, "instance %q is protected against deletion", id)
	}
	delete(c.res.standalone, id)
	delete(c.res.reverseDNS, id)
	if s.IP.IsValid() {
		c.memberIPs.release(s.IP)
	}
	c.log.Info("standalone instance deleted", "instance", id, "name", s.Name)
	return c.doneOpLocked(r, "delete-instance", id, instanceLink(id)), nil
}

// instanceExistsLocked reports whether id is a standalone instance or a
// pool member of zone.
func (c *Cloud) instanceExistsLocked(zone, id string) bool {
	_, ok := lookupZonal(c.res.standalone, zone, id)
	m := c.instances[id]
	return ok || (m != nil && m.rec.Zone == zone)
}

func (c *Cloud) getReverseDNS(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.instanceExistsLocked(zoneOf(r), id) {
		return nil, notFound("instance", id)
	}
	name, ok := c.res.reverseDNS[id]
	if !ok {
		return nil, errorf(http.StatusNotFound, "instance %q has no reverse DNS record", id)
	}
	return map[string]string{"domain-name": name}, nil
}

func (c *Cloud) updateReverseDNS(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req struct {
		DomainName string `json:"domain-name"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.DomainName == "" || len(req.DomainName) > 253 {
		return nil, errorf(http.StatusBadRequest, "invalid domain-name %q: 1 to 253 characters", req.DomainName)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.instanceExistsLocked(zoneOf(r), id) {
		return nil, notFound("instance", id)
	}
	c.res.reverseDNS[id] = req.DomainName
	return c.doneOpLocked(r, "update-reverse-dns-instance", id, instanceLink(id)), nil
}

func (c *Cloud) deleteReverseDNS(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.instanceExistsLocked(zoneOf(r), id) {
		return nil, notFound("instance", id)
	}
	if _, ok := c.res.reverseDNS[id]; !ok {
		return nil, errorf(http.StatusNotFound, "instance %q has no reverse DNS record", id)
	}
	delete(c.res.reverseDNS, id)
	return c.doneOpLocked(r, "delete-reverse-dns-instance", id, instanceLink(id)), nil
}

func (s *standaloneRecord) zoneName() string { return s.Zone }
