package cloud

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"time"
)

// IAM roles and API keys (spec tag iam). A key created here signs requests
// like the configured root key, and its role's policy is enforced on every
// request it signs (iam_policy.go).

type roleRecord struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Editable    bool              `json:"editable"`
	Labels      map[string]string `json:"labels,omitempty"`
	Permissions []string          `json:"permissions,omitempty"`
	Policy      iamPolicy         `json:"policy"`
	CreatedAt   time.Time         `json:"created-at"`
}

type apiKeyRecord struct {
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	RoleID    string    `json:"role-id"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created-at"`
}

type apiIAMRole struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Editable    bool              `json:"editable"`
	Labels      map[string]string `json:"labels,omitempty"`
	Permissions []string          `json:"permissions"`
	Policy      iamPolicy         `json:"policy"`
}

type apiIAMAPIKey struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	RoleID string `json:"role-id"`
	Secret string `json:"secret,omitempty"` // only in the answer to create-api-key
}

// iamPermissions are the role permissions of the spec (enum).
var iamPermissions = []string{"bypass-governance-retention", "reset-iam-organization-policy"}

func roleAPI(r *roleRecord) apiIAMRole {
	perms := r.Permissions
	if perms == nil {
		perms = []string{}
	}
	return apiIAMRole{
		ID: r.ID, Name: r.Name, Description: r.Description, Editable: r.Editable,
		Labels: r.Labels, Permissions: perms, Policy: r.Policy.withServices(),
	}
}

func roleLink(id string) string { return "/v2/iam-role/" + id }

func (c *Cloud) roleLocked(id string) (*roleRecord, error) {
	r := c.res.roles[id]
	if r == nil {
		return nil, notFound("IAM role", id)
	}
	return r, nil
}

func (c *Cloud) listRoles(*http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []apiIAMRole{}
	for _, r := range sortedValues(c.res.roles) {
		out = append(out, roleAPI(r))
	}
	return map[string]any{"iam-roles": out}, nil
}

