// IAM policy enforcement: the step after signature verification that decides
// whether an API key may call an operation.

package cloud

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"
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

// The CEL subset evaluated in rule expressions: string, bool and list
// literals; the variable operation; == and != on strings and bools; `in` on
// lists; the methods startsWith, endsWith and contains on strings; !, && and
// || (left to right, short-circuit) and parentheses. Other variables
// (parameters, resources) parse but fail to evaluate, so a rule using them
// never decides (as Exoscale treats a rule whose expression is invalid).

type celKind int

const (
	kindStr celKind = iota
	kindBool
	kindList
)

type celValue struct {
	kind celKind
	s    string
	b    bool
	list []celValue
}

func celString(s string) celValue { return celValue{kind: kindStr, s: s} }
func celBoolean(b bool) celValue  { return celValue{kind: kindBool, b: b} }

func (v celValue) equal(w celValue) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case kindStr:
		return v.s == w.s
	case kindBool:
		return v.b == w.b
	}
	return slices.EqualFunc(v.list, w.list, celValue.equal)
}

// celExpr is a parsed expression.
type celExpr interface {
	eval(vars map[string]celValue) (celValue, error)
}

type (
	celLit  struct{ v celValue }
	celVar  struct{ path []string }
	celList struct{ items []celExpr }
	celNot  struct{ x celExpr }
	celBin  struct {
		op   string
		l, r celExpr
	}
	celCall struct {
		recv   celExpr
		method string
		arg    celExpr
	}
)

func (e celLit) eval(map[string]celValue) (celValue, error) { return e.v, nil }

func (e celVar) eval(vars map[string]celValue) (celValue, error) {
	if len(e.path) == 1 {
		if v, ok := vars[e.path[0]]; ok {
			return v, nil
		}
	}
	return celValue{}, fmt.Errorf("no such attribute %s", strings.Join(e.path, "."))
}

func (e celList) eval(vars map[string]celValue) (celValue, error) {
	out := celValue{kind: kindList}
	for _, it := range e.items {
		v, err := it.eval(vars)
		if err != nil {
			return celValue{}, err
		}
		out.list = append(out.list, v)
	}
	return out, nil
}

func (e celNot) eval(vars map[string]celValue) (celValue, error) {
	v, err := e.x.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	if v.kind != kindBool {
		return celValue{}, errors.New("! needs a bool")
	}
	return celBoolean(!v.b), nil
}

func (e celBin) eval(vars map[string]celValue) (celValue, error) {
	l, err := e.l.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	if e.op == "&&" || e.op == "||" {
		if l.kind != kindBool {
			return celValue{}, fmt.Errorf("%s needs bools", e.op)
		}
		if (e.op == "&&" && !l.b) || (e.op == "||" && l.b) {
			return l, nil
		}
		r, err := e.r.eval(vars)
		if err != nil {
			return celValue{}, err
		}
		if r.kind != kindBool {
			return celValue{}, fmt.Errorf("%s needs bools", e.op)
		}
		return r, nil
	}
	r, err := e.r.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	switch e.op {
	case "==":
		return celBoolean(l.equal(r)), nil
	case "!=":
		return celBoolean(!l.equal(r)), nil
	case "in":
		if r.kind != kindList {
			return celValue{}, errors.New("in needs a list on its right")
		}
		return celBoolean(slices.ContainsFunc(r.list, l.equal)), nil
	}
	return celValue{}, fmt.Errorf("unknown operator %s", e.op)
}

func (e celCall) eval(vars map[string]celValue) (celValue, error) {
	recv, err := e.recv.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	arg, err := e.arg.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	if recv.kind != kindStr || arg.kind != kindStr {
		return celValue{}, fmt.Errorf("%s needs strings", e.method)
	}
	switch e.method {
	case "startsWith":
		return celBoolean(strings.HasPrefix(recv.s, arg.s)), nil
	case "endsWith":
		return celBoolean(strings.HasSuffix(recv.s, arg.s)), nil
	default: // contains
		return celBoolean(strings.Contains(recv.s, arg.s)), nil
	}
}

