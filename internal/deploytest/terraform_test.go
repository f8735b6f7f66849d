package deploytest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"tidepool/internal/autoscaler"
	"tidepool/internal/discover"
)

// terraformBinary finds the Terraform CLI: the pinned one that `go install
// github.com/hashicorp/terraform@v1.5.7` puts in $(go env GOPATH)/bin first,
// then PATH.
func terraformBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "terraform")
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	if p, err := exec.LookPath("terraform"); err == nil {
		return p
	}
	t.Fatal("terraform not found in $(go env GOPATH)/bin or PATH: install it with " +
		"`GOFLAGS=-buildvcs=false go install github.com/hashicorp/terraform@v1.5.7` (see docs/terraform.md)")
	return ""
}

func TestTerraformFmt(t *testing.T) {
	tf := terraformBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	version, _ := exec.CommandContext(ctx, tf, "version").Output()
	t.Logf("%s: %s", tf, strings.SplitN(string(version), "\n", 2)[0])
	cmd := exec.CommandContext(ctx, tf, "fmt", "-check", "-recursive", "-diff", "-no-color")
	cmd.Dir = exoscaleDir(t)
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("terraform fmt -check -recursive in %s: %v\n%s\nfix with: terraform fmt -recursive %s", cmd.Dir, err, out, cmd.Dir)
	}
}

func TestModuleFiles(t *testing.T) {
	m := loadExoscale(t)
	want := []string{"iam.tf", "main.tf", "network.tf", "outputs.tf", "variables.tf", "versions.tf"}
	if !slices.Equal(m.Files, want) {
		t.Errorf("module files = %v, want %v", m.Files, want)
	}
	for _, name := range []string{"member.yaml.tftpl", "monitoring.yaml.tftpl", "common-files.yaml.tftpl"} {
		if _, err := os.Stat(filepath.Join(m.Dir, "cloud-init", name)); err != nil {
			t.Errorf("cloud-init template: %v", err)
		}
	}
}

func TestVariables(t *testing.T) {
	m := loadExoscale(t)
	tests := []struct {
		name      string
		typ       cty.Type
		sensitive bool
		// def is the wanted default; cty.NilVal means required.
		def cty.Value
	}{
		{"exoscale_key", cty.String, true, cty.NilVal},
		{"exoscale_secret", cty.String, true, cty.NilVal},
		{"zone", cty.String, false, cty.StringVal("ch-gva-2")},
		{"pool_min_size", cty.Number, false, cty.NumberIntVal(1)},
		{"pool_max_size", cty.Number, false, cty.NumberIntVal(5)},
		{"pool_initial_size", cty.Number, false, cty.NumberIntVal(2)},
		{"member_instance_type", cty.String, false, cty.StringVal("standard.tiny")},
		{"monitoring_instance_type", cty.String, false, cty.StringVal("standard.small")},
		{"template_name", cty.String, false, cty.StringVal("Linux Ubuntu 24.04 LTS 64-bit")},
		{"tidepool_version", cty.String, false, cty.NilVal},
		{"tidepool_release_url", cty.String, false, cty.NilVal},
		{"tidepool_sha256", cty.String, false, cty.NilVal},
		{"operator_cidr", cty.String, false, cty.NilVal},
		{"app_ingress_cidrs", cty.List(cty.String), false, cty.ListVal([]cty.Value{cty.StringVal("0.0.0.0/0")})},
		{"ssh_key_name", cty.String, false, cty.NullVal(cty.String)},
		{"create_agent_api_key", cty.Bool, false, cty.True},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := m.Variables[tt.name]
			if v == nil {
				t.Fatalf("variable %s is not declared", tt.name)
			}
			if !v.Type.Equals(tt.typ) {
				t.Errorf("type = %s, want %s", v.Type.FriendlyName(), tt.typ.FriendlyName())
			}
			if v.Sensitive != tt.sensitive {
				t.Errorf("sensitive = %v, want %v", v.Sensitive, tt.sensitive)
			}
			switch {
			case tt.def == cty.NilVal && v.Default != cty.NilVal:
				t.Errorf("default = %#v, want none (required)", v.Default)
			case tt.def != cty.NilVal && (v.Default == cty.NilVal || !v.Default.RawEquals(tt.def)):
				t.Errorf("default = %#v, want %#v", v.Default, tt.def)
			}
		})
	}
	for name, v := range m.Variables {
		if v.Description == "" {
			t.Errorf("variable %s has no description", name)
		}
		if v.Type == cty.DynamicPseudoType {
			t.Errorf("variable %s has no type", name)
		}
	}
}

