package cloud_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	egoscale "github.com/exoscale/egoscale/v2"
	exoapi "github.com/exoscale/egoscale/v2/api"
	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"

	"tidepool/internal/cloud/cloudtest"
)

// The Exoscale CLI (github.com/exoscale/cli) cannot be fetched here (the Go
// module proxy refuses it), so TestExoCLISequences replays, call by call,
// what its commands do: each step names the command and the CLI source file
// it follows. The CLI builds an egoscale v3 client on the account endpoint
// (EXOSCALE_API_ENDPOINT) and switches zone with GetZoneAPIEndpoint, and an
// egoscale v2 client that always calls https://api-ZONE.exoscale.com (so
// through the HTTPS front here); commands still on v2 (instance-pool
// scale, evict, delete, nlb create, delete, service add, show, security-group
// show) use the latter. Every field the CLI dereferences is dereferenced
// here too, so a missing one panics the test as it would panic the CLI.

// cliWait is egoscale v3's Client.Wait (an operation that is not pending is
// returned as it is; otherwise GET /operation/{id} until it is not), polling
// every 50 ms instead of every 3 s.
func cliWait(ctx context.Context, t *testing.T, c *v3.Client, what string, op *v3.Operation, err error) *v3.Operation {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for op.State == v3.OperationStatePending {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: wait: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if op, err = c.GetOperation(ctx, op.ID); err != nil {
			t.Fatalf("%s: GetOperation: %v", what, err)
		}
	}
	if op.State != v3.OperationStateSuccess {
		t.Fatalf("%s: operation %s ended %s (%s: %s)", what, op.ID, op.State, op.Reason, op.Message)
	}
	return op
}

