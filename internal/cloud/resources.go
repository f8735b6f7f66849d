// Records-only resources: security groups, IAM roles and API keys, SSH keys,
// anti-affinity groups, private networks, elastic IPs, standalone instances
// and reverse DNS entries. They are kept, validated, persisted and answered
// like Exoscale's, but nothing runs for them (see docs/cloud.md).

package cloud

import (
	"cmp"
	"net/http"
	"net/netip"
	"sort"
	"time"
)

// resourceStore holds the records-only resources. It is guarded by Cloud.mu.
type resourceStore struct {
	securityGroups map[string]*sgRecord         // by ID (private groups only)
	roles          map[string]*roleRecord       // by ID
	apiKeys        map[string]*apiKeyRecord     // by key
	sshKeys        map[string]*sshKeyRecord     // by name
	antiAffinity   map[string]*aagRecord        // by ID
	privateNets    map[string]*privNetRecord    // by ID
	elasticIPs     map[string]*eipRecord        // by ID
	standalone     map[string]*standaloneRecord // by ID
	reverseDNS     map[string]string            // instance ID -> domain name
	poolRefs       map[string]*poolRefs         // by instance pool ID
}

func newResourceStore() *resourceStore {
	return &resourceStore{
		securityGroups: map[string]*sgRecord{},
		roles:          map[string]*roleRecord{},
		apiKeys:        map[string]*apiKeyRecord{},
		sshKeys:        map[string]*sshKeyRecord{},
		antiAffinity:   map[string]*aagRecord{},
		privateNets:    map[string]*privNetRecord{},
		elasticIPs:     map[string]*eipRecord{},
		standalone:     map[string]*standaloneRecord{},
		reverseDNS:     map[string]string{},
		poolRefs:       map[string]*poolRefs{},
	}
}

// resourcesDoc is the persisted form of a resourceStore: every list sorted
// by ID (or name, key) so that the state file is stable.
type resourcesDoc struct {
	SecurityGroups []*sgRecord          `json:"security-groups,omitempty"`
	Roles          []*roleRecord        `json:"iam-roles,omitempty"`
	APIKeys        []*apiKeyRecord      `json:"api-keys,omitempty"`
	SSHKeys        []*sshKeyRecord      `json:"ssh-keys,omitempty"`
	AntiAffinity   []*aagRecord         `json:"anti-affinity-groups,omitempty"`
	PrivateNets    []*privNetRecord     `json:"private-networks,omitempty"`
	ElasticIPs     []*eipRecord         `json:"elastic-ips,omitempty"`
	Standalone     []*standaloneRecord  `json:"standalone-instances,omitempty"`
	ReverseDNS     map[string]string    `json:"reverse-dns,omitempty"`
	PoolRefs       map[string]*poolRefs `json:"instance-pool-references,omitempty"`
}

