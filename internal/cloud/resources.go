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
	"strings"
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

// resourceRoute is one endpoint of the records-only resources: the spec's
// method and path under /v2, where an action after the last wildcard
// ("/instance/{id}:start") is a route of its own, and its handler, which
// reads a wildcard by its spec name with dashes as underscores
// (r.PathValue("rule_id")) and without the action.
type resourceRoute struct {
	method, path string
	f            apiFunc
}

// resourceRoutes lists the records-only resources' endpoints.
func (c *Cloud) resourceRoutes() []resourceRoute {
	return []resourceRoute{
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

		// GET /instance, GET and DELETE /instance/{id} answer for pool
		// members too: listAllInstances, getAnyInstance, deleteAnyInstance
		// replace the pool's handlers in the router.
		{"POST", "/instance", c.createStandalone},
		{"PUT", "/instance/{id}", c.updateStandalone},
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

// registerResourceRoutes adds resourceRoutes to mux under /v2 through
// route: routes of one path that differ by action share a pattern and are
// dispatched on the action, which is removed from the wildcard first.
func (c *Cloud) registerResourceRoutes(route func(pattern string, f apiFunc)) {
	type group struct {
		wildcard string
		actions  map[string]apiFunc
	}
	groups := map[string]*group{}
	var order []string
	for _, rt := range c.resourceRoutes() {
		base, action := rt.path, ""
		if i := strings.LastIndex(rt.path, "}:"); i >= 0 {
			base, action = rt.path[:i+1], rt.path[i+2:]
		}
		base = strings.ReplaceAll(base, "{rule-id}", "{rule_id}")
		pattern := rt.method + " /v2" + base
		g := groups[pattern]
		if g == nil {
			g = &group{actions: map[string]apiFunc{}}
			if i := strings.LastIndex(base, "{"); i >= 0 && strings.HasSuffix(base, "}") {
				g.wildcard = base[i+1 : len(base)-1]
			}
			groups[pattern] = g
			order = append(order, pattern)
		}
		g.actions[action] = rt.f
	}
	for _, pattern := range order {
		g := groups[pattern]
		route(pattern, func(r *http.Request) (any, error) {
			action := ""
			if g.wildcard != "" {
				v, a, _ := strings.Cut(r.PathValue(g.wildcard), ":")
				r.SetPathValue(g.wildcard, v)
				action = a
			}
			f := g.actions[action]
			if f == nil {
				return nil, noEndpoint(r)
			}
			return f(r)
		})
	}
}

func noEndpoint(r *http.Request) error {
	return errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
}

// doneOpLocked records an operation that is complete at once, for request r.
func (c *Cloud) doneOpLocked(_ *http.Request, command, refID, link string) apiOperation {
	return c.addOpLocked(&operation{kind: opDone, command: command, refID: refID, link: link}).api()
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

// recordZone is the zone request r addresses, which zonal records
// (standalone instances, private networks, elastic IPs, anti-affinity
// groups) belong to and are looked up in: Config.Zone, the only zone served.
// Security groups, SSH keys and IAM are global, as on Exoscale.
func (c *Cloud) recordZone(_ *http.Request) string { return c.cfg.Zone }

// zonal is a record that belongs to a zone.
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