// parseExpr parses a rule expression of the CEL subset above.
func parseExpr(src string) (celExpr, error) {
	toks, err := celLex(src)
	if err != nil {
		return nil, err
	}
	p := &celParser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return e, nil
}

type celTok struct {
	kind byte // 'i' identifier, 's' string, 'o' operator or punctuation
	text string
}

func celLex(src string) ([]celTok, error) {
	var toks []celTok
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"':
			j := i + 1
			var sb strings.Builder
			for ; j < len(src) && src[j] != c; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				sb.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, errors.New("unterminated string")
			}
			toks = append(toks, celTok{'s', sb.String()})
			i = j + 1
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(src) && (src[j] == '_' || unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j]))) {
				j++
			}
			toks = append(toks, celTok{'i', src[i:j]})
			i = j
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch {
			case two == "==" || two == "!=" || two == "&&" || two == "||":
				toks = append(toks, celTok{'o', two})
				i += 2
			case strings.ContainsRune("()[],.!", rune(c)):
				toks = append(toks, celTok{'o', string(c)})
				i++
			default:
				return nil, fmt.Errorf("unexpected character %q", c)
			}
		}
	}
	return toks, nil
}

type celParser struct {
	toks []celTok
	pos  int
}

func (p *celParser) peek(text string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind != 's' && p.toks[p.pos].text == text
}

func (p *celParser) expect(text string) error {
	if !p.peek(text) {
		return fmt.Errorf("want %q", text)
	}
	p.pos++
	return nil
}

func (p *celParser) or() (celExpr, error) {
	l, err := p.and()
	for err == nil && p.peek("||") {
		p.pos++
		var r celExpr
		if r, err = p.and(); err == nil {
			l = celBin{"||", l, r}
		}
	}
	return l, err
}

func (p *celParser) and() (celExpr, error) {
	l, err := p.rel()
	for err == nil && p.peek("&&") {
		p.pos++
		var r celExpr
		if r, err = p.rel(); err == nil {
			l = celBin{"&&", l, r}
		}
	}
	return l, err
}

func (p *celParser) rel() (celExpr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"==", "!=", "in"} {
		if p.peek(op) {
			p.pos++
			r, err := p.unary()
			if err != nil {
				return nil, err
			}
			return celBin{op, l, r}, nil
		}
	}
	return l, nil
}

func (p *celParser) unary() (celExpr, error) {
	if p.peek("!") {
		p.pos++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return celNot{x}, nil
	}
	return p.postfix()
}

func (p *celParser) postfix() (celExpr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for p.peek(".") {
		p.pos++
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != 'i' {
			return nil, errors.New("want a name after the dot")
		}
		name := p.toks[p.pos].text
		p.pos++
		if p.peek("(") {
			if name != "startsWith" && name != "endsWith" && name != "contains" {
				return nil, fmt.Errorf("unsupported function %s", name)
			}
			p.pos++
			arg, err := p.or()
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			x = celCall{x, name, arg}
			continue
		}
		v, ok := x.(celVar)
		if !ok {
			return nil, fmt.Errorf("field %s of a non-variable", name)
		}
		x = celVar{append(slices.Clone(v.path), name)}
	}
	return x, nil
}

func (p *celParser) primary() (celExpr, error) {
	if p.pos >= len(p.toks) {
		return nil, errors.New("unexpected end of expression")
	}
	t := p.toks[p.pos]
	p.pos++
	switch {
	case t.kind == 's':
		return celLit{celString(t.text)}, nil
	case t.kind == 'i' && (t.text == "true" || t.text == "false"):
		return celLit{celBoolean(t.text == "true")}, nil
	case t.kind == 'i' && t.text == "in":
		return nil, errors.New("unexpected in")
	case t.kind == 'i':
		return celVar{[]string{t.text}}, nil
	case t.text == "(":
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")")
	case t.text == "[":
		var items []celExpr
		for !p.peek("]") {
			it, err := p.or()
			if err != nil {
				return nil, err
			}
			items = append(items, it)
			if !p.peek(",") {
				break
			}
			p.pos++
		}
		return celList{items}, p.expect("]")
	}
	return nil, fmt.Errorf("unexpected %q", t.text)
}