// sortedValues returns m's values ordered by their keys.
func sortedValues[T any](m map[string]T) []T {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func (s *resourceStore) doc() *resourcesDoc {
	d := &resourcesDoc{
		SecurityGroups: sortedValues(s.securityGroups),
		Roles:          sortedValues(s.roles),
		APIKeys:        sortedValues(s.apiKeys),
		SSHKeys:        sortedValues(s.sshKeys),
		AntiAffinity:   sortedValues(s.antiAffinity),
		PrivateNets:    sortedValues(s.privateNets),
		ElasticIPs:     sortedValues(s.elasticIPs),
		Standalone:     sortedValues(s.standalone),
	}
	if len(s.reverseDNS) > 0 {
		d.ReverseDNS = s.reverseDNS
	}
	if len(s.poolRefs) > 0 {
		d.PoolRefs = s.poolRefs
	}
	return d
}

// restoreResourcesLocked loads d into the store; addresses of standalone
// instances and elastic IPs are reserved again (a record whose address is
// taken or outside the configured ranges gets a new one).
func (c *Cloud) restoreResourcesLocked(d *resourcesDoc) {
	if d == nil {
		return
	}
	s := c.res
	for _, r := range d.SecurityGroups {
		s.securityGroups[r.ID] = r
	}
	for _, r := range d.Roles {
		s.roles[r.ID] = r
	}
	for _, r := range d.APIKeys {
		s.apiKeys[r.Key] = r
	}
	for _, r := range d.SSHKeys {
		s.sshKeys[r.Name] = r
	}
	for _, r := range d.AntiAffinity {
		r.Zone = cmp.Or(r.Zone, c.cfg.Zone)
		s.antiAffinity[r.ID] = r
	}
	for _, r := range d.PrivateNets {
		r.Zone = cmp.Or(r.Zone, c.cfg.Zone)
		s.privateNets[r.ID] = r
	}
	for _, r := range d.ElasticIPs {
		r.Zone = cmp.Or(r.Zone, c.cfg.Zone)
		if c.restoreAddr(c.nlbIPs, &r.IP, "elastic IP", r.ID) {
			s.elasticIPs[r.ID] = r
		}
	}
	for _, r := range d.Standalone {
		r.Zone = cmp.Or(r.Zone, c.cfg.Zone)
		if !r.IP.IsValid() || c.restoreAddr(c.memberIPs, &r.IP, "instance", r.ID) {
			s.standalone[r.ID] = r
		}
	}
	for id, name := range d.ReverseDNS {
		s.reverseDNS[id] = name
	}
	for id, refs := range d.PoolRefs {
		if c.pools[id] != nil { // pools are restored first
			s.poolRefs[id] = refs
		}
	}
}

// resourceRoutes lists the records-only resources' endpoints.
func (c *Cloud) resourceRoutes() []route {
	return []route{
		{"GET", "/security-group", c.listSecurityGroups},
		{"POST", "/security-group", c.createSecurityGroup},
		{"GET", "/security-group/{id}", c.getSecurityGroup},
		{"DELETE", "/security-group/{id}", c.deleteSecurityGroup},
		{"PUT", "/security-group/{id}:attach", c.attachSecurityGroup},
		{"PUT", "/security-group/{id}:detach", c.detachSecurityGroup},
		{"PUT", "/security-group/{id}:add-source", c.addExternalSource},
		{"PUT", "/security-group/{id}:remove-source", c.removeExternalSource},
		{"POST", "/security-group/{id}/rules", c.addSecurityGroupRule},
		{"DELETE", "/security-group/{id}/rules/{rule-id}", c.deleteSecurityGroupRule},

		{"GET", "/iam-role", c.listRoles},
		{"POST", "/iam-role", c.createRole},
		{"GET", "/iam-role/{id}", c.getRole},
		{"PUT", "/iam-role/{id}", c.updateRole},
		{"PUT", "/iam-role/{id}:policy", c.updateRolePolicy},
		{"DELETE", "/iam-role/{id}", c.deleteRole},
		{"GET", "/api-key", c.listAPIKeys},
		{"POST", "/api-key", c.createAPIKey},
		{"GET", "/api-key/{id}", c.getAPIKey},
		{"DELETE", "/api-key/{id}", c.deleteAPIKey},

		{"GET", "/ssh-key", c.listSSHKeys},
		{"POST", "/ssh-key", c.registerSSHKey},
		{"GET", "/ssh-key/{name}", c.getSSHKey},
		{"DELETE", "/ssh-key/{name}", c.deleteSSHKey},

		{"GET", "/anti-affinity-group", c.listAntiAffinityGroups},
		{"POST", "/anti-affinity-group", c.createAntiAffinityGroup},
		{"GET", "/anti-affinity-group/{id}", c.getAntiAffinityGroup},
		{"DELETE", "/anti-affinity-group/{id}", c.deleteAntiAffinityGroup},

		{"GET", "/private-network", c.listPrivateNetworks},
		{"POST", "/private-network", c.createPrivateNetwork},
		{"GET", "/private-network/{id}", c.getPrivateNetwork},
		{"PUT", "/private-network/{id}", c.updatePrivateNetwork},
		{"DELETE", "/private-network/{id}", c.deletePrivateNetwork},

		{"GET", "/elastic-ip", c.listElasticIPs},
		{"POST", "/elastic-ip", c.createElasticIP},
		{"GET", "/elastic-ip/{id}", c.getElasticIP},
		{"PUT", "/elastic-ip/{id}", c.updateElasticIP},
		{"DELETE", "/elastic-ip/{id}", c.deleteElasticIP},

		// GET /instance, GET, PUT and DELETE /instance/{id} answer for pool
		// members and standalone instances alike: poolRoutes lists them
		// (listAllInstances, getAnyInstance, updateInstance,
		// deleteAnyInstance).
		{"POST", "/instance", c.createStandalone},
		{"PUT", "/instance/{id}:start", c.instanceAction("start")},
		{"PUT", "/instance/{id}:stop", c.instanceAction("stop")},
		{"PUT", "/instance/{id}:reboot", c.instanceAction("reboot")},
		{"PUT", "/instance/{id}:add-protection", c.instanceAction("add-protection")},
		{"PUT", "/instance/{id}:remove-protection", c.instanceAction("remove-protection")},
		{"GET", "/reverse-dns/instance/{id}", c.getReverseDNS},
		{"POST", "/reverse-dns/instance/{id}", c.updateReverseDNS},
		{"DELETE", "/reverse-dns/instance/{id}", c.deleteReverseDNS},
	}
}

// doneOpLocked records an operation that is complete at once, for request r.
func (c *Cloud) doneOpLocked(r *http.Request, command, refID, link string) apiOperation {
	return c.addOpLocked(zoneOf(r), &operation{kind: opDone, command: command, refID: refID, link: link}).api()
}

// nowUTC is the creation time stamp of new records.
func (c *Cloud) nowUTC() time.Time { return c.now().UTC().Truncate(time.Second) }

// validLabels checks a labels map: keys and values of at most 255 characters.
func validLabels(labels map[string]string) error {
	for k, v := range labels {
		if k == "" || len(k) > 255 || len(v) > 255 {
			return errorf(http.StatusBadRequest, "invalid label %q=%q: keys 1 to 255 characters, values at most 255", k, v)
		}
	}
	return nil
}

// zonal is a record that belongs to a zone: standalone instances, private
// networks, elastic IPs and anti-affinity groups belong to the zone of the
// request that created them (zoneOf) and are looked up in the request's.
// Security groups, SSH keys and IAM are global, as on Exoscale.
type zonal interface{ zoneName() string }

// lookupZonal returns m[id] if it belongs to zone.
func lookupZonal[T zonal](m map[string]T, zone, id string) (T, bool) {
	v, ok := m[id]
	if !ok || v.zoneName() != zone {
		var zero T
		return zero, false
	}
	return v, true
}

// inZone returns the records of m in zone, ordered by ID.
func inZone[T zonal](m map[string]T, zone string) []T {
	var out []T
	for _, v := range sortedValues(m) {
		if v.zoneName() == zone {
			out = append(out, v)
		}
	}
	return out
}

// nameDescription is the body of the create endpoints that take a name
// (1 to 255 characters) and an optional description (at most 255).
type nameDescription struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// decodeNameDescription decodes and checks a nameDescription body.
func decodeNameDescription(r *http.Request) (nameDescription, error) {
	var req nameDescription
	if err := decodeBody(r, &req); err != nil {
		return req, err
	}
	if err := validName("name", req.Name); err != nil {
		return req, err
	}
	return req, validDescription(req.Description)
}

// restoreAddr reserves a restored record's address in pool, or allocates
// a new one when it is taken or outside the pool's range; false when none
// is free.
func (c *Cloud) restoreAddr(pool *ipPool, a *netip.Addr, kind, id string) bool {
	if pool.reserve(*a) {
		return true
	}
	ip, err := pool.alloc()
	if err != nil {
		c.log.Warn("record not restorable: no free address", "kind", kind, "id", id, "ip", *a)
		return false
	}
	*a = ip
	return true
}
