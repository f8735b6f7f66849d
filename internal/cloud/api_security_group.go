package cloud

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"
)

// Security groups and their rules (spec tag security-group). The local cloud
// keeps and answers them but does not filter traffic: members and load
// balancers live on loopback.

// sgRecord is a private security group.
type sgRecord struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Description     string         `json:"description,omitempty"`
	ExternalSources []string       `json:"external-sources,omitempty"`
	Rules           []sgRuleRecord `json:"rules,omitempty"`
	CreatedAt       time.Time      `json:"created-at"`
}

// sgRuleRecord is a security-group-rule; it is also the wire form.
type sgRuleRecord struct {
	ID            string         `json:"id"`
	FlowDirection string         `json:"flow-direction"`
	Protocol      string         `json:"protocol"`
	Description   string         `json:"description,omitempty"`
	Network       string         `json:"network,omitempty"`
	SecurityGroup *apiSGResource `json:"security-group,omitempty"`
	StartPort     *int64         `json:"start-port,omitempty"`
	EndPort       *int64         `json:"end-port,omitempty"`
	ICMP          *apiICMP       `json:"icmp,omitempty"`
}

// apiSGResource is security-group-resource: a rule's source or destination
// group, private (by ID) or public (by name).
type apiSGResource struct {
	ID         string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	Visibility string `json:"visibility,omitempty"`
}

type apiICMP struct {
	Code *int64 `json:"code,omitempty"`
	Type *int64 `json:"type,omitempty"`
}

type apiSecurityGroup struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Description     string         `json:"description,omitempty"`
	ExternalSources []string       `json:"external-sources,omitempty"`
	Rules           []sgRuleRecord `json:"rules"`
}

// publicSecurityGroup is one of the groups Exoscale maintains (visibility
// public) that rules may name as a source.
type publicSecurityGroup struct {
	Name        string
	Description string
}

// publicSecurityGroups are the public groups served. Their IDs are derived
// from their names, so they are stable.
var publicSecurityGroups = []publicSecurityGroup{
	{Name: "public-nlb-healthcheck-sources", Description: "Sources of the network load balancers' health checks"},
}

