package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"go.uber.org/goleak"

	"tidepool/internal/buildbin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		buildbin.Cleanup()
		os.Exit(code)
	}))
}

// repoRoot is the module root (this file is <root>/internal/deploytest/).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

func exoscaleDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "deploy", "terraform", "exoscale")
}

// Placeholder values: what only a real plan would know, and sentinel secrets
// whose every occurrence in the rendered user data is accounted for.
const (
	operatorKey    = "EXOplaceholderoperatorkey00"
	operatorSecret = "operator-secret_0123456789+/=ABC"
	agentKey       = "EXOplaceholderagentkey00000"
	agentSecret    = "agent-secret_ABCDEFGHIJ0123456789"
	drainToken     = "drainTOKENplaceholder0123456789abcdefghij"
	grafanaPass    = "grafanaPASSplaceholder012"
	webhookToken   = "webhookTOKENplaceholder0123456789abcdefgh"

	poolID        = "11111111-2222-4333-8444-555555555555"
	nlbID         = "22222222-3333-4444-8555-666666666666"
	nlbServiceID  = "33333333-4444-4555-8666-777777777777"
	membersSGID   = "44444444-5555-4666-8777-888888888888"
	monitoringSG  = "55555555-6666-4777-8888-999999999999"
	nlbIP         = "198.51.100.10"
	monitoringIP  = "198.51.100.20"
	operatorCIDR  = "203.0.113.7/32"
	releaseURL    = "https://releases.example.com/tidepool/{version}/tidepool-linux-amd64"
	releaseVer    = "v1.2.3"
	releaseSHA256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// baseInputs are the variables an operator must set, plus overrides.
func baseInputs(overrides map[string]cty.Value) map[string]cty.Value {
	in := map[string]cty.Value{
		"exoscale_key":         cty.StringVal(operatorKey),
		"exoscale_secret":      cty.StringVal(operatorSecret),
		"tidepool_version":     cty.StringVal(releaseVer),
		"tidepool_release_url": cty.StringVal(releaseURL),
		"tidepool_sha256":      cty.StringVal(releaseSHA256),
		"operator_cidr":        cty.StringVal(operatorCIDR),
	}
	for k, v := range overrides {
		in[k] = v
	}
	return in
}

func obj(attrs map[string]string) cty.Value {
	m := map[string]cty.Value{}
	for k, v := range attrs {
		m[k] = cty.StringVal(v)
	}
	return cty.ObjectVal(m)
}

// placeholders are the resource attributes the module reads, as the
// providers would report them; provider attributes documented as Sensitive
// (iam_api_key.secret, random_password.result) are marked.
func placeholders(createAgentKey bool) map[string]cty.Value {
	role, key := cty.EmptyTupleVal, cty.EmptyTupleVal
	if createAgentKey {
		role = cty.TupleVal([]cty.Value{obj(map[string]string{"id": "66666666-7777-4888-8999-aaaaaaaaaaaa"})})
		key = cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"key":    cty.StringVal(agentKey),
			"secret": cty.StringVal(agentSecret).Mark(Sensitive),
		})})
	}
	return map[string]cty.Value{
		"data.exoscale_template.ubuntu":        obj(map[string]string{"id": "77777777-8888-4999-8aaa-bbbbbbbbbbbb"}),
		"exoscale_security_group.members":      obj(map[string]string{"id": membersSGID}),
		"exoscale_security_group.monitoring":   obj(map[string]string{"id": monitoringSG}),
		"exoscale_instance_pool.members":       obj(map[string]string{"id": poolID}),
		"exoscale_nlb.app":                     obj(map[string]string{"id": nlbID, "ip_address": nlbIP}),
		"exoscale_nlb_service.app":             obj(map[string]string{"id": nlbServiceID}),
		"exoscale_compute_instance.monitoring": obj(map[string]string{"public_ip_address": monitoringIP}),
		"exoscale_iam_role.agents":             role,
		"exoscale_iam_api_key.agents":          key,
		"random_password.drain_token":          cty.ObjectVal(map[string]cty.Value{"result": cty.StringVal(drainToken).Mark(Sensitive)}),
		"random_password.grafana_admin":        cty.ObjectVal(map[string]cty.Value{"result": cty.StringVal(grafanaPass).Mark(Sensitive)}),
		"random_password.autoscaler_token":     cty.ObjectVal(map[string]cty.Value{"result": cty.StringVal(webhookToken).Mark(Sensitive)}),
		"terraform_data.monitoring_user_data":  obj(map[string]string{"id": "88888888-9999-4aaa-8bbb-cccccccccccc"}),
	}
}

func loadExoscale(t *testing.T) *Module {
	t.Helper()
	m, err := LoadModule(exoscaleDir(t))
	if err != nil {
		t.Fatalf("LoadModule: %v", err)
	}
	return m
}

// evaluate loads and evaluates the Exoscale module with baseInputs plus
// overrides; create_agent_api_key in overrides also picks the placeholders.
func evaluate(t *testing.T, overrides map[string]cty.Value) *Evaluation {
	t.Helper()
	m := loadExoscale(t)
	createKey := true
	if v, ok := overrides["create_agent_api_key"]; ok {
		createKey = v.True()
	}
	e, err := m.Evaluate(baseInputs(overrides), placeholders(createKey))
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return e
}

// attrValue evaluates attribute path of resource key ("TYPE.NAME").
func attrValue(t *testing.T, e *Evaluation, key string, path ...string) cty.Value {
	t.Helper()
	b := e.Module.Resources[key]
	if b == nil {
		t.Fatalf("no resource %s", key)
	}
	a, ok := Attr(b.Body, path...)
	if !ok {
		t.Fatalf("%s has no attribute %v", key, path)
	}
	v, err := e.Value(a.Expr, nil)
	if err != nil {
		t.Fatalf("%s %v: %v", key, path, err)
	}
	return v
}

// requireTool returns the path of an executable or fails the test: the tools
// come from Debian packages that `make test` installs.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing (%v): run `make test`, which installs the Debian packages prometheus and prometheus-alertmanager", name, err)
	}
	return p
}
