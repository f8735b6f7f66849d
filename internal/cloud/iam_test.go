package cloud_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/deploytest"
	"tidepool/internal/exoclient"
)

// agentsPolicy evaluates the policy of exoscale_iam_role.agents in
// deploy/terraform/exoscale/iam.tf, as Terraform would send it.
func agentsPolicy(t *testing.T) *v3.IAMPolicy {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "terraform", "exoscale")
	m, err := deploytest.LoadModule(dir)
	if err != nil {
		t.Fatal(err)
	}
	ops, diags := m.Locals["agent_operations"].Value(&hcl.EvalContext{Functions: deploytest.Functions()})
	if diags.HasErrors() {
		t.Fatalf("local.agent_operations: %v", diags)
	}
	role := m.Resources["exoscale_iam_role.agents"]
	if role == nil {
		t.Fatal("iam.tf has no exoscale_iam_role.agents")
	}
	attr, ok := deploytest.Attr(role.Body, "policy")
	if !ok {
		t.Fatal("exoscale_iam_role.agents has no policy")
	}
	val, diags := attr.Expr.Value(&hcl.EvalContext{
		Variables: map[string]cty.Value{"local": cty.ObjectVal(map[string]cty.Value{"agent_operations": ops})},
		Functions: deploytest.Functions(),
	})
	if diags.HasErrors() {
		t.Fatalf("policy: %v", diags)
	}
	p := &v3.IAMPolicy{
		DefaultServiceStrategy: v3.IAMPolicyDefaultServiceStrategy(val.GetAttr("default_service_strategy").AsString()),
		Services:               map[string]v3.IAMServicePolicy{},
	}
	for name, svc := range val.GetAttr("services").AsValueMap() {
		sp := v3.IAMServicePolicy{Type: v3.IAMServicePolicyType(svc.GetAttr("type").AsString())}
		for it := svc.GetAttr("rules").ElementIterator(); it.Next(); {
			_, rule := it.Element()
			sp.Rules = append(sp.Rules, v3.IAMServicePolicyRule{
				Action:     v3.IAMServicePolicyRuleAction(rule.GetAttr("action").AsString()),
				Expression: rule.GetAttr("expression").AsString(),
			})
		}
		p.Services[name] = sp
	}
	return p
}