func TestVariableValidation(t *testing.T) {
	m := loadExoscale(t)
	s := cty.StringVal
	tests := []struct {
		name  string
		value cty.Value
		ok    bool
	}{
		{"exoscale_key", s("EXO0123456789abcdef01234567"), true},
		{"exoscale_key", s("0123456789abcdef"), false},
		{"exoscale_key", s("EXO012 3456"), false},
		{"exoscale_secret", s("abcdefghijklmnop_-+/=0123456789"), true},
		{"exoscale_secret", s("short"), false},
		{"exoscale_secret", s("abcdefghijklmnop'; rm -rf /"), false}, // would break out of the env file quotes
		{"zone", s("de-fra-1"), true},
		{"zone", s("Frankfurt"), false},
		{"name_prefix", s("tidepool-test"), true},
		{"name_prefix", s("Tidepool"), false},
		{"pool_min_size", cty.NumberIntVal(0), false},
		{"pool_min_size", cty.NumberFloatVal(1.5), false},
		{"pool_max_size", cty.NumberIntVal(51), false},
		{"member_instance_type", s("standard.medium"), true},
		{"member_instance_type", s("medium"), false},
		{"member_disk_size", cty.NumberIntVal(9), false},
		{"tidepool_version", s("v0.1.0"), true},
		{"tidepool_version", s("0.1.0-rc.1"), true},
		{"tidepool_version", s("latest"), false},
		{"tidepool_release_url", s(releaseURL), true},
		{"tidepool_release_url", s("http://example.com/tidepool"), false},
		{"tidepool_release_url", s("https://example.com/x'$(id)'"), false}, // shell injection into the download script
		{"tidepool_release_url", s("https://example.com/a b"), false},
		{"tidepool_sha256", s(releaseSHA256), true},
		{"tidepool_sha256", s(strings.ToUpper(releaseSHA256)), false},
		{"tidepool_sha256", s("abc"), false},
		{"operator_cidr", s("203.0.113.7/32"), true},
		{"operator_cidr", s("2001:db8::/64"), true},
		{"operator_cidr", s("0.0.0.0/0"), false},
		{"operator_cidr", s("203.0.113.7"), false},
		{"app_ingress_cidrs", cty.ListVal([]cty.Value{s("0.0.0.0/0"), s("::/0")}), true},
		{"app_ingress_cidrs", cty.ListValEmpty(cty.String), false},
		{"app_ingress_cidrs", cty.ListVal([]cty.Value{s("everyone")}), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s=%s", tt.name, tt.value.GoString()), func(t *testing.T) {
			err := m.CheckVariable(tt.name, tt.value)
			if tt.ok && err != nil {
				t.Errorf("rejected: %v", err)
			}
			if !tt.ok && err == nil {
				t.Errorf("accepted, want a validation error")
			}
		})
	}
}