func (c *Cloud) getRole(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	role, err := c.roleLocked(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return roleAPI(role), nil
}

func validRoleDescription(v *string) error {
	if v != nil && (len(*v) < 1 || len(*v) > 255) {
		return errorf(http.StatusBadRequest, "invalid description: 1 to 255 characters")
	}
	return nil
}

func validPermissions(perms []string) error {
	for _, p := range perms {
		if !slices.Contains(iamPermissions, p) {
			return errorf(http.StatusBadRequest, "invalid permission %q: want one of %v", p, iamPermissions)
		}
	}
	return nil
}

func (c *Cloud) createRole(r *http.Request) (any, error) {
	var req struct {
		Name        string            `json:"name"`
		Description *string           `json:"description"`
		Permissions []string          `json:"permissions"`
		Editable    *bool             `json:"editable"`
		Labels      map[string]string `json:"labels"`
		Policy      *iamPolicy        `json:"policy"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" || len(req.Name) > 191 {
		return nil, errorf(http.StatusBadRequest, "invalid name %q: 1 to 191 characters", req.Name)
	}
	for _, err := range []error{validRoleDescription(req.Description), validPermissions(req.Permissions), validLabels(req.Labels)} {
		if err != nil {
			return nil, err
		}
	}
	// A role created without a policy allows nothing.
	policy := iamPolicy{DefaultServiceStrategy: "deny"}
	if req.Policy != nil {
		policy = *req.Policy
	}
	if err := policy.validate(); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid policy: %v", err)
	}
	role := &roleRecord{
		ID: newUUID(), Name: req.Name, Editable: true, Labels: req.Labels,
		Permissions: req.Permissions, Policy: policy, CreatedAt: c.nowUTC(),
	}
	if req.Description != nil {
		role.Description = *req.Description
	}
	if req.Editable != nil {
		role.Editable = *req.Editable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, other := range c.res.roles {
		if other.Name == role.Name {
			return nil, errorf(http.StatusConflict, "an IAM role named %q already exists", role.Name)
		}
	}
	c.res.roles[role.ID] = role
	c.log.Info("IAM role created", "role", role.ID, "name", role.Name)
	return c.doneOpLocked(r, "create-iam-role", role.ID, roleLink(role.ID)), nil
}

// updateRole serves PUT /iam-role/{id} (update-iam-role).
func (c *Cloud) updateRole(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req struct {
		Description *string           `json:"description"`
		Permissions []string          `json:"permissions"`
		Labels      map[string]string `json:"labels"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	for _, err := range []error{validRoleDescription(req.Description), validPermissions(req.Permissions), validLabels(req.Labels)} {
		if err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	role, err := c.roleLocked(id)
	if err != nil {
		return nil, err
	}
	if req.Description != nil {
		role.Description = *req.Description
	}
	if req.Permissions != nil {
		role.Permissions = req.Permissions
	}
	if req.Labels != nil {
		role.Labels = req.Labels
	}
	return c.doneOpLocked(r, "update-iam-role", id, roleLink(id)), nil
}

// updateRolePolicy serves PUT /iam-role/{id}:policy (update-iam-role-policy):
// the new policy applies to the next request of the role's keys.
func (c *Cloud) updateRolePolicy(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var policy iamPolicy
	if err := decodeBody(r, &policy); err != nil {
		return nil, err
	}
	if err := policy.validate(); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid policy: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	role, err := c.roleLocked(id)
	if err != nil {
		return nil, err
	}
	if !role.Editable {
		return nil, errorf(http.StatusForbidden, "the policy of IAM role %q is not editable", id)
	}
	role.Policy = policy
	c.log.Info("IAM role policy updated", "role", id)
	return c.doneOpLocked(r, "update-iam-role-policy", id, roleLink(id)), nil
}

func (c *Cloud) deleteRole(r *http.Request) (any, error) {
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.roleLocked(id); err != nil {
		return nil, err
	}
	for _, k := range c.res.apiKeys {
		if k.RoleID == id {
			return nil, errorf(http.StatusConflict, "IAM role %q is used by API key %q", id, k.Key)
		}
	}
	delete(c.res.roles, id)
	c.log.Info("IAM role deleted", "role", id)
	return c.doneOpLocked(r, "delete-iam-role", id, roleLink(id)), nil
}

func keyAPI(k *apiKeyRecord) apiIAMAPIKey {
	return apiIAMAPIKey{Name: k.Name, Key: k.Key, RoleID: k.RoleID}
}

func (c *Cloud) listAPIKeys(*http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []apiIAMAPIKey{}
	for _, k := range sortedValues(c.res.apiKeys) {
		out = append(out, keyAPI(k))
	}
	return map[string]any{"api-keys": out}, nil
}

func (c *Cloud) getAPIKey(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.res.apiKeys[r.PathValue("id")]
	if k == nil {
		return nil, notFound("API key", r.PathValue("id"))
	}
	return keyAPI(k), nil
}

// newAPICredentials returns a fresh key ("EXO" and 24 hex digits, like
// Exoscale's) and secret (43 URL-safe base64 characters).
func newAPICredentials() (key, secret string) {
	var k [12]byte
	var s [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	if _, err := rand.Read(s[:]); err != nil {
		panic(err)
	}
	return "EXO" + hex.EncodeToString(k[:]), base64.RawURLEncoding.EncodeToString(s[:])
}

// createAPIKey serves POST /api-key. Unlike most mutations it answers the
// new key itself (iam-api-key-created), the only time its secret is shown.
func (c *Cloud) createAPIKey(r *http.Request) (any, error) {
	var req struct {
		Name   string `json:"name"`
		RoleID string `json:"role-id"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := validName("name", req.Name); err != nil {
		return nil, err
	}
	if req.RoleID == "" {
		return nil, errorf(http.StatusBadRequest, "role-id is required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.res.roles[req.RoleID] == nil {
		return nil, notFound("IAM role", req.RoleID)
	}
	key, secret := newAPICredentials()
	k := &apiKeyRecord{Key: key, Name: req.Name, RoleID: req.RoleID, Secret: secret, CreatedAt: c.nowUTC()}
	c.res.apiKeys[key] = k
	c.log.Info("API key created", "key", key, "name", k.Name, "role", k.RoleID)
	out := keyAPI(k)
	out.Secret = secret
	return out, nil
}

func (c *Cloud) deleteAPIKey(r *http.Request) (any, error) {
	key := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.res.apiKeys[key] == nil {
		return nil, notFound("API key", key)
	}
	delete(c.res.apiKeys, key)
	c.log.Info("API key deleted", "key", key)
	return c.doneOpLocked(r, "delete-api-key", nameUUID("api-key:"+key), "/v2/api-key/"+key), nil
}
