package cloud

import (
	"net/http"
	"net/netip"
	"slices"
	"time"
)

// Anti-affinity groups, private networks and elastic IPs: records only. No
// placement is decided, no private network is wired and no elastic IP
// carries traffic; an elastic IP gets an address of the load balancer range
// (--nlb-net) so that it is unique and on loopback.

type aagRecord struct {
	ID          string    `json:"id"`
	Zone        string    `json:"zone"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created-at"`
}

type apiAntiAffinityGroup struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Instances   []apiRef `json:"instances"`
}

func aagLink(id string) string { return "/v2/anti-affinity-group/" + id }

func (c *Cloud) aagAPILocked(g *aagRecord) apiAntiAffinityGroup {
	out := apiAntiAffinityGroup{ID: g.ID, Name: g.Name, Description: g.Description, Instances: []apiRef{}}
	for _, inst := range inZone(c.res.standalone, g.Zone) {
		if slices.Contains(inst.AntiAffinityGroups, g.ID) {
			out.Instances = append(out.Instances, apiRef{ID: inst.ID})
		}
	}
	return out
}

func (c *Cloud) listAntiAffinityGroups(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []apiAntiAffinityGroup{}
	for _, g := range inZone(c.res.antiAffinity, zoneOf(r)) {
		out = append(out, c.aagAPILocked(g))
	}
	return map[string]any{"anti-affinity-groups": out}, nil
}

func (c *Cloud) getAntiAffinityGroup(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := lookupZonal(c.res.antiAffinity, zoneOf(r), r.PathValue("id"))
	if !ok {
		return nil, notFound("anti-affinity group", r.PathValue("id"))
	}
	return c.aagAPILocked(g), nil
}