func TestProvidersAndVersions(t *testing.T) {
	m := loadExoscale(t)
	p := m.Providers["exoscale"]
	if p == nil {
		t.Fatal("no provider \"exoscale\" block")
	}
	for attr, want := range map[string]string{"key": "var.exoscale_key", "secret": "var.exoscale_secret"} {
		a := p.Body.Attributes[attr]
		if a == nil {
			t.Errorf("provider exoscale: no %s", attr)
			continue
		}
		if got := traversalString(a.Expr); got != want {
			t.Errorf("provider exoscale %s = %s, want %s", attr, got, want)
		}
	}
	if len(m.Terraform) != 1 {
		t.Fatalf("%d terraform blocks, want 1", len(m.Terraform))
	}
	rp, ok := Attr(m.Terraform[0].Body, "required_providers", "exoscale")
	if !ok {
		t.Fatal("terraform.required_providers has no exoscale")
	}
	v, diags := rp.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := v.GetAttr("source").AsString(); got != "exoscale/exoscale" {
		t.Errorf("exoscale provider source = %q, want exoscale/exoscale", got)
	}
}

// traversalString renders a plain reference such as var.x or a.b.c.
func traversalString(expr hcl.Expression) string {
	tr, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() {
		return "<not a reference>"
	}
	parts := []string{tr.RootName()}
	for _, step := range tr[1:] {
		switch s := step.(type) {
		case hcl.TraverseAttr:
			parts = append(parts, s.Name)
		case hcl.TraverseIndex:
			parts[len(parts)-1] += fmt.Sprintf("[%s]", s.Key.GoString())
		}
	}
	return strings.Join(parts, ".")
}

func TestInstancePoolLeavesSizeToAutoscaler(t *testing.T) {
	e := evaluate(t, map[string]cty.Value{"pool_initial_size": cty.NumberIntVal(3), "pool_max_size": cty.NumberIntVal(7)})
	pool := e.Module.Resources["exoscale_instance_pool.members"]
	if pool == nil {
		t.Fatal("no exoscale_instance_pool.members")
	}
	a, ok := Attr(pool.Body, "lifecycle", "ignore_changes")
	if !ok {
		t.Fatal("instance pool has no lifecycle.ignore_changes")
	}
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		t.Fatalf("ignore_changes is not a list: %v", diags)
	}
	var ignored []string
	for _, x := range exprs {
		ignored = append(ignored, traversalString(x))
	}
	if !slices.Contains(ignored, "size") {
		t.Errorf("ignore_changes = %v, want it to contain size", ignored)
	}
	if got := attrValue(t, e, "exoscale_instance_pool.members", "size"); !got.RawEquals(cty.NumberIntVal(3)) {
		t.Errorf("size = %#v, want pool_initial_size 3", got)
	}
	if got := traversalString(mustAttr(t, pool.Body, "security_group_ids").Expr.(*hclsyntax.TupleConsExpr).Exprs[0]); got != "exoscale_security_group.members.id" {
		t.Errorf("security_group_ids[0] = %s, want exoscale_security_group.members.id", got)
	}
	// The size precondition rejects an initial size outside min..max.
	for _, tt := range []struct {
		min, initial, max int64
		ok                bool
	}{{1, 2, 5, true}, {2, 2, 2, true}, {3, 2, 5, false}, {1, 6, 5, false}} {
		e := evaluate(t, map[string]cty.Value{
			"pool_min_size": cty.NumberIntVal(tt.min), "pool_initial_size": cty.NumberIntVal(tt.initial), "pool_max_size": cty.NumberIntVal(tt.max),
		})
		cond := mustAttr(t, pool.Body, "lifecycle", "precondition", "condition")
		v, err := e.Value(cond.Expr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v.True() != tt.ok {
			t.Errorf("precondition(min %d, initial %d, max %d) = %v, want %v", tt.min, tt.initial, tt.max, v.True(), tt.ok)
		}
	}
}

func mustAttr(t *testing.T, body *hclsyntax.Body, path ...string) *hclsyntax.Attribute {
	t.Helper()
	a, ok := Attr(body, path...)
	if !ok {
		t.Fatalf("no attribute %v", path)
	}
	return a
}

