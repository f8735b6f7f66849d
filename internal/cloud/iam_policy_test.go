package cloud

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestPolicyAllows pins the decision rules Exoscale documents for IAM v3
// policies: unnamed services get the default strategy, typed services their
// type, rule services the first rule whose expression is true, rules that
// cannot be evaluated are skipped, and no deciding rule means deny whatever
// the default.
func TestPolicyAllows(t *testing.T) {
	rules := func(rs ...iamRule) iamServicePolicy { return iamServicePolicy{Type: "rules", Rules: rs} }
	allow := func(expr string) iamRule { return iamRule{Action: "allow", Expression: expr} }
	deny := func(expr string) iamRule { return iamRule{Action: "deny", Expression: expr} }
	scale := iamRequest{Service: "compute", Operation: "scale-instance-pool"}
	del := iamRequest{Service: "compute", Operation: "delete-instance-pool"}
	tests := []struct {
		name   string
		policy iamPolicy
		req    iamRequest
		want   bool
	}{
		{"default allow", iamPolicy{DefaultServiceStrategy: "allow"}, scale, true},
		{"default deny", iamPolicy{DefaultServiceStrategy: "deny"}, scale, false},
		{"other service named", iamPolicy{DefaultServiceStrategy: "allow", Services: map[string]iamServicePolicy{"iam": {Type: "deny"}}}, scale, true},
		{"service deny beats default allow", iamPolicy{DefaultServiceStrategy: "allow", Services: map[string]iamServicePolicy{"compute": {Type: "deny"}}}, scale, false},
		{"service allow beats default deny", iamPolicy{DefaultServiceStrategy: "deny", Services: map[string]iamServicePolicy{"compute": {Type: "allow"}}}, scale, true},
		{"in list", iamPolicy{DefaultServiceStrategy: "deny", Services: map[string]iamServicePolicy{"compute": rules(allow("operation in ['get-operation', 'scale-instance-pool']"))}}, scale, true},
		{"not in list", iamPolicy{DefaultServiceStrategy: "deny", Services: map[string]iamServicePolicy{"compute": rules(allow("operation in ['get-operation', 'scale-instance-pool']"))}}, del, false},
		{"no rule matches: deny despite default allow", iamPolicy{DefaultServiceStrategy: "allow", Services: map[string]iamServicePolicy{"compute": rules(allow("operation == 'get-operation'"))}}, del, false},
		{"first match wins", iamPolicy{DefaultServiceStrategy: "deny", Services: map[string]iamServicePolicy{"compute": rules(deny("operation.startsWith('delete-')"), allow("true"))}}, del, false},
		{"first match wins, falls through", iamPolicy{DefaultServiceStrategy: "deny", Services: map[string]iamServicePolicy{"compute": rules(deny("operation.startsWith('delete-')"), allow("true"))}}, scale, true},
		{"unevaluable rule skipped", iamPolicy{DefaultServiceStrategy: "deny", Services: map[string]iamServicePolicy{"compute": rules(deny("parameters.size == '3'"), allow("operation != 'x' && !(operation == \"y\")"))}}, scale, true},
		{"or", iamPolicy{DefaultServiceStrategy: "deny", Services: map[string]iamServicePolicy{"compute": rules(allow("operation == 'a' || operation.endsWith('-pool')"))}}, scale, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if got, why := tt.policy.allows(tt.req); got != tt.want {
				t.Errorf("allows(%+v) = %v (%s), want %v", tt.req, got, why, tt.want)
			}
		})
	}
}

// TestPolicyValidate checks that policies this cloud could not enforce as
// written are refused when they are set.
func TestPolicyValidate(t *testing.T) {
	svc := func(s iamServicePolicy) iamPolicy {
		return iamPolicy{DefaultServiceStrategy: "deny", Services: map[string]iamServicePolicy{"compute": s}}
	}
	tests := []struct {
		name    string
		policy  iamPolicy
		wantErr string
	}{
		{"bad default", iamPolicy{DefaultServiceStrategy: "maybe"}, "default-service-strategy"},
		{"bad type", svc(iamServicePolicy{Type: "some"}), `type "some"`},
		{"bad action", svc(iamServicePolicy{Type: "rules", Rules: []iamRule{{Action: "permit", Expression: "true"}}}), `action "permit"`},
		{"syntax error", svc(iamServicePolicy{Type: "rules", Rules: []iamRule{{Action: "allow", Expression: "operation in ['a'"}}}), "expression"},
		{"unknown function", svc(iamServicePolicy{Type: "rules", Rules: []iamRule{{Action: "allow", Expression: "operation.matches('a')"}}}), "unsupported function"},
		{"resources", svc(iamServicePolicy{Type: "rules", Rules: []iamRule{{Action: "allow", Expression: "true", Resources: []string{"x"}}}}), "resources"},
		{"rules with allow", svc(iamServicePolicy{Type: "allow", Rules: []iamRule{{Action: "allow", Expression: "true"}}}), "only allowed with type rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// specPath finds ../shared/reference/exoscale-openapi-v2.yaml relative to
// the repository root or one of its parents (worktrees sit deeper).
func specPath(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	for dir := filepath.Dir(file); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "reference", "exoscale-openapi-v2.yaml")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("../shared/reference/exoscale-openapi-v2.yaml not found above the repository")
	return ""
}

// specOperations returns "METHOD /v2/path" -> operationId of the spec, path
// parameters written {}.
func specOperations(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(specPath(t))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			OperationID string `yaml:"operationId"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatalf("parse spec: %v", err)
	}
	out := map[string]string{}
	for path, ops := range spec.Paths {
		for method, op := range ops {
			out[strings.ToUpper(method)+" /v2"+params.ReplaceAllString(path, "{}")] = op.OperationID
		}
	}
	return out
}

var params = regexp.MustCompile(`\{[^}]*\}`)

// TestAPIOperationsMatchSpec checks that every operation IAM policies are
// matched against is the spec's operationId for that method and path, and
// that every route the cloud serves maps to one (a route without one would
// be refused to every IAM key): the records-only resources' routes, and the
// other routes registered with a literal pattern.
func TestAPIOperationsMatchSpec(t *testing.T) {
	spec := specOperations(t)
	for key, op := range apiOperations {
		method, path, _ := strings.Cut(key, " ")
		norm := method + " /v2" + params.ReplaceAllString(path, "{}")
		if got, ok := spec[norm]; !ok || got != op.Operation {
			t.Errorf("apiOperations[%q] = %q; the spec has %q for %s", key, op.Operation, got, norm)
		}
	}
	// A request path for a route: every wildcard becomes a value.
	sample := func(path string) string {
		return params.ReplaceAllStringFunc(path, func(string) string { return "6d2f3ab6-0000-4000-8000-000000000001" })
	}
	for _, rt := range (&Cloud{}).resourceRoutes() {
		op, ok := operationOf(rt.method, "/v2"+sample(rt.path))
		if !ok || apiOperations[rt.method+" "+rt.path] != op {
			t.Errorf("route %s %s maps to %+v, %v; want its own apiOperations entry", rt.method, rt.path, op, ok)
		}
	}
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(node ast.Node) bool {
			call, ok := node.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "route" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			method, path, ok := strings.Cut(pattern, " ")
			if !ok {
				return true // the catch-all
			}
			n++
			if _, ok := operationOf(method, sample(path)); !ok {
				t.Errorf("%s: route %q maps to no operation of apiOperations", fset.Position(lit.Pos()), pattern)
			}
			return true
		})
	}
	if n < 10 {
		t.Errorf("found %d literal routes, want at least 10 (did the route helper change name?)", n)
	}
}
