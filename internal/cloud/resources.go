// Records-only resources: security groups, IAM roles and API keys, SSH keys,
// anti-affinity groups, private networks, elastic IPs, standalone instances
// and reverse DNS entries. They are kept, validated, persisted and answered
// like Exoscale's, but nothing runs for them (see docs/cloud.md).

package cloud

import (
	"net/http"
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
	}
}

// resourcesDoc is the persisted form of a resourceStore: every list sorted
// by ID (or name, key) so that the state file is stable.
type resourcesDoc struct {
	SecurityGroups []*sgRecord         `json:"security-groups,omitempty"`
	Roles          []*roleRecord       `json:"iam-roles,omitempty"`
	APIKeys        []*apiKeyRecord     `json:"api-keys,omitempty"`
	SSHKeys        []*sshKeyRecord     `json:"ssh-keys,omitempty"`
	AntiAffinity   []*aagRecord        `json:"anti-affinity-groups,omitempty"`
	PrivateNets    []*privNetRecord    `json:"private-networks,omitempty"`
	ElasticIPs     []*eipRecord        `json:"elastic-ips,omitempty"`
	Standalone     []*standaloneRecord `json:"standalone-instances,omitempty"`
	ReverseDNS     map[string]string   `json:"reverse-dns,omitempty"`
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
		s.antiAffinity[r.ID] = r
	}
	for _, r := range d.PrivateNets {
		s.privateNets[r.ID] = r
	}
	for _, r := range d.ElasticIPs {
		if !c.nlbIPs.reserve(r.IP) {
			ip, err := c.nlbIPs.alloc()
			if err != nil {
				c.log.Warn("elastic IP not restorable: no free address", "elastic_ip", r.ID, "ip", r.IP)
				continue
			}
			r.IP = ip
		}
		s.elasticIPs[r.ID] = r
	}
	for _, r := range d.Standalone {
		if r.IP.IsValid() && !c.memberIPs.reserve(r.IP) {
			ip, err := c.memberIPs.alloc()
			if err != nil {
				c.log.Warn("standalone instance not restorable: no free address", "instance", r.ID, "ip", r.IP)
				continue
			}
			r.IP = ip
		}
		s.standalone[r.ID] = r
	}
	for id, name := range d.ReverseDNS {
		s.reverseDNS[id] = name
	}
}

// routeResources registers the records-only resources' endpoints.
func (c *Cloud) routeResources(route func(pattern string, f apiFunc)) {
	route("GET /v2/security-group", c.listSecurityGroups)
	route("POST /v2/security-group", c.createSecurityGroup)
	route("GET /v2/security-group/{id}", c.getSecurityGroup)
	route("DELETE /v2/security-group/{id}", c.deleteSecurityGroup)
	route("PUT /v2/security-group/{id}", c.putSecurityGroup) // :attach, :detach, :add-source, :remove-source
	route("POST /v2/security-group/{id}/rules", c.addSecurityGroupRule)
	route("DELETE /v2/security-group/{id}/rules/{rule}", c.deleteSecurityGroupRule)

	route("GET /v2/iam-role", c.listRoles)
	route("POST /v2/iam-role", c.createRole)
	route("GET /v2/iam-role/{id}", c.getRole)
	route("PUT /v2/iam-role/{id}", c.putRole) // also {id}:policy
	route("DELETE /v2/iam-role/{id}", c.deleteRole)
	route("GET /v2/api-key", c.listAPIKeys)
	route("POST /v2/api-key", c.createAPIKey)
	route("GET /v2/api-key/{id}", c.getAPIKey)
	route("DELETE /v2/api-key/{id}", c.deleteAPIKey)

	route("GET /v2/ssh-key", c.listSSHKeys)
	route("POST /v2/ssh-key", c.registerSSHKey)
	route("GET /v2/ssh-key/{name}", c.getSSHKey)
	route("DELETE /v2/ssh-key/{name}", c.deleteSSHKey)

	route("GET /v2/anti-affinity-group", c.listAntiAffinityGroups)
	route("POST /v2/anti-affinity-group", c.createAntiAffinityGroup)
	route("GET /v2/anti-affinity-group/{id}", c.getAntiAffinityGroup)
	route("DELETE /v2/anti-affinity-group/{id}", c.deleteAntiAffinityGroup)

	route("GET /v2/private-network", c.listPrivateNetworks)
	route("POST /v2/private-network", c.createPrivateNetwork)
	route("GET /v2/private-network/{id}", c.getPrivateNetwork)
	route("PUT /v2/private-network/{id}", c.updatePrivateNetwork)
	route("DELETE /v2/private-network/{id}", c.deletePrivateNetwork)

	route("GET /v2/elastic-ip", c.listElasticIPs)
	route("POST /v2/elastic-ip", c.createElasticIP)
	route("GET /v2/elastic-ip/{id}", c.getElasticIP)
	route("PUT /v2/elastic-ip/{id}", c.updateElasticIP)
	route("DELETE /v2/elastic-ip/{id}", c.deleteElasticIP)

	route("POST /v2/instance", c.createStandalone)
	route("PUT /v2/instance/{id}", c.putInstance) // update, :start, :stop, :reboot, :add-protection, :remove-protection
	route("GET /v2/reverse-dns/instance/{id}", c.getReverseDNS)
	route("POST /v2/reverse-dns/instance/{id}", c.updateReverseDNS)
	route("DELETE /v2/reverse-dns/instance/{id}", c.deleteReverseDNS)
}

// pathAction splits the {id} path value "ID:action" of the PUT endpoints
// that carry an action after a colon.
func pathAction(r *http.Request) (id, action string) {
	id, action, _ = strings.Cut(r.PathValue("id"), ":")
	return id, action
}

func noEndpoint(r *http.Request) error {
	return errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
}

// doneOpLocked records an operation that is complete at once.
func (c *Cloud) doneOpLocked(command, refID, link string) apiOperation {
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