// nameUUID returns a stable UUID (version 4 layout) derived from s.
func nameUUID(s string) string {
	b := sha256.Sum256([]byte("tidepool:" + s))
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (c *Cloud) publicSGAPI(p publicSecurityGroup) apiSecurityGroup {
	// The local load balancers' health checks come from the load balancer range.
	return apiSecurityGroup{
		ID: nameUUID("security-group:" + p.Name), Name: p.Name, Description: p.Description,
		ExternalSources: []string{c.cfg.NLBNet.String()}, Rules: []sgRuleRecord{},
	}
}

func findPublicSG(name string) (publicSecurityGroup, bool) {
	for _, p := range publicSecurityGroups {
		if p.Name == name {
			return p, true
		}
	}
	return publicSecurityGroup{}, false
}

func (c *Cloud) sgAPILocked(g *sgRecord) apiSecurityGroup {
	out := apiSecurityGroup{ID: g.ID, Name: g.Name, Description: g.Description, ExternalSources: g.ExternalSources, Rules: []sgRuleRecord{}}
	for _, r := range g.Rules {
		if r.SecurityGroup != nil && r.SecurityGroup.Visibility == "private" {
			ref := *r.SecurityGroup
			if src := c.res.securityGroups[ref.ID]; src != nil {
				ref.Name = src.Name
			}
			r.SecurityGroup = &ref
		}
		out.Rules = append(out.Rules, r)
	}
	return out
}

func (c *Cloud) sgLocked(id string) (*sgRecord, error) {
	g := c.res.securityGroups[id]
	if g == nil {
		return nil, notFound("security group", id)
	}
	return g, nil
}

func sgLink(id string) string { return "/v2/security-group/" + id }

func (c *Cloud) listSecurityGroups(r *http.Request) (any, error) {
	out := []apiSecurityGroup{}
	switch v := r.URL.Query().Get("visibility"); v {
	case "public":
		for _, p := range publicSecurityGroups {
			out = append(out, c.publicSGAPI(p))
		}
		return map[string]any{"security-groups": out}, nil
	case "", "private":
	default:
		return nil, errorf(http.StatusBadRequest, "invalid visibility %q: want private or public", v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range sortedValues(c.res.securityGroups) {
		out = append(out, c.sgAPILocked(g))
	}
	return map[string]any{"security-groups": out}, nil
}

func (c *Cloud) getSecurityGroup(r *http.Request) (any, error) {
	id := r.PathValue("id")
	for _, p := range publicSecurityGroups {
		if g := c.publicSGAPI(p); g.ID == id {
			return g, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.sgLocked(id)
	if err != nil {
		return nil, err
	}
	return c.sgAPILocked(g), nil
}

func (c *Cloud) createSecurityGroup(r *http.Request) (any, error) {
	req, err := decodeNameDescription(r)
	if err != nil {
		return nil, err
	}
	if _, ok := findPublicSG(req.Name); ok {
		return nil, errorf(http.StatusConflict, "a security group named %q already exists", req.Name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.res.securityGroups {
		if g.Name == req.Name {
			return nil, errorf(http.StatusConflict, "a security group named %q already exists", req.Name)
		}
	}
	g := &sgRecord{ID: newUUID(), Name: req.Name, Description: req.Description, CreatedAt: c.nowUTC()}
	c.res.securityGroups[g.ID] = g
	c.log.Info("security group created", "security_group", g.ID, "name", g.Name)
	return c.doneOpLocked(r, "create-security-group", g.ID, sgLink(g.ID)), nil
}

// sgUsersLocked names what still refers to security group id: rules of
// other groups, standalone instances and instance pools.
func (c *Cloud) sgUsersLocked(id string) []string {
	var users []string
	for _, g := range sortedValues(c.res.securityGroups) {
		for _, rule := range g.Rules {
			if g.ID != id && rule.SecurityGroup != nil && rule.SecurityGroup.ID == id {
				users = append(users, fmt.Sprintf("rule %s of security group %s", rule.ID, g.ID))
			}
		}
	}
	for _, inst := range sortedValues(c.res.standalone) {
		if slices.Contains(inst.SecurityGroups, id) {
			users = append(users, "instance "+inst.ID)
		}
	}
	for poolID, refs := range c.res.poolRefs {
		if slices.Contains(refs.SecurityGroups, id) {
			users = append(users, "instance pool "+poolID)
		}
	}
	return users
}

func (c *Cloud) deleteSecurityGroup(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.sgLocked(id); err != nil {
		return nil, err
	}
	if users := c.sgUsersLocked(id); len(users) > 0 {
		return nil, errorf(http.StatusConflict, "security group %q is in use by %v", id, users)
	}
	delete(c.res.securityGroups, id)
	c.log.Info("security group deleted", "security_group", id)
	return c.doneOpLocked(r, "delete-security-group", id, sgLink(id)), nil
}

// attachSecurityGroup serves PUT /security-group/{id}:attach.
func (c *Cloud) attachSecurityGroup(r *http.Request) (any, error) { return c.sgMembership(r, true) }

// detachSecurityGroup serves PUT /security-group/{id}:detach.
func (c *Cloud) detachSecurityGroup(r *http.Request) (any, error) { return c.sgMembership(r, false) }

// sgMembership attaches a standalone instance to security group {id}, or
// detaches it.
func (c *Cloud) sgMembership(r *http.Request, attach bool) (any, error) {
	id := r.PathValue("id")
	var req struct {
		Instance *apiRef `json:"instance"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Instance == nil || req.Instance.ID == "" {
		return nil, errorf(http.StatusBadRequest, "instance is required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.sgLocked(id); err != nil {
		return nil, err
	}
	inst, err := c.standaloneLocked(zoneOf(r), req.Instance.ID)
	if err != nil {
		return nil, err
	}
	has := slices.Contains(inst.SecurityGroups, id)
	if attach {
		if !has {
			inst.SecurityGroups = append(inst.SecurityGroups, id)
		}
		return c.doneOpLocked(r, "attach-instance-to-security-group", id, sgLink(id)), nil
	}
	if !has {
		return nil, errorf(http.StatusNotFound, "instance %q is not in security group %q", inst.ID, id)
	}
	inst.SecurityGroups = slices.DeleteFunc(inst.SecurityGroups, func(s string) bool { return s == id })
	return c.doneOpLocked(r, "detach-instance-from-security-group", id, sgLink(id)), nil
}

// addExternalSource serves PUT /security-group/{id}:add-source.
func (c *Cloud) addExternalSource(r *http.Request) (any, error) { return c.externalSource(r, true) }

// removeExternalSource serves PUT /security-group/{id}:remove-source.
func (c *Cloud) removeExternalSource(r *http.Request) (any, error) { return c.externalSource(r, false) }

func (c *Cloud) externalSource(r *http.Request, add bool) (any, error) {
	id := r.PathValue("id")
	var req struct {
		CIDR string `json:"cidr"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	cidr, err := canonicalCIDR(req.CIDR)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.sgLocked(id)
	if err != nil {
		return nil, err
	}
	has := slices.Contains(g.ExternalSources, cidr)
	if add {
		if has {
			return nil, errorf(http.StatusConflict, "security group %q already has the external source %s", id, cidr)
		}
		g.ExternalSources = append(g.ExternalSources, cidr)
		return c.doneOpLocked(r, "add-external-source-to-security-group", id, sgLink(id)), nil
	}
	if !has {
		return nil, errorf(http.StatusNotFound, "security group %q has no external source %s", id, cidr)
	}
	g.ExternalSources = slices.DeleteFunc(g.ExternalSources, func(s string) bool { return s == cidr })
	return c.doneOpLocked(r, "remove-external-source-from-security-group", id, sgLink(id)), nil
}

// canonicalCIDR parses a CIDR network and returns it with its host bits
// cleared ("10.0.0.1/24" -> "10.0.0.0/24").
func canonicalCIDR(s string) (string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "invalid CIDR %q", s)
	}
	return p.Masked().String(), nil
}

// sgProtocols are the protocols of security-group-rule (spec enum).
var sgProtocols = []string{"tcp", "esp", "icmp", "udp", "gre", "ah", "ipip", "icmpv6"}

// addRuleRequest is the body of add-rule-to-security-group.
type addRuleRequest struct {
	FlowDirection string         `json:"flow-direction"`
	Description   string         `json:"description"`
	Network       string         `json:"network"`
	SecurityGroup *apiSGResource `json:"security-group"`
	Protocol      string         `json:"protocol"`
	ICMP          *apiICMP       `json:"icmp"`
	StartPort     *int64         `json:"start-port"`
	EndPort       *int64         `json:"end-port"`
}

// validRule checks a rule request and returns the rule to store (without
// its ID). The referenced group is looked up under c.mu.
func (c *Cloud) validRuleLocked(req addRuleRequest) (sgRuleRecord, error) {
	rule := sgRuleRecord{FlowDirection: req.FlowDirection, Protocol: req.Protocol, Description: req.Description}
	if req.FlowDirection != "ingress" && req.FlowDirection != "egress" {
		return rule, errorf(http.StatusBadRequest, "invalid flow-direction %q: want ingress or egress", req.FlowDirection)
	}
	if !slices.Contains(sgProtocols, req.Protocol) {
		return rule, errorf(http.StatusBadRequest, "invalid protocol %q: want one of %v", req.Protocol, sgProtocols)
	}
	if err := validDescription(req.Description); err != nil {
		return rule, err
	}
	switch {
	case req.Network != "" && req.SecurityGroup != nil:
		return rule, errorf(http.StatusBadRequest, "give network or security-group, not both")
	case req.Network != "":
		cidr, err := canonicalCIDR(req.Network)
		if err != nil {
			return rule, err
		}
		rule.Network = cidr
	case req.SecurityGroup != nil:
		ref, err := c.resolveSGRefLocked(*req.SecurityGroup)
		if err != nil {
			return rule, err
		}
		rule.SecurityGroup = &ref
	default:
		return rule, errorf(http.StatusBadRequest, "network or security-group is required")
	}
	for _, p := range []*int64{req.StartPort, req.EndPort} {
		if p != nil && (*p < 1 || *p > 65535) {
			return rule, errorf(http.StatusBadRequest, "invalid port %d: must be between 1 and 65535", *p)
		}
	}
	switch req.Protocol {
	case "tcp", "udp":
		start, end := req.StartPort, req.EndPort
		if start == nil {
			start = end
		}
		if end == nil {
			end = start
		}
		if start != nil && *start > *end {
			return rule, errorf(http.StatusBadRequest, "invalid port range %d-%d", *start, *end)
		}
		rule.StartPort, rule.EndPort = start, end
	case "icmp", "icmpv6":
		if req.StartPort != nil || req.EndPort != nil {
			return rule, errorf(http.StatusBadRequest, "ports are not allowed with protocol %s", req.Protocol)
		}
		icmp := apiICMP{Code: ptr(int64(-1)), Type: ptr(int64(-1))}
		if req.ICMP != nil {
			for _, v := range []*int64{req.ICMP.Code, req.ICMP.Type} {
				if v != nil && (*v < -1 || *v > 254) {
					return rule, errorf(http.StatusBadRequest, "invalid icmp code or type %d: must be between -1 and 254", *v)
				}
			}
			if req.ICMP.Code != nil {
				icmp.Code = req.ICMP.Code
			}
			if req.ICMP.Type != nil {
				icmp.Type = req.ICMP.Type
			}
		}
		rule.ICMP = &icmp
	default:
		if req.StartPort != nil || req.EndPort != nil {
			return rule, errorf(http.StatusBadRequest, "ports are not allowed with protocol %s", req.Protocol)
		}
	}
	return rule, nil
}

// resolveSGRefLocked resolves a rule's security-group: a public group by
// name (visibility public), else a private group by ID or name.
func (c *Cloud) resolveSGRefLocked(ref apiSGResource) (apiSGResource, error) {
	if ref.Visibility == "public" {
		p, ok := findPublicSG(ref.Name)
		if !ok {
			return ref, errorf(http.StatusNotFound, "public security group %q not found", ref.Name)
		}
		return apiSGResource{ID: c.publicSGAPI(p).ID, Name: p.Name, Visibility: "public"}, nil
	}
	if ref.Visibility != "" && ref.Visibility != "private" {
		return ref, errorf(http.StatusBadRequest, "invalid visibility %q", ref.Visibility)
	}
	for _, g := range c.res.securityGroups {
		if (ref.ID != "" && g.ID == ref.ID) || (ref.ID == "" && ref.Name != "" && g.Name == ref.Name) {
			return apiSGResource{ID: g.ID, Name: g.Name, Visibility: "private"}, nil
		}
	}
	return ref, errorf(http.StatusNotFound, "security group %q not found", ref.ID+ref.Name)
}

func ptr[T any](v T) *T { return &v }

func (c *Cloud) addSecurityGroupRule(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req addRuleRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.sgLocked(id)
	if err != nil {
		return nil, err
	}
	rule, err := c.validRuleLocked(req)
	if err != nil {
		return nil, err
	}
	rule.ID = newUUID()
	g.Rules = append(g.Rules, rule)
	c.log.Info("security group rule added", "security_group", id, "rule", rule.ID)
	// The operation references the group, whose rules now list the new one.
	return c.doneOpLocked(r, "add-rule-to-security-group", id, sgLink(id)), nil
}

func (c *Cloud) deleteSecurityGroupRule(r *http.Request) (any, error) {
	id, ruleID := r.PathValue("id"), r.PathValue("rule_id")
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.sgLocked(id)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(g.Rules, func(x sgRuleRecord) bool { return x.ID == ruleID })
	if i < 0 {
		return nil, notFound("security group rule", ruleID)
	}
	g.Rules = slices.Delete(g.Rules, i, i+1)
	c.log.Info("security group rule deleted", "security_group", id, "rule", ruleID)
	return c.doneOpLocked(r, "delete-rule-from-security-group", id, sgLink(id)), nil
}
