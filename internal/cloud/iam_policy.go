// IAM policy enforcement: the step after signature verification that decides
// whether an API key may call an operation.

package cloud

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// iamPolicy is iam-policy (Exoscale IAM v3): a default strategy for services
// the policy does not name, and a policy per named service.
type iamPolicy struct {
	DefaultServiceStrategy string                      `json:"default-service-strategy"`
	Services               map[string]iamServicePolicy `json:"services"`
}

// iamServicePolicy is iam-service-policy: type allow or deny decides every
// operation of the service; type rules evaluates Rules in order.
type iamServicePolicy struct {
	Type  string    `json:"type,omitempty"`
	Rules []iamRule `json:"rules,omitempty"`
}

// iamRule is iam-service-policy-rule: Action applies when Expression (CEL)
// evaluates to true.
type iamRule struct {
	Action     string   `json:"action,omitempty"`
	Expression string   `json:"expression,omitempty"`
	Resources  []string `json:"resources,omitempty"`
}

// withServices returns p with a non-nil Services map (the spec requires it).
func (p iamPolicy) withServices() iamPolicy {
	if p.Services == nil {
		p.Services = map[string]iamServicePolicy{}
	}
	return p
}

// validate checks p's enums and that every rule expression parses in the
// CEL subset this cloud evaluates (see parseExpr). Rule resources are
// refused: this cloud has no resource attributes to match them against.
func (p iamPolicy) validate() error {
	if p.DefaultServiceStrategy != "allow" && p.DefaultServiceStrategy != "deny" {
		return fmt.Errorf("default-service-strategy %q: want allow or deny", p.DefaultServiceStrategy)
	}
	for name, s := range p.Services {
		switch s.Type {
		case "allow", "deny":
			if len(s.Rules) > 0 {
				return fmt.Errorf("service %s: rules are only allowed with type rules", name)
			}
		case "rules":
			for i, r := range s.Rules {
				if r.Action != "allow" && r.Action != "deny" {
					return fmt.Errorf("service %s rule %d: action %q: want allow or deny", name, i, r.Action)
				}
				if len(r.Resources) > 0 {
					return fmt.Errorf("service %s rule %d: resources are not supported by the local cloud", name, i)
				}
				if _, err := parseExpr(r.Expression); err != nil {
					return fmt.Errorf("service %s rule %d: expression %q: %w", name, i, r.Expression, err)
				}
			}
		default:
			return fmt.Errorf("service %s: type %q: want allow, deny or rules", name, s.Type)
		}
	}
	return nil
}

// iamRequest is what a policy decides on: the service class and the
// operation (the spec's operationId) of a request.
type iamRequest struct {
	Service   string
	Operation string
}

// allows decides req under p, as Exoscale documents it: a service the
// policy does not name gets the default strategy; a service of type allow
// or deny gets that; a service of type rules takes the action of the first
// rule whose expression is true, skips rules whose expression cannot be
// evaluated, and denies when no rule decides, whatever the default.
func (p iamPolicy) allows(req iamRequest) (bool, string) {
	s, ok := p.Services[req.Service]
	if !ok {
		return p.DefaultServiceStrategy == "allow", "default service strategy " + p.DefaultServiceStrategy
	}
	switch s.Type {
	case "allow":
		return true, "service " + req.Service + " allowed"
	case "deny":
		return false, "service " + req.Service + " denied"
	}
	vars := map[string]celValue{"operation": celString(req.Operation)}
	for i, r := range s.Rules {
		e, err := parseExpr(r.Expression)
		if err != nil {
			continue
		}
		v, err := e.eval(vars)
		if err != nil || v.kind != kindBool || !v.b {
			continue
		}
		return r.Action == "allow", fmt.Sprintf("rule %d of service %s: %s", i, req.Service, r.Action)
	}
	return false, "no rule of service " + req.Service + " matches"
}

// errForbidden marks a request its key's role does not allow.
var errForbidden = errors.New("forbidden")