func TestNLBService(t *testing.T) {
	e := evaluate(t, nil)
	const svc = "exoscale_nlb_service.app"
	tests := []struct {
		path []string
		want cty.Value
	}{
		{[]string{"port"}, cty.NumberIntVal(80)},
		{[]string{"target_port"}, cty.NumberIntVal(8080)},
		{[]string{"protocol"}, cty.StringVal("tcp")},
		{[]string{"instance_pool_id"}, cty.StringVal(poolID)},
		{[]string{"nlb_id"}, cty.StringVal(nlbID)},
		{[]string{"healthcheck", "mode"}, cty.StringVal("http")},
		{[]string{"healthcheck", "uri"}, cty.StringVal("/health")},
		{[]string{"healthcheck", "port"}, cty.NumberIntVal(8080)},
	}
	for _, tt := range tests {
		if got := attrValue(t, e, svc, tt.path...); !got.RawEquals(tt.want) {
			t.Errorf("%s %s = %#v, want %#v", svc, strings.Join(tt.path, "."), got, tt.want)
		}
	}
	// The check must fail a drained member well before the autoscaler gives
	// up waiting for the NLB (autoscaler.DefaultDrainTimeout).
	var interval, retries, timeout int64
	for name, dst := range map[string]*int64{"interval": &interval, "retries": &retries, "timeout": &timeout} {
		v := attrValue(t, e, svc, "healthcheck", name)
		n, _ := v.AsBigFloat().Int64()
		*dst = n
	}
	if timeout > interval {
		t.Errorf("health check timeout %d s > interval %d s", timeout, interval)
	}
	if out := time.Duration(interval*(retries+1)) * time.Second; out >= autoscaler.DefaultDrainTimeout/2 {
		t.Errorf("a drained member leaves rotation after up to %s, want well under the autoscaler's drain timeout %s", out, autoscaler.DefaultDrainTimeout)
	}
}

// secRule is one security group rule, in words.
type secRule struct {
	group, port, source string
}

func (r secRule) String() string { return r.group + " " + r.port + " from " + r.source }