func TestExoCLISequences(t *testing.T) {
	env := cloudtest.Start(t, cloudtest.Options{})
	addr, caFile := startFront(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	zone := env.Zone

	// cmd/cmd.go buildClient: v3 on the account endpoint, v2 on Exoscale's.
	root, err := v3.NewClient(credentials.NewStaticCredentials(env.Key, env.Secret))
	check(t, "v3.NewClient", err)
	root = root.WithEndpoint(v3.Endpoint(env.Endpoint))
	v2c := newV2Client(t, env.Key, env.Secret, exoapi.EndpointURL, frontTransport(t, addr, caFile))
	v2ctx := func(zone string) context.Context {
		return exoapi.WithEndpoint(ctx, exoapi.NewReqEndpoint("", zone))
	}
	// SwitchClientZoneV3.
	switchZone := func(z v3.ZoneName) *v3.Client {
		t.Helper()
		ep, err := root.GetZoneAPIEndpoint(ctx, z)
		check(t, "GetZoneAPIEndpoint "+string(z), err)
		return root.WithEndpoint(ep)
	}
	c := switchZone(v3.ZoneName(zone))
	// utils.AllZonesV3.
	allZones := func() []v3.ZoneName {
		t.Helper()
		zs := must[*v3.ListZonesResponse](t, "ListZones")(root.ListZones(ctx))
		var out []v3.ZoneName
		for _, z := range zs.Zones {
			out = append(out, z.Name)
		}
		return out
	}

	// security_group_show.go (v2): the group, its rules (a user group
	// source is read by ID), and the instances of every zone in it.
	sgShow := func(nameOrID string) *egoscale.SecurityGroup {
		t.Helper()
		sg := must[*egoscale.SecurityGroup](t, "sg show: FindSecurityGroup")(v2c.FindSecurityGroup(v2ctx(zone), zone, nameOrID))
		_, _, _ = *sg.ID, *sg.Name, sg.Description
		for _, r := range sg.Rules {
			_, _, _ = *r.ID, *r.Protocol, *r.FlowDirection
			if r.SecurityGroupID != nil {
				g := must[*egoscale.SecurityGroup](t, "sg show: GetSecurityGroup")(v2c.GetSecurityGroup(v2ctx(zone), zone, *r.SecurityGroupID))
				_ = *g.Name
			}
		}
		for _, z := range []string{"at-vie-1", "at-vie-2", "bg-sof-1", "ch-dk-2", "ch-gva-2", "de-fra-1", "de-muc-1", "hr-zag-1"} {
			list, err := v2c.ListInstances(v2ctx(z), z)
			if err != nil && !errors.Is(err, exoapi.ErrNotFound) {
				t.Fatalf("sg show: ListInstances %s: %v", z, err)
			}
			for _, i := range list {
				if i.SecurityGroupIDs != nil && slices.Contains(*i.SecurityGroupIDs, *sg.ID) {
					_ = i.PublicIPAddress.String()
				}
			}
		}
		return sg
	}

	// exo compute security-group create web (security_group_create.go).
	op := cliWait(ctx, t, c, "sg create", must[*v3.Operation](t, "CreateSecurityGroup")(c.CreateSecurityGroup(ctx, v3.CreateSecurityGroupRequest{Name: "web", Description: "front"})), nil)
	sgShow(op.Reference.ID.String())

	// exo compute security-group rule add web ... (security_group_rule_add.go):
	// by network, by user group, by public group, and icmp with its defaults.
	ruleAdd := func(req v3.AddRuleToSecurityGroupRequest) {
		t.Helper()
		sgs := must[*v3.ListSecurityGroupsResponse](t, "ListSecurityGroups")(c.ListSecurityGroups(ctx))
		sg := must[v3.SecurityGroup](t, "FindSecurityGroup web")(sgs.FindSecurityGroup("web"))
		op, err := c.AddRuleToSecurityGroup(ctx, sg.ID, req)
		cliWait(ctx, t, c, "rule add "+req.Description, op, err)
		sgShow(sg.ID.String())
	}
	_, anywhere, _ := net.ParseCIDR("0.0.0.0/0")
	ruleAdd(v3.AddRuleToSecurityGroupRequest{Description: "http", FlowDirection: "ingress", Protocol: "tcp", Network: anywhere.String(), StartPort: 8080, EndPort: 8080})
	web := must[*v3.SecurityGroup](t, "GetSecurityGroup")(c.GetSecurityGroup(ctx, op.Reference.ID))
	ruleAdd(v3.AddRuleToSecurityGroupRequest{Description: "self", FlowDirection: "ingress", Protocol: "tcp", SecurityGroup: &v3.SecurityGroupResource{ID: web.ID}, StartPort: 9100, EndPort: 9100})
	ruleAdd(v3.AddRuleToSecurityGroupRequest{Description: "nlb", FlowDirection: "ingress", Protocol: "tcp",
		SecurityGroup: &v3.SecurityGroupResource{Visibility: v3.SecurityGroupResourceVisibilityPublic, Name: "public-nlb-healthcheck-sources"}, StartPort: 8080, EndPort: 8080})
	code, typ := int64(0), int64(0)
	ruleAdd(v3.AddRuleToSecurityGroupRequest{Description: "ping", FlowDirection: "ingress", Protocol: "icmp", Network: anywhere.String(), ICMP: &v3.AddRuleToSecurityGroupRequestICMP{Code: &code, Type: &typ}})

	// exo compute security-group list [--visibility public] (security_group_list.go).
	sgs := must[*v3.ListSecurityGroupsResponse](t, "sg list")(c.ListSecurityGroups(ctx))
	if g, err := sgs.FindSecurityGroup("web"); err != nil || len(g.Rules) != 4 {
		t.Errorf("sg list: web = %+v, %v; want it with its 4 rules (rule delete reads them from the list)", g, err)
	}
	must[*v3.ListSecurityGroupsResponse](t, "sg list --visibility public")(c.ListSecurityGroups(ctx, v3.ListSecurityGroupsWithVisibility("public")))

	// exo compute instance-pool create pool1 --instance-type standard.tiny
	// --security-group web (instance_pool_create.go): the whole instance
	// type as listed, an empty ssh-key, ipv6 false, disk 50.
	its := must[*v3.ListInstanceTypesResponse](t, "ListInstanceTypes")(c.ListInstanceTypes(ctx))
	var tiny *v3.InstanceType
	for i, it := range its.InstanceTypes {
		if it.Family == "standard" && it.Size == "tiny" {
			tiny = &its.InstanceTypes[i]
		}
	}
	if tiny == nil {
		t.Fatal("no standard.tiny in ListInstanceTypes")
	}
	tpls := must[*v3.ListTemplatesResponse](t, "ListTemplates")(c.ListTemplates(ctx, v3.ListTemplatesWithVisibility("public")))
	tpl := must[v3.Template](t, "FindTemplate")(tpls.FindTemplate("Linux Ubuntu 24.04 LTS 64-bit"))
	ipv6 := false
	op, err = c.CreateInstancePool(ctx, v3.CreateInstancePoolRequest{
		Name: "pool1", Size: 1, DiskSize: 50, Ipv6Enabled: &ipv6, SSHKey: &v3.SSHKey{},
		InstanceType: tiny, Template: &v3.Template{ID: tpl.ID}, SecurityGroups: []v3.SecurityGroup{{ID: web.ID}},
	})
	op = cliWait(ctx, t, c, "instance-pool create", op, err)
	poolID := op.Reference.ID

	// exo compute instance-pool show (instance_pool_show.go, v3).
	poolShow := func(nameOrID string) v3.InstancePool {
		t.Helper()
		pools := must[*v3.ListInstancePoolsResponse](t, "ListInstancePools")(c.ListInstancePools(ctx))
		p := must[v3.InstancePool](t, "FindInstancePool "+nameOrID)(pools.FindInstancePool(nameOrID))
		for _, i := range p.Instances {
			_ = must[*v3.Instance](t, "pool show: GetInstance")(c.GetInstance(ctx, i.ID)).Name
		}
		must[*v3.InstanceType](t, "pool show: GetInstanceType")(c.GetInstanceType(ctx, p.InstanceType.ID))
		for _, g := range p.SecurityGroups {
			must[*v3.SecurityGroup](t, "pool show: GetSecurityGroup")(c.GetSecurityGroup(ctx, g.ID))
		}
		must[*v3.Template](t, "pool show: GetTemplate")(c.GetTemplate(ctx, p.Template.ID))
		return p
	}
	if p := poolShow(poolID.String()); p.Name != "pool1" || p.Size != 1 || p.SSHKey != nil {
		t.Errorf("pool show = %s size %d ssh-key %+v, want pool1 size 1 without a key", p.Name, p.Size, p.SSHKey)
	}

	// exo compute instance-pool list (instance_pool_list.go): v2 in every zone.
	found := 0
	for _, z := range allZones() {
		list := must[[]*egoscale.InstancePool](t, "pool list "+string(z))(v2c.ListInstancePools(v2ctx(string(z)), string(z)))
		for _, p := range list {
			_, _, _, _ = *p.ID, *p.Name, *p.Size, *p.State
			found++
		}
	}
	if found != 1 {
		t.Errorf("pool list: %d pools over all zones, want 1", found)
	}

	// exo compute instance-pool scale pool1 2 (instance_pool_scale.go, v2).
	pool := must[*egoscale.InstancePool](t, "scale: FindInstancePool")(v2c.FindInstancePool(v2ctx(zone), zone, "pool1"))
	check(t, "scale: ScaleInstancePool", v2c.ScaleInstancePool(v2ctx(zone), zone, pool, 2))
	if p := poolShow(*pool.ID); p.Size != 2 {
		t.Errorf("after scale: size %d, want 2", p.Size)
	}

	// exo compute instance list (instance_list.go): every zone, the type of each.
	var memberName string
	for _, z := range allZones() {
		zc := switchZone(z)
		list := must[*v3.ListInstancesResponse](t, "instance list "+string(z))(zc.ListInstances(ctx))
		for _, i := range list.Instances {
			must[*v3.InstanceType](t, "instance list: GetInstanceType")(zc.GetInstanceType(ctx, i.InstanceType.ID))
			_ = i.PublicIP.String()
			memberName = i.Name
		}
	}

	// exo compute instance show NAME (instance_show.go).
	instanceShow := func(nameOrID string) *v3.Instance {
		t.Helper()
		list := must[*v3.ListInstancesResponse](t, "ListInstances")(c.ListInstances(ctx))
		li := must[v3.ListInstancesResponseInstances](t, "FindListInstancesResponseInstances "+nameOrID)(list.FindListInstancesResponseInstances(nameOrID))
		i := must[*v3.Instance](t, "instance show: GetInstance")(c.GetInstance(ctx, li.ID))
		_, _ = *i.SecurebootEnabled, *i.TpmEnabled
		_ = i.CreatedAT.String()
		for _, g := range i.SecurityGroups {
			gs := must[*v3.ListSecurityGroupsResponse](t, "instance show: ListSecurityGroups")(c.ListSecurityGroups(ctx))
			must[v3.SecurityGroup](t, "instance show: FindSecurityGroup")(gs.FindSecurityGroup(g.ID.String()))
		}
		must[*v3.InstanceType](t, "instance show: GetInstanceType")(c.GetInstanceType(ctx, i.InstanceType.ID))
		must[*v3.Template](t, "instance show: GetTemplate")(c.GetTemplate(ctx, i.Template.ID))
		if _, err := c.GetReverseDNSInstance(ctx, i.ID); err != nil && !errors.Is(err, v3.ErrNotFound) {
			t.Fatalf("instance show: GetReverseDNSInstance: %v", err)
		}
		return i
	}
	instanceShow(memberName)

	// exo compute instance-pool evict pool1 NAME (instance_pool_evict.go, v2).
	pool = must[*egoscale.InstancePool](t, "evict: FindInstancePool")(v2c.FindInstancePool(v2ctx(zone), zone, "pool1"))
	victim := must[*egoscale.Instance](t, "evict: FindInstance")(v2c.FindInstance(v2ctx(zone), zone, memberName))
	check(t, "evict: EvictInstancePoolMembers", v2c.EvictInstancePoolMembers(v2ctx(zone), zone, pool, []string{*victim.ID}))
	if p := poolShow("pool1"); p.Size != 1 {
		t.Errorf("after evict: size %d, want 1", p.Size)
	}

	// exo compute instance create vm1 --security-group web (instance_create.go):
	// no key given, so a single-use key (an authorized_keys line, with its
	// newline) is registered, used and deleted once the instance exists.
	pubKey, _ := sshPublicKey(t)
	keyName := "vm1-" + time.Now().Format("20060102150405")
	cliWait(ctx, t, c, "RegisterSSHKey", must[*v3.Operation](t, "RegisterSSHKey")(c.RegisterSSHKey(ctx, v3.RegisterSSHKeyRequest{Name: keyName, PublicKey: pubKey + "\n"})), nil)
	no := false
	op, err = c.CreateInstance(ctx, v3.CreateInstanceRequest{
		Name: "vm1", DiskSize: 50, Ipv6Enabled: &no, TpmEnabled: &no, SecurebootEnabled: &no,
		SSHKeys: []v3.SSHKey{{Name: keyName}}, InstanceType: tiny, Template: &v3.Template{ID: tpl.ID},
		SecurityGroups: []v3.SecurityGroup{{ID: web.ID}},
	})
	vm := cliWait(ctx, t, c, "instance create", op, err).Reference.ID
	cliWait(ctx, t, c, "DeleteSSHKey", must[*v3.Operation](t, "DeleteSSHKey")(c.DeleteSSHKey(ctx, keyName)), nil)
	if i := instanceShow(vm.String()); i.Name != "vm1" || len(i.SecurityGroups) != 1 {
		t.Errorf("instance show vm1 = %s with %d security groups, want vm1 with 1", i.Name, len(i.SecurityGroups))
	}
	sgShow("web")

	// exo compute instance stop vm1, exo compute instance scale vm1
	// standard.small (instance_scale.go: refused while running, as on
	// Exoscale), start.
	small, err := its.FindInstanceTypeByIdOrFamilyAndSize("standard.small")
	check(t, "FindInstanceTypeByIdOrFamilyAndSize", err)
	if _, err := c.ScaleInstance(ctx, vm, v3.ScaleInstanceRequest{InstanceType: &small}); !errors.Is(err, v3.ErrConflict) {
		t.Errorf("instance scale while running: err = %v, want %v", err, v3.ErrConflict)
	}
	op, err = c.StopInstance(ctx, vm)
	cliWait(ctx, t, c, "instance stop", op, err)
	op, err = c.ScaleInstance(ctx, vm, v3.ScaleInstanceRequest{InstanceType: &small})
	cliWait(ctx, t, c, "instance scale", op, err)
	if i := instanceShow("vm1"); i.InstanceType.ID != small.ID {
		t.Errorf("after instance scale: type %s, want standard.small %s", i.InstanceType.ID, small.ID)
	}
	op, err = c.StartInstance(ctx, vm, v3.StartInstanceRequest{})
	cliWait(ctx, t, c, "instance start", op, err)
	if _, err := c.ScaleInstance(ctx, v3.UUID(poolMemberID(t, ctx, c)), v3.ScaleInstanceRequest{InstanceType: &small}); !errors.Is(err, v3.ErrBadRequest) {
		t.Errorf("instance scale of a pool member: err = %v, want %v", err, v3.ErrBadRequest)
	}

	// exo compute nlb create lb1 (nlb_create.go, v2), then show (nlb_show.go, v3).
	lb := must[*egoscale.NetworkLoadBalancer](t, "nlb create")(v2c.CreateNetworkLoadBalancer(v2ctx(zone), zone, &egoscale.NetworkLoadBalancer{Name: ptrTo("lb1")}))
	nlbShow := func(nameOrID string) v3.LoadBalancer {
		t.Helper()
		lbs := must[*v3.ListLoadBalancersResponse](t, "ListLoadBalancers")(c.ListLoadBalancers(ctx))
		l := must[v3.LoadBalancer](t, "FindLoadBalancer "+nameOrID)(lbs.FindLoadBalancer(nameOrID))
		_, _ = l.IP.String(), l.CreatedAT.String()
		return l
	}
	nlbShow(*lb.ID)

	// exo compute nlb list (nlb_list.go): every zone.
	found = 0
	for _, z := range allZones() {
		found += len(must[*v3.ListLoadBalancersResponse](t, "nlb list "+string(z))(switchZone(z).ListLoadBalancers(ctx)).LoadBalancers)
	}
	if found != 1 {
		t.Errorf("nlb list: %d load balancers over all zones, want 1", found)
	}

	// exo compute nlb service add lb1 svc1 --port 8080 --instance-pool pool1
	// (nlb_service_add.go, v2, with the CLI's defaults), then show (nlb_service_show.go, v2).
	lb = must[*egoscale.NetworkLoadBalancer](t, "service add: FindNetworkLoadBalancer")(v2c.FindNetworkLoadBalancer(v2ctx(zone), zone, "lb1"))
	pool = must[*egoscale.InstancePool](t, "service add: FindInstancePool")(v2c.FindInstancePool(v2ctx(zone), zone, "pool1"))
	port := uint16(8080)
	interval, timeout, retries, mode := 10*time.Second, 5*time.Second, int64(1), "tcp"
	svc := must[*egoscale.NetworkLoadBalancerService](t, "service add")(v2c.CreateNetworkLoadBalancerService(v2ctx(zone), zone, lb, &egoscale.NetworkLoadBalancerService{
		Name: ptrTo("svc1"), Port: &port, TargetPort: &port, Protocol: ptrTo("tcp"), Strategy: ptrTo("round-robin"), InstancePoolID: pool.ID,
		Healthcheck: &egoscale.NetworkLoadBalancerServiceHealthcheck{Interval: &interval, Mode: &mode, Port: &port, Retries: &retries, Timeout: &timeout},
	}))
	lb = must[*egoscale.NetworkLoadBalancer](t, "service show: FindNetworkLoadBalancer")(v2c.FindNetworkLoadBalancer(v2ctx(zone), zone, "lb1"))
	var shown *egoscale.NetworkLoadBalancerService
	for _, s := range lb.Services {
		if *s.ID == *svc.ID || *s.Name == "svc1" {
			shown = s
		}
	}
	if shown == nil {
		t.Fatal("service show: svc1 not found")
	}
	_, _, _, _, _, _, _, _ = *shown.InstancePoolID, *shown.Protocol, *shown.Port, *shown.TargetPort, *shown.Strategy, *shown.State, *shown.Healthcheck.Mode, *shown.Healthcheck.Port
	_, _, _ = *shown.Healthcheck.Interval, *shown.Healthcheck.Timeout, *shown.Healthcheck.Retries
	for _, st := range shown.HealthcheckStatus {
		_, _ = st.InstanceIP.String(), *st.Status
	}
	if l := nlbShow("lb1"); len(l.Services) != 1 {
		t.Errorf("nlb show: %d services, want 1", len(l.Services))
	}

	// exo compute instance-pool delete pool1 is refused by the CLI itself
	// while a service uses the pool (instance_pool_delete.go lists the NLBs).
	// exo compute nlb service delete lb1 svc1 (nlb_service_delete.go, v3).
	l := nlbShow("lb1")
	for _, s := range l.Services {
		if s.Name == "svc1" {
			op, err := c.DeleteLoadBalancerService(ctx, l.ID, s.ID)
			cliWait(ctx, t, c, "service delete", op, err)
		}
	}

	// exo compute nlb delete lb1 (nlb_delete.go, v2).
	lb = must[*egoscale.NetworkLoadBalancer](t, "nlb delete: FindNetworkLoadBalancer")(v2c.FindNetworkLoadBalancer(v2ctx(zone), zone, "lb1"))
	check(t, "nlb delete", v2c.DeleteNetworkLoadBalancer(v2ctx(zone), zone, lb))

	// exo compute instance delete vm1 (instance_delete.go).
	list := must[*v3.ListInstancesResponse](t, "instance delete: ListInstances")(c.ListInstances(ctx))
	li := must[v3.ListInstancesResponseInstances](t, "instance delete: find vm1")(list.FindListInstancesResponseInstances("vm1"))
	op, err = c.DeleteInstance(ctx, li.ID)
	cliWait(ctx, t, c, "instance delete", op, err)

	// exo compute instance-pool delete pool1 (instance_pool_delete.go, v2).
	pool = must[*egoscale.InstancePool](t, "pool delete: FindInstancePool")(v2c.FindInstancePool(v2ctx(zone), zone, "pool1"))
	for _, n := range must[[]*egoscale.NetworkLoadBalancer](t, "pool delete: ListNetworkLoadBalancers")(v2c.ListNetworkLoadBalancers(v2ctx(zone), zone)) {
		for _, s := range n.Services {
			if *s.InstancePoolID == *pool.ID {
				t.Fatalf("pool still used by service %s", *s.Name)
			}
		}
	}
	check(t, "pool delete", v2c.DeleteInstancePool(v2ctx(zone), zone, pool))

	// exo compute security-group rule delete web RULE (security_group_rule_delete.go):
	// the rule is found in the group as listed.
	sgs = must[*v3.ListSecurityGroupsResponse](t, "rule delete: ListSecurityGroups")(c.ListSecurityGroups(ctx))
	g := must[v3.SecurityGroup](t, "rule delete: FindSecurityGroup")(sgs.FindSecurityGroup("web"))
	for _, r := range g.Rules {
		op, err := c.DeleteRuleFromSecurityGroup(ctx, g.ID, r.ID)
		cliWait(ctx, t, c, "rule delete", op, err)
		sgShow("web")
	}

	// exo compute security-group delete web (security_group_delete.go).
	op, err = c.DeleteSecurityGroup(ctx, g.ID)
	cliWait(ctx, t, c, "sg delete", op, err)

	// Nothing left.
	if l, err := c.ListInstances(ctx); err != nil || len(l.Instances) != 0 {
		t.Errorf("after the CLI's deletes: instances %+v, %v; want none", l, err)
	}
	if l, err := c.ListSecurityGroups(ctx); err != nil || len(l.SecurityGroups) != 0 {
		t.Errorf("after the CLI's deletes: security groups %+v, %v; want none", l, err)
	}
}

// poolMemberID returns the ID of a pool member of c's zone.
func poolMemberID(t *testing.T, ctx context.Context, c *v3.Client) string {
	t.Helper()
	list, err := c.ListInstances(ctx, v3.ListInstancesWithManagerType("instance-pool"))
	if err != nil || len(list.Instances) == 0 {
		t.Fatalf("ListInstances of pool members: %+v, %v", list, err)
	}
	return list.Instances[0].ID.String()
}
