package cloud_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/cloud"
	"tidepool/internal/cloud/apispec"
	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/provision"
)

// specOrSkip skips t when the OpenAPI spec is absent.
func specOrSkip(t *testing.T) {
	t.Helper()
	if _, err := apispec.Locate("."); errors.Is(err, apispec.ErrNotFound) {
		t.Skipf("Exoscale OpenAPI spec absent, conformance not checked: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
}

// TestSchemaConformance drives every endpoint the cloud serves with
// egoscale v3 through cloudtest (which checks each request and response
// against the spec), and checks that every operation references what
// Exoscale's own clients expect: the pool for pool operations, the instance
// for instance deletion, the load balancer for load balancer and service
// operations (egoscale v2 looks the new service up on it by name).
func TestSchemaConformance(t *testing.T) {
	specOrSkip(t)
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t)})
	c := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// do waits for the operation and checks its reference.
	do := func(what string, op *v3.Operation, err error, want v3.UUID) v3.UUID {
		t.Helper()
		must(what, err)
		if op.Reference == nil {
			t.Fatalf("%s: operation without a reference", what)
		}
		if want != "" && op.Reference.ID != want {
			t.Errorf("%s: operation references %s, want %s", what, op.Reference.ID, want)
		}
		_, err = provision.WaitOperation(ctx, c, op)
		must(what+": wait", err)
		return op.Reference.ID
	}

	zones, err := c.ListZones(ctx)
	must("list zones", err)
	var names []string
	for _, z := range zones.Zones {
		names = append(names, string(z.Name))
	}
	if !slices.Equal(names, cloud.Zones) {
		t.Errorf("zones = %v, want %v", names, cloud.Zones)
	}
	types, err := c.ListInstanceTypes(ctx)
	must("list instance types", err)
	it, err := c.GetInstanceType(ctx, types.InstanceTypes[0].ID)
	must("get instance type", err)
	tpls, err := c.ListTemplates(ctx, v3.ListTemplatesWithVisibility(v3.ListTemplatesVisibilityPublic))
	must("list templates", err)
	tpl, err := c.GetTemplate(ctx, tpls.Templates[0].ID)
	must("get template", err)

	op, err := c.CreateInstancePool(ctx, v3.CreateInstancePoolRequest{
		Name: "conformance", Size: 1, DiskSize: 10,
		InstanceType: &v3.InstanceType{ID: it.ID}, Template: &v3.Template{ID: tpl.ID},
	})
	poolID := do("create pool", op, err, "")
	if _, err := c.GetInstancePool(ctx, poolID); err != nil {
		t.Fatalf("the create operation's reference is not the pool: %v", err)
	}
	_, err = c.ListInstancePools(ctx)
	must("list pools", err)
	op, err = c.UpdateInstancePool(ctx, poolID, v3.UpdateInstancePoolRequest{Description: "conformance test"})
	do("update pool", op, err, poolID)
	op, err = c.ResetInstancePoolField(ctx, poolID, v3.ResetInstancePoolFieldFieldDescription)
	do("reset pool description", op, err, poolID)
	if p, err := c.GetInstancePool(ctx, poolID); err != nil || p.Description != "" {
		t.Errorf("pool after resetting its description: %+v, %v; want no description", p, err)
	}
	op, err = c.ScaleInstancePool(ctx, poolID, v3.ScaleInstancePoolRequest{Size: 3})
	do("scale pool", op, err, poolID)
	members, err := c.ListInstances(ctx, v3.ListInstancesWithManagerID(poolID))
	must("list instances", err)
	if len(members.Instances) != 3 {
		t.Fatalf("pool lists %d instances, want 3", len(members.Instances))
	}
	for _, m := range members.Instances {
		inst, err := c.GetInstance(ctx, m.ID)
		must("get instance", err)
		if inst.SecurebootEnabled == nil || inst.TpmEnabled == nil {
			t.Errorf("instance %s: secureboot-enabled %v, tpm-enabled %v, want both present", m.ID, inst.SecurebootEnabled, inst.TpmEnabled)
		}
	}
	op, err = c.EvictInstancePoolMembers(ctx, poolID, v3.EvictInstancePoolMembersRequest{Instances: []v3.UUID{members.Instances[2].ID}})
	do("evict", op, err, poolID)
	op, err = c.DeleteInstance(ctx, members.Instances[1].ID)
	do("delete instance", op, err, members.Instances[1].ID)

	op, err = c.CreateLoadBalancer(ctx, v3.CreateLoadBalancerRequest{Name: "conformance"})
	nlbID := do("create load balancer", op, err, "")
	if _, err := c.GetLoadBalancer(ctx, nlbID); err != nil {
		t.Fatalf("the create operation's reference is not the load balancer: %v", err)
	}
	_, err = c.ListLoadBalancers(ctx)
	must("list load balancers", err)
	op, err = c.UpdateLoadBalancer(ctx, nlbID, v3.UpdateLoadBalancerRequest{Description: "conformance test"})
	do("update load balancer", op, err, nlbID)
	op, err = c.ResetLoadBalancerField(ctx, nlbID, v3.ResetLoadBalancerFieldFieldDescription)
	do("reset load balancer description", op, err, nlbID)
	op, err = c.AddServiceToLoadBalancer(ctx, nlbID, v3.AddServiceToLoadBalancerRequest{
		Name: "web", Port: 8000, TargetPort: cloud.DefaultAppPort,
		Protocol:     v3.AddServiceToLoadBalancerRequestProtocolTCP,
		Strategy:     v3.AddServiceToLoadBalancerRequestStrategyRoundRobin,
		InstancePool: &v3.InstancePool{ID: poolID},
		Healthcheck:  &v3.LoadBalancerServiceHealthcheck{Mode: v3.LoadBalancerServiceHealthcheckModeTCP, Port: cloud.DefaultAppPort, Interval: 5, Timeout: 2, Retries: 1},
	})
	do("add service", op, err, nlbID)
	lb, err := c.GetLoadBalancer(ctx, nlbID)
	must("get load balancer", err)
	if len(lb.Services) != 1 || lb.Services[0].Name != "web" {
		t.Fatalf("load balancer services = %+v, want the one named web", lb.Services)
	}
	svcID := lb.Services[0].ID
	_, err = c.GetLoadBalancerService(ctx, nlbID, svcID)
	must("get service", err)
	op, err = c.UpdateLoadBalancerService(ctx, nlbID, svcID, v3.UpdateLoadBalancerServiceRequest{Description: "conformance test"})
	do("update service", op, err, nlbID)
	op, err = c.ResetLoadBalancerServiceField(ctx, nlbID, svcID, v3.ResetLoadBalancerServiceFieldFieldDescription)
	do("reset service description", op, err, nlbID)
	op, err = c.DeleteLoadBalancerService(ctx, nlbID, svcID)
	do("delete service", op, err, nlbID)
	op, err = c.DeleteLoadBalancer(ctx, nlbID)
	do("delete load balancer", op, err, nlbID)
	op, err = c.DeleteInstancePool(ctx, poolID)
	do("delete pool", op, err, poolID)
}