// authorize is the step after signature verification: requests signed with
// the configured root key may do anything; a key created through
// POST /api-key may do what its role's policy allows. r's path must be the
// API path under /v2 (after any zone prefix is removed). A request that is
// no operation of apiOperations is refused to every IAM key (fail closed).
func (c *Cloud) authorize(r *http.Request, key string) error {
	if key == c.cfg.Key {
		return nil
	}
	c.mu.Lock()
	k := c.res.apiKeys[key]
	var role *roleRecord
	if k != nil {
		role = c.res.roles[k.RoleID]
	}
	c.mu.Unlock()
	if k == nil {
		return fmt.Errorf("%w: unknown API key %q", errForbidden, key)
	}
	if role == nil {
		return fmt.Errorf("%w: the role of API key %q no longer exists", errForbidden, key)
	}
	req, ok := operationOf(r.Method, r.URL.Path)
	if !ok {
		return fmt.Errorf("%w: %s %s is not an operation an IAM role can allow", errForbidden, r.Method, r.URL.Path)
	}
	allowed, why := role.Policy.allows(req)
	if !allowed {
		return fmt.Errorf("%w: operation %s (service %s) denied to API key %q by role %q: %s",
			errForbidden, req.Operation, req.Service, key, role.Name, why)
	}
	return nil
}

// credentials returns the secrets of every key that may sign requests: the
// configured root key and the API keys created through POST /api-key.
func (c *Cloud) credentials() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.secrets)+len(c.res.apiKeys))
	for k, s := range c.secrets {
		out[k] = s
	}
	for k, rec := range c.res.apiKeys {
		out[k] = rec.Secret
	}
	return out
}

// operationOf maps a request's method and path (under /v2) to its IAM
// service and operation by matching the spec paths of apiOperations: a
// {wildcard} matches one path segment, and an action after the last one
// (":scale") must match too.
func operationOf(method, path string) (iamRequest, bool) {
	path, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return iamRequest{}, false
	}
	segs := strings.Split(path, "/")
	for key, op := range apiOperations {
		m, tmpl, _ := strings.Cut(key, " /")
		if m == method && matchSpecPath(strings.Split(tmpl, "/"), segs) {
			return op, true
		}
	}
	return iamRequest{}, false
}

// matchSpecPath matches path segments against a spec path's segments.
func matchSpecPath(tmpl, segs []string) bool {
	if len(tmpl) != len(segs) {
		return false
	}
	for i, t := range tmpl {
		s := segs[i]
		if !strings.HasPrefix(t, "{") {
			if t != s {
				return false
			}
			continue
		}
		_, action, _ := strings.Cut(t, "}:")         // the template's action, if any
		value, got, hasAction := strings.Cut(s, ":") // the request's
		if value == "" || hasAction != (action != "") || got != action {
			return false
		}
	}
	return true
}