func (c *Cloud) createAntiAffinityGroup(r *http.Request) (any, error) {
	req, err := decodeNameDescription(r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range inZone(c.res.antiAffinity, zoneOf(r)) {
		if g.Name == req.Name {
			return nil, errorf(http.StatusConflict, "an anti-affinity group named %q already exists", req.Name)
		}
	}
	g := &aagRecord{ID: newUUID(), Zone: zoneOf(r), Name: req.Name, Description: req.Description, CreatedAt: c.nowUTC()}
	c.res.antiAffinity[g.ID] = g
	c.log.Info("anti-affinity group created", "anti_affinity_group", g.ID, "name", g.Name)
	return c.doneOpLocked(r, "create-anti-affinity-group", g.ID, aagLink(g.ID)), nil
}

func (c *Cloud) deleteAntiAffinityGroup(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := lookupZonal(c.res.antiAffinity, zoneOf(r), id)
	if !ok {
		return nil, notFound("anti-affinity group", id)
	}
	if n := len(c.aagAPILocked(g).Instances); n > 0 {
		return nil, errorf(http.StatusConflict, "anti-affinity group %q still has %d instances", id, n)
	}
	for poolID, refs := range c.res.poolRefs {
		if slices.Contains(refs.AntiAffinityGroups, id) {
			return nil, errorf(http.StatusConflict, "anti-affinity group %q is used by instance pool %q", id, poolID)
		}
	}
	delete(c.res.antiAffinity, id)
	c.log.Info("anti-affinity group deleted", "anti_affinity_group", id)
	return c.doneOpLocked(r, "delete-anti-affinity-group", id, aagLink(id)), nil
}

// privNetRecord is a private network; it is also the wire form (leases are
// always empty: nothing attaches to it).
type privNetRecord struct {
	ID          string            `json:"id"`
	Zone        string            `json:"zone,omitempty"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Netmask     string            `json:"netmask,omitempty"`
	StartIP     string            `json:"start-ip,omitempty"`
	EndIP       string            `json:"end-ip,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Options     *privNetOptions   `json:"options,omitempty"`
	VNI         int64             `json:"vni"`
	Leases      []privNetLease    `json:"leases"`
	CreatedAt   *time.Time        `json:"created-at,omitempty"`
}

type privNetOptions struct {
	Routers      []string `json:"routers,omitempty"`
	DNSServers   []string `json:"dns-servers,omitempty"`
	NTPServers   []string `json:"ntp-servers,omitempty"`
	DomainSearch []string `json:"domain-search,omitempty"`
}

type privNetLease struct {
	IP         string `json:"ip"`
	InstanceID string `json:"instance-id"`
}

type privNetRequest struct {
	Name        *string           `json:"name"`
	Description *string           `json:"description"`
	Netmask     *string           `json:"netmask"`
	StartIP     *string           `json:"start-ip"`
	EndIP       *string           `json:"end-ip"`
	Labels      map[string]string `json:"labels"`
	Options     *privNetOptions   `json:"options"`
}

func privNetLink(id string) string { return "/v2/private-network/" + id }

func privNetAPI(n *privNetRecord) privNetRecord {
	out := *n
	out.CreatedAt, out.Zone = nil, "" // not fields of private-network
	if out.Leases == nil {
		out.Leases = []privNetLease{}
	}
	return out
}

// applyPrivNet validates req and applies it to n. A managed network needs
// netmask, start-ip and end-ip together, start-ip <= end-ip.
func applyPrivNet(n *privNetRecord, req privNetRequest) error {
	if req.Name != nil {
		if err := validName("name", *req.Name); err != nil {
			return err
		}
		n.Name = *req.Name
	}
	if req.Description != nil {
		if err := validDescription(*req.Description); err != nil {
			return err
		}
		n.Description = *req.Description
	}
	if err := validLabels(req.Labels); err != nil {
		return err
	}
	if req.Labels != nil {
		n.Labels = req.Labels
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{{"netmask", req.Netmask, &n.Netmask}, {"start-ip", req.StartIP, &n.StartIP}, {"end-ip", req.EndIP, &n.EndIP}} {
		if f.v == nil {
			continue
		}
		a, err := netip.ParseAddr(*f.v)
		if err != nil || !a.Is4() {
			return errorf(http.StatusBadRequest, "invalid %s %q: want an IPv4 address", f.name, *f.v)
		}
		*f.dst = a.String()
	}
	if (n.Netmask == "") != (n.StartIP == "") || (n.StartIP == "") != (n.EndIP == "") {
		return errorf(http.StatusBadRequest, "a managed private network needs netmask, start-ip and end-ip")
	}
	if n.StartIP != "" && netip.MustParseAddr(n.StartIP).Compare(netip.MustParseAddr(n.EndIP)) > 0 {
		return errorf(http.StatusBadRequest, "start-ip %s is after end-ip %s", n.StartIP, n.EndIP)
	}
	if req.Options != nil {
		n.Options = req.Options
	}
	return nil
}

func (c *Cloud) listPrivateNetworks(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []privNetRecord{}
	for _, n := range inZone(c.res.privateNets, zoneOf(r)) {
		out = append(out, privNetAPI(n))
	}
	return map[string]any{"private-networks": out}, nil
}

func (c *Cloud) getPrivateNetwork(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := lookupZonal(c.res.privateNets, zoneOf(r), r.PathValue("id"))
	if !ok {
		return nil, notFound("private network", r.PathValue("id"))
	}
	return privNetAPI(n), nil
}

func (c *Cloud) createPrivateNetwork(r *http.Request) (any, error) {
	var req privNetRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Name == nil {
		return nil, errorf(http.StatusBadRequest, "name is required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.nowUTC()
	n := &privNetRecord{ID: newUUID(), Zone: zoneOf(r), CreatedAt: &now}
	if err := applyPrivNet(n, req); err != nil {
		return nil, err
	}
	for _, other := range inZone(c.res.privateNets, n.Zone) {
		if other.Name == n.Name {
			return nil, errorf(http.StatusConflict, "a private network named %q already exists", n.Name)
		}
		n.VNI = max(n.VNI, other.VNI)
	}
	n.VNI++
	c.res.privateNets[n.ID] = n
	c.log.Info("private network created", "private_network", n.ID, "name", n.Name)
	return c.doneOpLocked(r, "create-private-network", n.ID, privNetLink(n.ID)), nil
}

func (c *Cloud) updatePrivateNetwork(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req privNetRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := lookupZonal(c.res.privateNets, zoneOf(r), id)
	if !ok {
		return nil, notFound("private network", id)
	}
	upd := *n
	if err := applyPrivNet(&upd, req); err != nil {
		return nil, err
	}
	*n = upd
	return c.doneOpLocked(r, "update-private-network", id, privNetLink(id)), nil
}

func (c *Cloud) deletePrivateNetwork(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := lookupZonal(c.res.privateNets, zoneOf(r), id); !ok {
		return nil, notFound("private network", id)
	}
	delete(c.res.privateNets, id)
	c.log.Info("private network deleted", "private_network", id)
	return c.doneOpLocked(r, "delete-private-network", id, privNetLink(id)), nil
}

type eipRecord struct {
	ID          string            `json:"id"`
	Zone        string            `json:"zone"`
	IP          netip.Addr        `json:"ip"`
	Description string            `json:"description,omitempty"`
	Healthcheck *eipHealthcheck   `json:"healthcheck,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	CreatedAt   time.Time         `json:"created-at"`
}

type eipHealthcheck struct {
	Mode          string `json:"mode"`
	Port          int64  `json:"port"`
	URI           string `json:"uri,omitempty"`
	Interval      int64  `json:"interval,omitempty"`
	Timeout       int64  `json:"timeout,omitempty"`
	StrikesOK     int64  `json:"strikes-ok,omitempty"`
	StrikesFail   int64  `json:"strikes-fail,omitempty"`
	TLSSNI        string `json:"tls-sni,omitempty"`
	TLSSkipVerify bool   `json:"tls-skip-verify"`
}

type apiElasticIP struct {
	ID            string            `json:"id"`
	IP            string            `json:"ip"`
	AddressFamily string            `json:"addressfamily"`
	CIDR          string            `json:"cidr"`
	Description   string            `json:"description,omitempty"`
	Healthcheck   *eipHealthcheck   `json:"healthcheck,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

type eipRequest struct {
	AddressFamily string            `json:"addressfamily"`
	Description   *string           `json:"description"`
	Healthcheck   *eipHealthcheck   `json:"healthcheck"`
	Labels        map[string]string `json:"labels"`
}

func eipLink(id string) string { return "/v2/elastic-ip/" + id }

func eipAPI(e *eipRecord) apiElasticIP {
	return apiElasticIP{
		ID: e.ID, IP: e.IP.String(), AddressFamily: "inet4", CIDR: netip.PrefixFrom(e.IP, 32).String(),
		Description: e.Description, Healthcheck: e.Healthcheck, Labels: e.Labels,
	}
}

// validEIPHealthcheck checks an elastic-ip-healthcheck against the spec's
// ranges.
func validEIPHealthcheck(h *eipHealthcheck) error {
	if h == nil {
		return nil
	}
	bad := func(f string, v int64, lo, hi int64) error {
		return errorf(http.StatusBadRequest, "invalid healthcheck %s %d: must be between %d and %d", f, v, lo, hi)
	}
	switch {
	case h.Mode != "tcp" && h.Mode != "http" && h.Mode != "https":
		return errorf(http.StatusBadRequest, "invalid healthcheck mode %q: want tcp, http or https", h.Mode)
	case h.Port < 1 || h.Port > 65535:
		return bad("port", h.Port, 1, 65535)
	case h.Interval != 0 && (h.Interval < 5 || h.Interval > 300):
		return bad("interval", h.Interval, 5, 300)
	case h.Timeout != 0 && (h.Timeout < 2 || h.Timeout > 60):
		return bad("timeout", h.Timeout, 2, 60)
	case h.StrikesOK != 0 && (h.StrikesOK < 1 || h.StrikesOK > 20):
		return bad("strikes-ok", h.StrikesOK, 1, 20)
	case h.StrikesFail != 0 && (h.StrikesFail < 1 || h.StrikesFail > 20):
		return bad("strikes-fail", h.StrikesFail, 1, 20)
	}
	return nil
}

func (c *Cloud) listElasticIPs(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []apiElasticIP{}
	for _, e := range inZone(c.res.elasticIPs, zoneOf(r)) {
		out = append(out, eipAPI(e))
	}
	return map[string]any{"elastic-ips": out}, nil
}

func (c *Cloud) getElasticIP(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := lookupZonal(c.res.elasticIPs, zoneOf(r), r.PathValue("id"))
	if !ok {
		return nil, notFound("elastic IP", r.PathValue("id"))
	}
	return eipAPI(e), nil
}

func (c *Cloud) createElasticIP(r *http.Request) (any, error) {
	var req eipRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.AddressFamily != "" && req.AddressFamily != "inet4" {
		return nil, errorf(http.StatusBadRequest, "addressfamily %q is not offered by the local cloud (inet4 only)", req.AddressFamily)
	}
	e := &eipRecord{Healthcheck: req.Healthcheck, Labels: req.Labels}
	if req.Description != nil {
		e.Description = *req.Description
	}
	for _, err := range []error{validDescription(e.Description), validEIPHealthcheck(req.Healthcheck), validLabels(req.Labels)} {
		if err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ip, err := c.nlbIPs.alloc()
	if err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "allocate elastic IP: %v", err)
	}
	e.ID, e.Zone, e.IP, e.CreatedAt = newUUID(), zoneOf(r), ip, c.nowUTC()
	c.res.elasticIPs[e.ID] = e
	c.log.Info("elastic IP created", "elastic_ip", e.ID, "ip", ip)
	return c.doneOpLocked(r, "create-elastic-ip", e.ID, eipLink(e.ID)), nil
}

func (c *Cloud) updateElasticIP(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req eipRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Description != nil {
		if err := validDescription(*req.Description); err != nil {
			return nil, err
		}
	}
	if err := validEIPHealthcheck(req.Healthcheck); err != nil {
		return nil, err
	}
	if err := validLabels(req.Labels); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := lookupZonal(c.res.elasticIPs, zoneOf(r), id)
	if !ok {
		return nil, notFound("elastic IP", id)
	}
	if req.Description != nil {
		e.Description = *req.Description
	}
	if req.Healthcheck != nil {
		e.Healthcheck = req.Healthcheck
	}
	if req.Labels != nil {
		e.Labels = req.Labels
	}
	return c.doneOpLocked(r, "update-elastic-ip", id, eipLink(id)), nil
}

func (c *Cloud) deleteElasticIP(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := lookupZonal(c.res.elasticIPs, zoneOf(r), id)
	if !ok {
		return nil, notFound("elastic IP", id)
	}
	delete(c.res.elasticIPs, id)
	c.nlbIPs.release(e.IP)
	c.log.Info("elastic IP deleted", "elastic_ip", id, "ip", e.IP)
	return c.doneOpLocked(r, "delete-elastic-ip", id, eipLink(id)), nil
}

func (g *aagRecord) zoneName() string     { return g.Zone }
func (n *privNetRecord) zoneName() string { return n.Zone }
func (e *eipRecord) zoneName() string     { return e.Zone }
