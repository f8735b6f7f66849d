package cloud

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
)

// An instance pool's references to the records-only resources (security
// groups, anti-affinity groups, private networks, elastic IPs, SSH keys) and
// its user data: checked when the pool is created or updated, kept, and
// reported by GET /instance-pool, so that clients such as the Terraform
// provider read back what they set. They change nothing for the members,
// which run `tidepool app`. The handlers here wrap the pool's own (api_pool.go).

type poolRefs struct {
	SecurityGroups     []string `json:"security-groups,omitempty"`
	AntiAffinityGroups []string `json:"anti-affinity-groups,omitempty"`
	PrivateNetworks    []string `json:"private-networks,omitempty"`
	ElasticIPs         []string `json:"elastic-ips,omitempty"`
	SSHKeys            []string `json:"ssh-keys,omitempty"`
	UserData           string   `json:"user-data,omitempty"`
}

// poolRefsRequest is the part of create- and update-instance-pool bodies
// read here; a nil field is absent (unchanged on update).
type poolRefsRequest struct {
	SecurityGroups     *[]apiRef    `json:"security-groups"`
	AntiAffinityGroups *[]apiRef    `json:"anti-affinity-groups"`
	PrivateNetworks    *[]apiRef    `json:"private-networks"`
	ElasticIPs         *[]apiRef    `json:"elastic-ips"`
	SSHKey             *apiSSHKey   `json:"ssh-key"`
	SSHKeys            *[]apiSSHKey `json:"ssh-keys"`
	UserData           *string      `json:"user-data"`
}

// apiPoolWithRefs is the instance-pool schema: the pool's own fields and
// its references.
type apiPoolWithRefs struct {
	apiInstancePool
	SecurityGroups     []apiRef    `json:"security-groups,omitempty"`
	AntiAffinityGroups []apiRef    `json:"anti-affinity-groups,omitempty"`
	PrivateNetworks    []apiRef    `json:"private-networks,omitempty"`
	ElasticIPs         []apiRef    `json:"elastic-ips,omitempty"`
	SSHKey             *apiSSHKey  `json:"ssh-key,omitempty"`
	SSHKeys            []apiSSHKey `json:"ssh-keys,omitempty"`
	UserData           string      `json:"user-data,omitempty"`
}

// readPoolRefs reads the references of a pool request body and puts the
// body back for the pool's own handler. A body that is no JSON object is
// left to that handler to refuse.
func readPoolRefs(r *http.Request) (poolRefsRequest, bool, error) {
	var req poolRefsRequest
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return req, false, errorf(http.StatusBadRequest, "request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if json.Unmarshal(body, &req) != nil {
		return req, false, nil
	}
	return req, true, nil
}

// applyPoolRefsLocked checks req's references (zonal ones in zone) and
// applies them to refs.
func (c *Cloud) applyPoolRefsLocked(zone string, refs *poolRefs, req poolRefsRequest) error {
	check := func(dst *[]string, in *[]apiRef, kind string, exists func(string) bool) error {
		if in == nil {
			return nil
		}
		var ids []string
		for _, ref := range *in {
			if !exists(ref.ID) {
				return notFound(kind, ref.ID)
			}
			if !slices.Contains(ids, ref.ID) {
				ids = append(ids, ref.ID)
			}
		}
		*dst = ids
		return nil
	}
	res := c.res
	for _, err := range []error{
		check(&refs.SecurityGroups, req.SecurityGroups, "security group", func(id string) bool { return res.securityGroups[id] != nil }),
		check(&refs.AntiAffinityGroups, req.AntiAffinityGroups, "anti-affinity group", func(id string) bool { _, ok := lookupZonal(res.antiAffinity, zone, id); return ok }),
		check(&refs.PrivateNetworks, req.PrivateNetworks, "private network", func(id string) bool { _, ok := lookupZonal(res.privateNets, zone, id); return ok }),
		check(&refs.ElasticIPs, req.ElasticIPs, "elastic IP", func(id string) bool { _, ok := lookupZonal(res.elasticIPs, zone, id); return ok }),
	} {
		if err != nil {
			return err
		}
	}
	if req.SSHKey != nil || req.SSHKeys != nil {
		var keys []apiSSHKey
		if req.SSHKey != nil {
			keys = append(keys, *req.SSHKey)
		}
		if req.SSHKeys != nil {
			keys = append(keys, *req.SSHKeys...)
		}
		refs.SSHKeys = nil
		for _, k := range keys {
			if k.Name == "" {
				continue // {"ssh-key": {}} clears the key, as the Terraform provider sends it
			}
			if res.sshKeys[k.Name] == nil {
				return notFound("SSH key", k.Name)
			}
			if !slices.Contains(refs.SSHKeys, k.Name) {
				refs.SSHKeys = append(refs.SSHKeys, k.Name)
			}
		}
	}
	if req.UserData != nil {
		if err := validUserData(*req.UserData); err != nil {
			return err
		}
		refs.UserData = *req.UserData
	}
	return nil
}