// apiOperations maps every served endpoint ("METHOD /spec-path", as in the
// spec under /v2 and in routes, actions included) to its IAM service and the
// spec's operationId; TestAPIOperationsMatchSpec checks them against the
// spec and the routes.
var apiOperations = map[string]iamRequest{
	"GET /zone":                     {"compute", "list-zones"},
	"GET /instance-type":            {"compute", "list-instance-types"},
	"GET /instance-type/{id}":       {"compute", "get-instance-type"},
	"GET /template":                 {"compute", "list-templates"},
	"GET /template/{id}":            {"compute", "get-template"},
	"GET /operation/{id}":           {"compute", "get-operation"},
	"GET /instance-pool":            {"compute", "list-instance-pools"},
	"POST /instance-pool":           {"compute", "create-instance-pool"},
	"GET /instance-pool/{id}":       {"compute", "get-instance-pool"},
	"PUT /instance-pool/{id}":       {"compute", "update-instance-pool"},
	"PUT /instance-pool/{id}:scale": {"compute", "scale-instance-pool"},
	"PUT /instance-pool/{id}:evict": {"compute", "evict-instance-pool-members"},
	"DELETE /instance-pool/{id}":    {"compute", "delete-instance-pool"},
	// Reset-field endpoints: Terraform clears a description or labels with them.
	"DELETE /instance-pool/{id}/{field}":                      {"compute", "reset-instance-pool-field"},
	"DELETE /load-balancer/{id}/{field}":                      {"compute", "reset-load-balancer-field"},
	"DELETE /load-balancer/{id}/service/{service-id}/{field}": {"compute", "reset-load-balancer-service-field"},

	"GET /instance":                        {"compute", "list-instances"},
	"POST /instance":                       {"compute", "create-instance"},
	"GET /instance/{id}":                   {"compute", "get-instance"},
	"PUT /instance/{id}":                   {"compute", "update-instance"},
	"PUT /instance/{id}:start":             {"compute", "start-instance"},
	"PUT /instance/{id}:stop":              {"compute", "stop-instance"},
	"PUT /instance/{id}:reboot":            {"compute", "reboot-instance"},
	"PUT /instance/{id}:scale":             {"compute", "scale-instance"},
	"PUT /instance/{id}:add-protection":    {"compute", "add-instance-protection"},
	"PUT /instance/{id}:remove-protection": {"compute", "remove-instance-protection"},
	"DELETE /instance/{id}":                {"compute", "delete-instance"},
	"GET /reverse-dns/instance/{id}":       {"compute", "get-reverse-dns-instance"},
	"POST /reverse-dns/instance/{id}":      {"compute", "update-reverse-dns-instance"},
	"DELETE /reverse-dns/instance/{id}":    {"compute", "delete-reverse-dns-instance"},

	"GET /load-balancer":                              {"compute", "list-load-balancers"},
	"POST /load-balancer":                             {"compute", "create-load-balancer"},
	"GET /load-balancer/{id}":                         {"compute", "get-load-balancer"},
	"PUT /load-balancer/{id}":                         {"compute", "update-load-balancer"},
	"DELETE /load-balancer/{id}":                      {"compute", "delete-load-balancer"},
	"POST /load-balancer/{id}/service":                {"compute", "add-service-to-load-balancer"},
	"GET /load-balancer/{id}/service/{service-id}":    {"compute", "get-load-balancer-service"},
	"PUT /load-balancer/{id}/service/{service-id}":    {"compute", "update-load-balancer-service"},
	"DELETE /load-balancer/{id}/service/{service-id}": {"compute", "delete-load-balancer-service"},
	"GET /security-group":                             {"compute", "list-security-groups"},
	"POST /security-group":                            {"compute", "create-security-group"},
	"GET /security-group/{id}":                        {"compute", "get-security-group"},
	"DELETE /security-group/{id}":                     {"compute", "delete-security-group"},
	"PUT /security-group/{id}:attach":                 {"compute", "attach-instance-to-security-group"},
	"PUT /security-group/{id}:detach":                 {"compute", "detach-instance-from-security-group"},
	"PUT /security-group/{id}:add-source":             {"compute", "add-external-source-to-security-group"},
	"PUT /security-group/{id}:remove-source":          {"compute", "remove-external-source-from-security-group"},
	"POST /security-group/{id}/rules":                 {"compute", "add-rule-to-security-group"},
	"DELETE /security-group/{id}/rules/{rule-id}":     {"compute", "delete-rule-from-security-group"},
	"GET /ssh-key":                                    {"compute", "list-ssh-keys"},
	"POST /ssh-key":                                   {"compute", "register-ssh-key"},
	"GET /ssh-key/{name}":                             {"compute", "get-ssh-key"},
	"DELETE /ssh-key/{name}":                          {"compute", "delete-ssh-key"},
	"GET /anti-affinity-group":                        {"compute", "list-anti-affinity-groups"},
	"POST /anti-affinity-group":                       {"compute", "create-anti-affinity-group"},
	"GET /anti-affinity-group/{id}":                   {"compute", "get-anti-affinity-group"},
	"DELETE /anti-affinity-group/{id}":                {"compute", "delete-anti-affinity-group"},
	"GET /private-network":                            {"compute", "list-private-networks"},
	"POST /private-network":                           {"compute", "create-private-network"},
	"GET /private-network/{id}":                       {"compute", "get-private-network"},
	"PUT /private-network/{id}":                       {"compute", "update-private-network"},
	"DELETE /private-network/{id}":                    {"compute", "delete-private-network"},
	"GET /elastic-ip":                                 {"compute", "list-elastic-ips"},
	"POST /elastic-ip":                                {"compute", "create-elastic-ip"},
	"GET /elastic-ip/{id}":                            {"compute", "get-elastic-ip"},
	"PUT /elastic-ip/{id}":                            {"compute", "update-elastic-ip"},
	"DELETE /elastic-ip/{id}":                         {"compute", "delete-elastic-ip"},
	"GET /iam-role":                                   {"iam", "list-iam-roles"},
	"POST /iam-role":                                  {"iam", "create-iam-role"},
	"GET /iam-role/{id}":                              {"iam", "get-iam-role"},
	"PUT /iam-role/{id}":                              {"iam", "update-iam-role"},
	"PUT /iam-role/{id}:policy":                       {"iam", "update-iam-role-policy"},
	"DELETE /iam-role/{id}":                           {"iam", "delete-iam-role"},
	"GET /api-key":                                    {"iam", "list-api-keys"},
	"POST /api-key":                                   {"iam", "create-api-key"},
	"GET /api-key/{id}":                               {"iam", "get-api-key"},
	"DELETE /api-key/{id}":                            {"iam", "delete-api-key"},
}