// TestZones checks that every zone's endpoint answers and that resources
// belong to the zone they were created in, as on Exoscale (the CLI lists
// every zone and would otherwise show each resource once per zone).
func TestZones(t *testing.T) {
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clients := map[string]*v3.Client{}
	for _, z := range cloud.Zones {
		ep, err := env.Client.GetZoneAPIEndpoint(ctx, v3.ZoneName(z))
		if err != nil {
			t.Fatalf("zone %s: %v", z, err)
		}
		clients[z] = env.Client.WithEndpoint(ep)
		if types, err := clients[z].ListInstanceTypes(ctx); err != nil || len(types.InstanceTypes) == 0 {
			t.Errorf("zone %s (%s): instance types %v, %v; want some", z, ep, types, err)
		}
	}
	if ep, _ := env.Client.GetZoneAPIEndpoint(ctx, v3.ZoneName(env.Zone)); string(ep) != env.Endpoint {
		t.Errorf("endpoint of the served zone %s = %s, want %s", env.Zone, ep, env.Endpoint)
	}

	fra := clients["de-fra-1"]
	op, err := fra.CreateLoadBalancer(ctx, v3.CreateLoadBalancerRequest{Name: "in-fra"})
	if err != nil {
		t.Fatal(err)
	}
	if op, err = provision.WaitOperation(ctx, fra, op); err != nil {
		t.Fatal(err)
	}
	id := op.Reference.ID
	list := func(c *v3.Client) []v3.UUID {
		t.Helper()
		l, err := c.ListLoadBalancers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []v3.UUID
		for _, lb := range l.LoadBalancers {
			ids = append(ids, lb.ID)
		}
		return ids
	}
	if got := list(fra); !slices.Equal(got, []v3.UUID{id}) {
		t.Errorf("de-fra-1 load balancers = %v, want [%s]", got, id)
	}
	if got := list(env.Client); len(got) != 0 {
		t.Errorf("%s load balancers = %v, want none (the one of de-fra-1 stays there)", env.Zone, got)
	}
	if _, err := env.Client.GetLoadBalancer(ctx, id); !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("get de-fra-1's load balancer in %s: err = %v, want not found", env.Zone, err)
	}
	if _, err := fra.GetOperation(ctx, op.ID); err != nil {
		t.Errorf("get operation in its zone: %v", err)
	}
	if _, err := env.Client.GetOperation(ctx, op.ID); !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("get de-fra-1's operation in %s: err = %v, want not found", env.Zone, err)
	}
	op, err = fra.DeleteLoadBalancer(ctx, id)
	if err == nil {
		_, err = provision.WaitOperation(ctx, fra, op)
	}
	if err != nil {
		t.Errorf("delete in de-fra-1: %v", err)
	}
}

// TestCoverageTable keeps the "Served" column of docs/cloud.md's API
// coverage table equal to the endpoints the cloud serves, and checks that
// every path it names exists in the spec.
func TestCoverageTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/cloud.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "## API coverage")
	if !ok {
		t.Fatal(`docs/cloud.md has no "## API coverage" section`)
	}
	var served []string
	var paths []string
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		var rowPaths []string
		for _, p := range strings.Split(cells[1], ",") {
			rowPaths = append(rowPaths, strings.Trim(strings.TrimSpace(p), "`"))
		}
		paths = append(paths, rowPaths...)
		for _, m := range strings.Split(cells[2], ",") {
			if m = strings.TrimSpace(m); m == "" {
				continue
			}
			if len(rowPaths) != 1 {
				t.Errorf("row %q: a served row names exactly one path", strings.TrimSpace(cells[1]))
			}
			served = append(served, m+" "+rowPaths[0])
		}
	}
	slices.Sort(served)
	if want := cloud.Routes(); !slices.Equal(served, want) {
		t.Errorf("docs/cloud.md serves\n%v\nbut the cloud serves\n%v", served, want)
	}

	path, err := apispec.Locate(".")
	if errors.Is(err, apispec.ErrNotFound) {
		t.Skipf("spec absent, paths not checked: %v", err)
	}
	spec, err := apispec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, op := range spec.Operations() {
		_, p, _ := strings.Cut(string(op), " ")
		known[p] = true
	}
	for _, p := range paths {
		if strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "/{") && !known[p] {
			t.Errorf("docs/cloud.md names %s, which the spec does not have", p)
		}
	}
}