// createPoolWithRefs serves POST /instance-pool: createPool, after checking
// the references, which are kept for the new pool.
func (c *Cloud) createPoolWithRefs(r *http.Request) (any, error) {
	req, ok, err := readPoolRefs(r)
	if err != nil || !ok {
		return c.createPool(r)
	}
	var refs poolRefs
	c.mu.Lock()
	err = c.applyPoolRefsLocked(zoneOf(r), &refs, req)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	v, err := c.createPool(r)
	if err != nil {
		return nil, err
	}
	if op, ok := v.(apiOperation); ok && op.Reference != nil {
		c.mu.Lock()
		c.res.poolRefs[op.Reference.ID] = &refs
		c.mu.Unlock()
	}
	return v, nil
}

// updatePoolWithRefs serves PUT /instance-pool/{id}: updatePool, after
// checking and applying the references of an update.
func (c *Cloud) updatePoolWithRefs(r *http.Request) (any, error) {
	req, ok, err := readPoolRefs(r)
	if err != nil || !ok {
		return c.updatePool(r)
	}
	id := r.PathValue("id")
	c.mu.Lock()
	refs := poolRefs{}
	if old := c.res.poolRefs[id]; old != nil {
		refs = *old
	}
	err = c.applyPoolRefsLocked(zoneOf(r), &refs, req)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	v, err := c.updatePool(r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.pools[id] != nil {
		c.res.poolRefs[id] = &refs
	}
	c.mu.Unlock()
	return v, nil
}

// resetPoolFieldWithRefs serves DELETE /instance-pool/{id}/{field}:
// resetPoolField, then a reference field or user-data is cleared.
func (c *Cloud) resetPoolFieldWithRefs(r *http.Request) (any, error) {
	v, err := c.resetPoolField(r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if pr := c.res.poolRefs[r.PathValue("id")]; pr != nil {
		switch r.PathValue("field") {
		case "security-groups":
			pr.SecurityGroups = nil
		case "anti-affinity-groups":
			pr.AntiAffinityGroups = nil
		case "private-networks":
			pr.PrivateNetworks = nil
		case "elastic-ips":
			pr.ElasticIPs = nil
		case "ssh-key":
			pr.SSHKeys = nil
		case "user-data":
			pr.UserData = ""
		}
	}
	return v, nil
}

// deletePoolWithRefs serves DELETE /instance-pool/{id}: deletePool, then
// the pool's references are dropped.
func (c *Cloud) deletePoolWithRefs(r *http.Request) (any, error) {
	v, err := c.deletePool(r)
	if err == nil {
		c.mu.Lock()
		delete(c.res.poolRefs, r.PathValue("id"))
		c.mu.Unlock()
	}
	return v, err
}

func (c *Cloud) withRefsLocked(p apiInstancePool) apiPoolWithRefs {
	out := apiPoolWithRefs{apiInstancePool: p}
	pr := c.res.poolRefs[p.ID]
	if pr == nil {
		return out
	}
	out.SecurityGroups, out.AntiAffinityGroups = refs(pr.SecurityGroups), refs(pr.AntiAffinityGroups)
	out.PrivateNetworks, out.ElasticIPs = refs(pr.PrivateNetworks), refs(pr.ElasticIPs)
	out.UserData = pr.UserData
	out.SSHKeys, out.SSHKey = c.sshKeysAPILocked(pr.SSHKeys)
	return out
}

// getPoolWithRefs serves GET /instance-pool/{id}: getPool and the pool's
// references.
func (c *Cloud) getPoolWithRefs(r *http.Request) (any, error) {
	v, err := c.getPool(r)
	if err != nil {
		return nil, err
	}
	p, ok := v.(apiInstancePool)
	if !ok {
		return v, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.withRefsLocked(p), nil
}

// listPoolsWithRefs serves GET /instance-pool: listPools and each pool's
// references.
func (c *Cloud) listPoolsWithRefs(r *http.Request) (any, error) {
	v, err := c.listPools(r)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return v, nil
	}
	pools, ok := m["instance-pools"].([]apiInstancePool)
	if !ok {
		return v, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]apiPoolWithRefs, 0, len(pools))
	for _, p := range pools {
		out = append(out, c.withRefsLocked(p))
	}
	return map[string]any{"instance-pools": out}, nil
}