// expandRules evaluates every exoscale_security_group_rule, expanding
// for_each, and names groups instead of IDs.
func expandRules(t *testing.T, e *Evaluation) []string {
	t.Helper()
	groups := map[string]string{membersSGID: "members", monitoringSG: "monitoring"}
	var rules []string
	for key, b := range e.Module.Resources {
		if !strings.HasPrefix(key, "exoscale_security_group_rule.") {
			continue
		}
		instances := []map[string]cty.Value{nil}
		if fe, ok := b.Body.Attributes["for_each"]; ok {
			v, err := e.Value(fe.Expr, nil)
			if err != nil {
				t.Fatalf("%s for_each: %v", key, err)
			}
			instances = nil
			for it := v.ElementIterator(); it.Next(); {
				k, val := it.Element()
				if v.Type().IsSetType() {
					k = val
				}
				instances = append(instances, map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": val})})
			}
		}
		for _, each := range instances {
			get := func(name string) string {
				a, ok := b.Body.Attributes[name]
				if !ok {
					return ""
				}
				v, err := e.Value(a.Expr, each)
				if err != nil {
					t.Fatalf("%s %s: %v", key, name, err)
				}
				if v.Type() == cty.Number {
					return v.AsBigFloat().String()
				}
				return v.AsString()
			}
			if get("type") != "INGRESS" || get("protocol") != "TCP" {
				t.Errorf("%s: type %s protocol %s, want INGRESS TCP", key, get("type"), get("protocol"))
			}
			port := get("start_port")
			if end := get("end_port"); end != port {
				port += "-" + end
			}
			var sources []string
			if c := get("cidr"); c != "" {
				sources = append(sources, "cidr "+c)
			}
			if g := get("user_security_group_id"); g != "" {
				sources = append(sources, "group "+groups[g])
			}
			if p := get("public_security_group"); p != "" {
				sources = append(sources, "public group "+p)
			}
			if len(sources) != 1 {
				t.Errorf("%s: sources %v, want exactly one", key, sources)
			}
			rules = append(rules, secRule{groups[get("security_group_id")], port, strings.Join(sources, "+")}.String())
		}
	}
	slices.Sort(rules)
	return rules
}

func TestSecurityGroupRulesAllowExactlyWhatIsNeeded(t *testing.T) {
	base := []string{
		"members 8080 from cidr 0.0.0.0/0",
		"members 8080 from group monitoring",
		"members 8080 from public group public-nlb-healthcheck-sources",
		"members 9100 from group monitoring",
		"monitoring 3000 from cidr " + operatorCIDR,
		"monitoring 9090 from cidr " + operatorCIDR,
	}
	tests := []struct {
		name      string
		overrides map[string]cty.Value
		want      []string
	}{
		{"defaults", nil, base},
		{"with SSH key", map[string]cty.Value{"ssh_key_name": cty.StringVal("my-key")},
			append(slices.Clone(base), "members 22 from cidr "+operatorCIDR, "monitoring 22 from cidr "+operatorCIDR)},
		{"narrowed app clients", map[string]cty.Value{"app_ingress_cidrs": cty.ListVal([]cty.Value{cty.StringVal("192.0.2.0/24"), cty.StringVal("::/0")})},
			[]string{
				"members 8080 from cidr ::/0",
				"members 8080 from cidr 192.0.2.0/24",
				"members 8080 from group monitoring",
				"members 8080 from public group public-nlb-healthcheck-sources",
				"members 9100 from group monitoring",
				"monitoring 3000 from cidr " + operatorCIDR,
				"monitoring 9090 from cidr " + operatorCIDR,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := expandRules(t, evaluate(t, tt.overrides))
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("rules:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
	// Instances sit in the right groups.
	e := evaluate(t, nil)
	mon := e.Module.Resources["exoscale_compute_instance.monitoring"]
	if got := traversalString(mustAttr(t, mon.Body, "security_group_ids").Expr.(*hclsyntax.TupleConsExpr).Exprs[0]); got != "exoscale_security_group.monitoring.id" {
		t.Errorf("monitoring security_group_ids[0] = %s", got)
	}
}

// kebab turns a Go method name into an Exoscale operation ID
// (GetLoadBalancerService -> get-load-balancer-service).
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestAgentRoleAllowsExactlyTheAgentsCalls(t *testing.T) {
	// The Exoscale calls the agents make are the methods of their
	// consumer-side client interfaces.
	wantSet := map[string]bool{}
	for _, iface := range []reflect.Type{
		reflect.TypeFor[discover.Client](),
		reflect.TypeFor[autoscaler.Cloud](),
	} {
		for i := range iface.NumMethod() {
			wantSet[kebab(iface.Method(i).Name)] = true
		}
	}
	var want []string
	for op := range wantSet {
		want = append(want, op)
	}
	slices.Sort(want)

	e := evaluate(t, nil)
	var got []string
	for it := e.Locals["agent_operations"].ElementIterator(); it.Next(); {
		_, v := it.Element()
		got = append(got, v.AsString())
	}
	if !slices.Equal(got, want) {
		t.Errorf("local.agent_operations = %v, want the agents' calls %v", got, want)
	}

	policy := attrValue(t, e, "exoscale_iam_role.agents", "policy")
	if s := policy.GetAttr("default_service_strategy").AsString(); s != "deny" {
		t.Errorf("default_service_strategy = %q, want deny", s)
	}
	services := policy.GetAttr("services")
	if n := services.LengthInt(); n != 1 {
		t.Errorf("policy has %d services, want only compute", n)
	}
	compute := services.GetAttr("compute")
	if typ := compute.GetAttr("type").AsString(); typ != "rules" {
		t.Errorf("compute type = %q, want rules", typ)
	}
	rules := compute.GetAttr("rules").AsValueSlice()
	if len(rules) != 1 {
		t.Fatalf("%d compute rules, want 1", len(rules))
	}
	if a := rules[0].GetAttr("action").AsString(); a != "allow" {
		t.Errorf("rule action = %q, want allow", a)
	}
	expr := rules[0].GetAttr("expression").AsString()
	m := regexp.MustCompile(`^operation in \[(.*)\]$`).FindStringSubmatch(expr)
	if m == nil {
		t.Fatalf("rule expression %q is not \"operation in [...]\"", expr)
	}
	var listed []string
	for _, q := range strings.Split(m[1], ", ") {
		listed = append(listed, strings.Trim(q, "'"))
	}
	if !slices.Equal(listed, want) {
		t.Errorf("rule allows %v, want %v", listed, want)
	}

	// Every operation is a real Exoscale API operation.
	ref := filepath.Join(repoRoot(t), "..", "shared", "reference", "exoscale-openapi-v2.yaml")
	spec, err := os.ReadFile(ref)
	if err != nil {
		t.Logf("cannot check operation IDs against the API reference: %v", err)
		return
	}
	for _, op := range want {
		if !regexp.MustCompile(`(?m)^\s*operationId: ` + regexp.QuoteMeta(op) + `\s*$`).Match(spec) {
			t.Errorf("operation %s is not in %s", op, ref)
		}
	}
}

func TestAgentCredentialsChoice(t *testing.T) {
	for _, tt := range []struct {
		create          bool
		key, secret     string
		wantRoleCount   string
		wantKeyResource bool
	}{
		{true, agentKey, agentSecret, "1", true},
		{false, operatorKey, operatorSecret, "0", false},
	} {
		t.Run(fmt.Sprintf("create_agent_api_key=%v", tt.create), func(t *testing.T) {
			e := evaluate(t, map[string]cty.Value{"create_agent_api_key": cty.BoolVal(tt.create)})
			key, _ := e.Locals["agent_key"].Unmark()
			secret, marks := e.Locals["agent_secret"].Unmark()
			if key.AsString() != tt.key || secret.AsString() != tt.secret {
				t.Errorf("agent credentials = %s/%s, want %s/%s", key.AsString(), secret.AsString(), tt.key, tt.secret)
			}
			if _, ok := marks[Sensitive]; !ok {
				t.Error("agent_secret is not sensitive")
			}
			for _, res := range []string{"exoscale_iam_role.agents", "exoscale_iam_api_key.agents"} {
				if got := attrValue(t, e, res, "count"); got.AsBigFloat().String() != tt.wantRoleCount {
					t.Errorf("%s count = %s, want %s", res, got.AsBigFloat().String(), tt.wantRoleCount)
				}
			}
		})
	}
}

func TestOutputs(t *testing.T) {
	e := evaluate(t, nil)
	public := map[string]string{
		"nlb_ip":         nlbIP,
		"app_url":        "http://" + nlbIP + "/",
		"grafana_url":    "http://" + monitoringIP + ":3000/",
		"prometheus_url": "http://" + monitoringIP + ":9090/",
	}
	for name, want := range public {
		o := e.Module.Outputs[name]
		if o == nil {
			t.Errorf("no output %s", name)
			continue
		}
		if o.Sensitive {
			t.Errorf("output %s is sensitive, want it printed", name)
		}
		v, err := e.Value(o.Value, nil)
		if err != nil {
			t.Fatalf("output %s: %v", name, err)
		}
		if v.ContainsMarked() {
			t.Errorf("output %s depends on sensitive values", name)
			v, _ = v.UnmarkDeep()
		}
		if got := v.AsString(); got != want {
			t.Errorf("output %s = %q, want %q", name, got, want)
		}
	}
	// Terraform refuses an output that carries sensitive values unless it
	// is marked sensitive; none may leak a secret in plain text.
	for name, o := range e.Module.Outputs {
		if o.Description == "" {
			t.Errorf("output %s has no description", name)
		}
		v, err := e.Value(o.Value, nil)
		if err != nil {
			t.Fatalf("output %s: %v", name, err)
		}
		if v.ContainsMarked() && !o.Sensitive {
			t.Errorf("output %s carries sensitive values but is not sensitive = true", name)
		}
		plain, _ := v.UnmarkDeep()
		if plain.Type() == cty.String && !o.Sensitive {
			for _, secret := range []string{operatorSecret, agentSecret, drainToken, grafanaPass, webhookToken} {
				if strings.Contains(plain.AsString(), secret) {
					t.Errorf("output %s shows a secret", name)
				}
			}
		}
	}
	if o := e.Module.Outputs["grafana_admin_password"]; o == nil || !o.Sensitive {
		t.Error("want a sensitive output grafana_admin_password")
	}
}

// credentialFindings reports lines of text that look like hard-coded
// credentials: Exoscale API keys, or secret-named settings with a literal
// value.
func credentialFindings(text string) []string {
	patterns := []*regexp.Regexp{
		regexp.MustCompile(`EXO[0-9A-Za-z]{16,}`),
		regexp.MustCompile(`(?i)(secret|password|passwd|token|api_?key)[A-Za-z_]*\s*[=:]\s*["']?[A-Za-z0-9_+/=-]{12,}["']?\s*(#.*)?$`),
	}
	var found []string
	for i, line := range strings.Split(text, "\n") {
		for _, p := range patterns {
			if p.MatchString(line) {
				found = append(found, fmt.Sprintf("line %d: %s", i+1, strings.TrimSpace(line)))
				break
			}
		}
	}
	return found
}

func TestCredentialScannerCatchesPlantedSecrets(t *testing.T) {
	tests := []struct {
		text string
		bad  bool
	}{
		{`key = "EXO1a2b3c4d5e6f7a8b9c0d1e2f"`, true},
		{`secret = "Wm9vYmFyYmF6cXV4MTIzNDU2Nzg5"`, true},
		{`EXOSCALE_SECRET='h3ll0s3cr3tv4lu3f0rt3st'`, true},
		{`GF_SECURITY_ADMIN_PASSWORD=correcthorsebattery`, true},
		{`secret = var.exoscale_secret`, false},
		{`EXOSCALE_SECRET='${agent_secret}'`, false},
		{`description = "Exoscale API key Terraform uses (EXO...)."`, false},
		{`tidepool_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"`, false},
	}
	for _, tt := range tests {
		if got := len(credentialFindings(tt.text)) > 0; got != tt.bad {
			t.Errorf("credentialFindings(%q) flagged = %v, want %v", tt.text, got, tt.bad)
		}
	}
}

func TestNoHardcodedCredentials(t *testing.T) {
	dir := exoscaleDir(t)
	paths := []string{filepath.Join(repoRoot(t), "docs", "terraform.md")}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".terraform") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, ".tfstate") || strings.Contains(p, ".tfstate.") || (strings.HasSuffix(p, ".tfvars") && !strings.HasSuffix(p, ".example")) {
			t.Errorf("%s: state and variable files must not be in the tree (they hold secrets)", p)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range credentialFindings(string(b)) {
			t.Errorf("%s: looks like a hard-coded credential: %s", p, f)
		}
	}
	// Credential-named arguments anywhere in the module must be references,
	// never literals.
	m := loadExoscale(t)
	var walk func(where string, body *hclsyntax.Body)
	walk = func(where string, body *hclsyntax.Body) {
		for name, a := range body.Attributes {
			switch name {
			case "key", "secret", "password", "token", "api_key", "api_secret":
				if len(a.Expr.Variables()) == 0 {
					t.Errorf("%s: %s is a literal, want a reference to a variable or resource", where, name)
				}
			}
		}
		for _, b := range body.Blocks {
			walk(where+"/"+b.Type, b.Body)
		}
	}
	for name, b := range m.Providers {
		walk("provider "+name, b.Body)
	}
	for name, b := range m.Resources {
		walk(name, b.Body)
	}
}