// TestIAMAgentsKey creates, with the root key, the role and API key that
// deploy/terraform/exoscale/iam.tf gives the agents (its policy evaluated
// from the file), and checks that the key signs requests and its policy is
// enforced: it lists the pool and its members, scales the pool and evicts a
// member, but gets 403 on deleting the pool and on everything else.
func TestIAMAgentsKey(t *testing.T) {
	env := cloudtest.Start(t, cloudtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	poolID := env.CreatePool(t, 1)
	root := env.Client

	op, err := root.CreateIAMRole(ctx, v3.CreateIAMRoleRequest{Name: "tidepool-agents", Policy: agentsPolicy(t)})
	if err != nil {
		t.Fatalf("CreateIAMRole: %v", err)
	}
	if op, err = root.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatalf("wait create-iam-role: %v", err)
	}
	roleID := op.Reference.ID
	created, err := root.CreateAPIKey(ctx, v3.CreateAPIKeyRequest{Name: "tidepool-agents", RoleID: roleID})
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	if created.Key == "" || created.Secret == "" || created.RoleID != roleID {
		t.Fatalf("CreateAPIKey = %+v, want a key and secret for role %s", created, roleID)
	}
	agent, err := exoclient.New(exoclient.Config{Key: created.Key, Secret: created.Secret, Endpoint: env.Endpoint, UserAgent: "iam-test"})
	if err != nil {
		t.Fatal(err)
	}

	// Allowed: what tidepool discover and tidepool autoscaler call.
	if _, err := agent.ListInstancePools(ctx); err != nil {
		t.Errorf("list-instance-pools: %v", err)
	}
	if _, err := agent.ListInstances(ctx, v3.ListInstancesWithManagerID(poolID), v3.ListInstancesWithManagerType("instance-pool")); err != nil {
		t.Errorf("list-instances: %v", err)
	}
	sop, err := agent.ScaleInstancePool(ctx, poolID, v3.ScaleInstancePoolRequest{Size: 2})
	if err != nil {
		t.Fatalf("scale-instance-pool: %v", err)
	}
	if _, err := agent.Wait(ctx, sop, v3.OperationStateSuccess); err != nil { // get-operation
		t.Fatalf("wait scale: %v", err)
	}
	pool, err := agent.GetInstancePool(ctx, poolID)
	if err != nil {
		t.Fatalf("get-instance-pool: %v", err)
	}
	if pool.Size != 2 || len(pool.Instances) != 2 {
		t.Fatalf("pool after scale: size %d, %d instances; want 2 and 2", pool.Size, len(pool.Instances))
	}
	victim := pool.Instances[1].ID
	// The autoscaler's draining mark: a label on the member it drains.
	uop, err := agent.UpdateInstance(ctx, victim, v3.UpdateInstanceRequest{Labels: v3.Labels{"tidepool-draining": "1"}})
	if err != nil {
		t.Fatalf("update-instance: %v", err)
	}
	if _, err := agent.Wait(ctx, uop, v3.OperationStateSuccess); err != nil {
		t.Fatalf("wait update-instance: %v", err)
	}
	if inst, err := agent.GetInstance(ctx, victim); err != nil {
		t.Errorf("get-instance: %v", err)
	} else if inst.Labels["tidepool-draining"] != "1" {
		t.Errorf("labels after update-instance: %v, want tidepool-draining=1", inst.Labels)
	}
	eop, err := agent.EvictInstancePoolMembers(ctx, poolID, v3.EvictInstancePoolMembersRequest{Instances: []v3.UUID{victim}})
	if err != nil {
		t.Fatalf("evict-instance-pool-members: %v", err)
	}
	if _, err := agent.Wait(ctx, eop, v3.OperationStateSuccess); err != nil {
		t.Fatalf("wait evict: %v", err)
	}

	// Denied: everything else, deleting the pool first.
	denied := []struct {
		op   string
		call func() error
	}{
		{"delete-instance-pool", func() error { _, err := agent.DeleteInstancePool(ctx, poolID); return err }},
		{"update-instance-pool", func() error {
			_, err := agent.UpdateInstancePool(ctx, poolID, v3.UpdateInstancePoolRequest{Description: "x"})
			return err
		}},
		{"delete-instance", func() error { _, err := agent.DeleteInstance(ctx, pool.Instances[0].ID); return err }},
		{"list-load-balancers", func() error { _, err := agent.ListLoadBalancers(ctx); return err }},
		{"create-security-group", func() error {
			_, err := agent.CreateSecurityGroup(ctx, v3.CreateSecurityGroupRequest{Name: "x"})
			return err
		}},
		{"list-iam-roles (service iam, default deny)", func() error { _, err := agent.ListIAMRoles(ctx); return err }},
		{"create-api-key", func() error {
			_, err := agent.CreateAPIKey(ctx, v3.CreateAPIKeyRequest{Name: "escalate", RoleID: roleID})
			return err
		}},
	}
	for _, d := range denied {
		if err := d.call(); !errors.Is(err, v3.ErrForbidden) {
			t.Errorf("%s with the agents' key: err = %v, want 403 Forbidden", d.op, err)
		}
	}
	if p, err := root.GetInstancePool(ctx, poolID); err != nil || p.Size != 1 {
		t.Errorf("pool after the denied delete: %+v, %v; want it still there at size 1", p, err)
	}

	// Deleting the key revokes it.
	dop, err := root.DeleteAPIKey(ctx, created.Key)
	if err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	if _, err := root.Wait(ctx, dop, v3.OperationStateSuccess); err != nil {
		t.Fatalf("wait delete-api-key: %v", err)
	}
	if _, err := agent.ListInstancePools(ctx); !errors.Is(err, v3.ErrForbidden) {
		t.Errorf("list-instance-pools with a deleted key: err = %v, want 403", err)
	}
}
