package cloud

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"tidepool/internal/cloud/apispec"
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

// TestAPIOperationsMatchSpec checks that apiOperations, which IAM policies
// are matched against, has exactly one entry per route the cloud serves,
// holding the spec's operationId for that method and path, and that
// operationOf finds it for a request to the route (a route without one
// would be refused to every IAM key).
func TestAPIOperationsMatchSpec(t *testing.T) {
	path, err := apispec.Locate(".")
	if errors.Is(err, apispec.ErrNotFound) {
		t.Skipf("Exoscale OpenAPI spec absent, operations not checked: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	spec, err := apispec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// A request path for a route: every wildcard becomes a value.
	sample := func(path string) string {
		return wildcards.ReplaceAllLiteralString(path, "6d2f3ab6-0000-4000-8000-000000000001")
	}
	routes := map[string]bool{}
	for _, rt := range (&Cloud{}).routes() { // handlers are only named, never called
		key := rt.method + " " + rt.path
		routes[key] = true
		want, ok := apiOperations[key]
		if !ok {
			t.Errorf("route %s has no apiOperations entry", key)
			continue
		}
		if got := spec.OperationID(apispec.Operation(key)); got != want.Operation {
			t.Errorf("apiOperations[%q] = %q; the spec has %q", key, want.Operation, got)
		}
		if got, ok := operationOf(rt.method, "/v2"+sample(rt.path)); !ok || got != want {
			t.Errorf("operationOf(%s) = %+v, %v; want %+v", key, got, ok, want)
		}
	}
	for key := range apiOperations {
		if !routes[key] {
			t.Errorf("apiOperations[%q]: no such route", key)
		}
	}
}

var wildcards = regexp.MustCompile(`\{[^}]*\}`)
