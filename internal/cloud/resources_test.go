package cloud_test

import (
	"context"
	"crypto/ed25519"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/cloud"
	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/exoclient"
)

// sshPublicKey returns a fresh ed25519 public key in OpenSSH form and its
// MD5 fingerprint ("aa:bb:...").
func sshPublicKey(t *testing.T) (line, fingerprint string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	for _, part := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	sum := md5.Sum(blob)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02x", b)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " test@tidepool", strings.Join(hexes, ":")
}

// TestRecordsEveryEndpoint drives every endpoint of the records-only
// resources with egoscale v3 (as the CLI's list, show, create and delete
// commands do), checks what they answer, refusals included, and that the
// records and an API key survive a restart of the cloud.
func TestRecordsEveryEndpoint(t *testing.T) {
	h := startHarness(t, harnessOptions{})
	c := h.client
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := func(what string, op *v3.Operation, err error) v3.UUID {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		op, err = c.Wait(ctx, op, v3.OperationStateSuccess)
		if err != nil {
			t.Fatalf("%s: wait: %v", what, err)
		}
		if op.Reference == nil {
			return ""
		}
		return op.Reference.ID
	}
	refused := func(what string, want error, err error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", what, err, want)
		}
	}

	// SSH keys.
	pubKey, fp := sshPublicKey(t)
	op, err := c.RegisterSSHKey(ctx, v3.RegisterSSHKeyRequest{Name: "operator", PublicKey: pubKey})
	wait("RegisterSSHKey", op, err)
	if k, err := c.GetSSHKey(ctx, "operator"); err != nil || k.Fingerprint != fp {
		t.Errorf("GetSSHKey = %+v, %v; want fingerprint %s", k, err, fp)
	}
	_, err = c.RegisterSSHKey(ctx, v3.RegisterSSHKeyRequest{Name: "operator", PublicKey: pubKey})
	refused("RegisterSSHKey twice", v3.ErrConflict, err)
	_, err = c.RegisterSSHKey(ctx, v3.RegisterSSHKeyRequest{Name: "broken", PublicKey: "ssh-ed25519 AAAA"})
	refused("RegisterSSHKey of a broken key", v3.ErrBadRequest, err)

	// Anti-affinity groups, private networks, elastic IPs.
	op, err = c.CreateAntiAffinityGroup(ctx, v3.CreateAntiAffinityGroupRequest{Name: "spread", Description: "one per host"})
	aag := wait("CreateAntiAffinityGroup", op, err)
	op, err = c.CreatePrivateNetwork(ctx, v3.CreatePrivateNetworkRequest{
		Name: "backend", Netmask: net.ParseIP("255.255.255.0"), StartIP: net.ParseIP("10.0.0.10"), EndIP: net.ParseIP("10.0.0.100"),
	})
	pn := wait("CreatePrivateNetwork", op, err)
	op, err = c.UpdatePrivateNetwork(ctx, pn, v3.UpdatePrivateNetworkRequest{Description: "db"})
	wait("UpdatePrivateNetwork", op, err)
	if n, err := c.GetPrivateNetwork(ctx, pn); err != nil || n.Description != "db" || n.StartIP.String() != "10.0.0.10" {
		t.Errorf("GetPrivateNetwork = %+v, %v", n, err)
	}
	_, err = c.CreatePrivateNetwork(ctx, v3.CreatePrivateNetworkRequest{Name: "half", StartIP: net.ParseIP("10.0.0.10")})
	refused("CreatePrivateNetwork without netmask and end-ip", v3.ErrBadRequest, err)
	op, err = c.CreateElasticIP(ctx, v3.CreateElasticIPRequest{Description: "front", Healthcheck: &v3.ElasticIPHealthcheck{Mode: "tcp", Port: 80}})
	eip := wait("CreateElasticIP", op, err)
	op, err = c.UpdateElasticIP(ctx, eip, v3.UpdateElasticIPRequest{Description: "front v2"})
	wait("UpdateElasticIP", op, err)
	if e, err := c.GetElasticIP(ctx, eip); err != nil || e.Description != "front v2" || e.IP == "" || e.Addressfamily != "inet4" {
		t.Errorf("GetElasticIP = %+v, %v", e, err)
	}

	// Security groups and rules.
	op, err = c.CreateSecurityGroup(ctx, v3.CreateSecurityGroupRequest{Name: "web"})
	sg := wait("CreateSecurityGroup", op, err)
	_, err = c.CreateSecurityGroup(ctx, v3.CreateSecurityGroupRequest{Name: "web"})
	refused("CreateSecurityGroup twice", v3.ErrConflict, err)
	op, err = c.AddRuleToSecurityGroup(ctx, sg, v3.AddRuleToSecurityGroupRequest{
		FlowDirection: "ingress", Protocol: "icmp", Network: "10.1.2.3/8",
	})
	if ref := wait("AddRuleToSecurityGroup", op, err); ref != sg {
		t.Errorf("add-rule operation references %s, want the group %s", ref, sg)
	}
	_, err = c.AddRuleToSecurityGroup(ctx, sg, v3.AddRuleToSecurityGroupRequest{FlowDirection: "ingress", Protocol: "tcp"})
	refused("AddRuleToSecurityGroup without a source", v3.ErrBadRequest, err)
	g, err := c.GetSecurityGroup(ctx, sg)
	if err != nil || len(g.Rules) != 1 || g.Rules[0].Network != "10.0.0.0/8" || g.Rules[0].ICMP == nil || g.Rules[0].ICMP.Type != -1 {
		t.Fatalf("GetSecurityGroup = %+v, %v; want one ICMP rule from 10.0.0.0/8, any type", g, err)
	}
	if pub, err := c.ListSecurityGroups(ctx, v3.ListSecurityGroupsWithVisibility("public")); err != nil || len(pub.SecurityGroups) == 0 || pub.SecurityGroups[0].Name != "public-nlb-healthcheck-sources" {
		t.Errorf("public security groups = %+v, %v", pub, err)
	}

	// A standalone instance referencing all of them.
	userData := base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))
	types, err := c.ListInstanceTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tpls, err := c.ListTemplates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op, err = c.CreateInstance(ctx, v3.CreateInstanceRequest{
		Name: "monitoring", DiskSize: 20, InstanceType: &types.InstanceTypes[0], Template: &tpls.Templates[0],
		UserData: userData, AutoStart: v3.Ptr(false), SecurityGroups: []v3.SecurityGroup{{ID: sg}},
		AntiAffinityGroups: []v3.AntiAffinityGroup{{ID: aag}}, SSHKeys: []v3.SSHKey{{Name: "operator"}},
	})
	inst := wait("CreateInstance", op, err)
	got, err := c.GetInstance(ctx, inst)
	switch {
	case err != nil:
		t.Fatalf("GetInstance: %v", err)
	case got.State != v3.InstanceStateStopped || got.UserData != userData || len(got.SSHKeys) != 1 || got.SSHKeys[0].Fingerprint != fp:
		t.Errorf("instance = state %s, user data %q, keys %+v; want stopped, its user data and the key", got.State, got.UserData, got.SSHKeys)
	case len(got.SecurityGroups) != 1 || len(got.AntiAffinityGroups) != 1 || got.PublicIP == nil || got.MACAddress == "" || got.SecurebootEnabled == nil || got.TpmEnabled == nil:
		t.Errorf("instance = groups %v, anti-affinity %v, IP %v, MAC %q, secure boot %v, TPM %v; want all of them", got.SecurityGroups, got.AntiAffinityGroups, got.PublicIP, got.MACAddress, got.SecurebootEnabled, got.TpmEnabled)
	}
	_, err = c.CreateInstance(ctx, v3.CreateInstanceRequest{DiskSize: 20, InstanceType: &types.InstanceTypes[0], Template: &tpls.Templates[0], UserData: "not base64!"})
	refused("CreateInstance with raw user data", v3.ErrBadRequest, err)
	op, err = c.StartInstance(ctx, inst, v3.StartInstanceRequest{})
	wait("StartInstance", op, err)
	_, err = c.StartInstance(ctx, inst, v3.StartInstanceRequest{})
	refused("StartInstance of a running instance", v3.ErrConflict, err)
	op, err = c.RebootInstance(ctx, inst)
	wait("RebootInstance", op, err)
	// The update-instance of pool members (instance_labels_test.go) serves
	// standalone instances too; the drain-token label is reserved on both.
	op, err = c.UpdateInstance(ctx, inst, v3.UpdateInstanceRequest{Name: "monitoring-2", Labels: v3.Labels{"role": "monitoring", cloud.DrainTokenLabel: "forged"}})
	wait("UpdateInstance", op, err)
	if upd, err := c.GetInstance(ctx, inst); err != nil || upd.Name != "monitoring-2" || len(upd.Labels) != 1 || upd.Labels["role"] != "monitoring" {
		t.Errorf("after UpdateInstance: %+v, %v; want name monitoring-2 and only the label role=monitoring", upd, err)
	}
	op, err = c.DetachInstanceFromSecurityGroup(ctx, sg, v3.DetachInstanceFromSecurityGroupRequest{Instance: &v3.Instance{ID: inst}})
	wait("DetachInstanceFromSecurityGroup", op, err)
	op, err = c.AttachInstanceToSecurityGroup(ctx, sg, v3.AttachInstanceToSecurityGroupRequest{Instance: &v3.Instance{ID: inst}})
	wait("AttachInstanceToSecurityGroup", op, err)
	_, err = c.DeleteSecurityGroup(ctx, sg)
	refused("DeleteSecurityGroup in use", v3.ErrConflict, err)
	if g, err := c.GetAntiAffinityGroup(ctx, aag); err != nil || len(g.Instances) != 1 || g.Instances[0].ID != inst {
		t.Errorf("GetAntiAffinityGroup = %+v, %v; want the instance in it", g, err)
	}
	_, err = c.DeleteAntiAffinityGroup(ctx, aag)
	refused("DeleteAntiAffinityGroup in use", v3.ErrConflict, err)

	// Reverse DNS: 404 when none.
	_, err = c.GetReverseDNSInstance(ctx, inst)
	refused("GetReverseDNSInstance without a record", v3.ErrNotFound, err)
	op, err = c.UpdateReverseDNSInstance(ctx, inst, v3.UpdateReverseDNSInstanceRequest{DomainName: "monitoring.example.net."})
	wait("UpdateReverseDNSInstance", op, err)
	if rec, err := c.GetReverseDNSInstance(ctx, inst); err != nil || rec.DomainName != "monitoring.example.net." {
		t.Errorf("GetReverseDNSInstance = %+v, %v", rec, err)
	}

	// An IAM role and key that may only list instances.
	op, err = c.CreateIAMRole(ctx, v3.CreateIAMRoleRequest{Name: "viewer", Policy: &v3.IAMPolicy{
		DefaultServiceStrategy: "deny",
		Services:               map[string]v3.IAMServicePolicy{"compute": {Type: "rules", Rules: []v3.IAMServicePolicyRule{{Action: "allow", Expression: "operation == 'list-instances'"}}}},
	}})
	role := wait("CreateIAMRole", op, err)
	_, err = c.UpdateIAMRolePolicy(ctx, role, v3.IAMPolicy{DefaultServiceStrategy: "deny", Services: map[string]v3.IAMServicePolicy{
		"compute": {Type: "rules", Rules: []v3.IAMServicePolicyRule{{Action: "allow", Expression: "operation ~ 'x'"}}},
	}})
	refused("UpdateIAMRolePolicy with an expression that does not parse", v3.ErrBadRequest, err)
	key, err := c.CreateAPIKey(ctx, v3.CreateAPIKeyRequest{Name: "viewer", RoleID: role})
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}

	// Everything survives a restart; the key still signs.
	h.stop()
	if fi, err := os.Stat(filepath.Join(h.opts.stateDir, cloud.StateFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v, %v; want mode 0600 (it holds API key secrets)", fi, err)
	}
	h2 := startHarness(t, h.opts)
	c = h2.client
	viewer := v3ClientFor(t, h2.endpoint, key.Key, key.Secret)
	if list, err := viewer.ListInstances(ctx); err != nil || len(list.Instances) != 1 || list.Instances[0].Name != "monitoring-2" {
		t.Errorf("ListInstances with the restored key = %+v, %v; want the renamed instance", list, err)
	}
	_, err = viewer.GetInstance(ctx, inst)
	refused("GetInstance with the viewer key", v3.ErrForbidden, err)
	for what, n := range map[string]func() (int, error){
		"ssh keys": func() (int, error) {
			l, err := c.ListSSHKeys(ctx)
			return lenOf(l, err, func() int { return len(l.SSHKeys) })
		},
		"anti-affinity": func() (int, error) {
			l, err := c.ListAntiAffinityGroups(ctx)
			return lenOf(l, err, func() int { return len(l.AntiAffinityGroups) })
		},
		"private nets": func() (int, error) {
			l, err := c.ListPrivateNetworks(ctx)
			return lenOf(l, err, func() int { return len(l.PrivateNetworks) })
		},
		"elastic IPs": func() (int, error) {
			l, err := c.ListElasticIPS(ctx)
			return lenOf(l, err, func() int { return len(l.ElasticIPS) })
		},
		"security groups": func() (int, error) {
			l, err := c.ListSecurityGroups(ctx)
			return lenOf(l, err, func() int { return len(l.SecurityGroups) })
		},
		"IAM roles": func() (int, error) {
			l, err := c.ListIAMRoles(ctx)
			return lenOf(l, err, func() int { return len(l.IAMRoles) })
		},
		"API keys": func() (int, error) {
			l, err := c.ListAPIKeys(ctx)
			return lenOf(l, err, func() int { return len(l.APIKeys) })
		},
	} {
		if got, err := n(); err != nil || got != 1 {
			t.Errorf("%s after restart: %d, %v; want 1", what, got, err)
		}
	}

	// Delete everything, dependents first.
	op, err = c.AddInstanceProtection(ctx, inst)
	wait("AddInstanceProtection", op, err)
	_, err = c.DeleteInstance(ctx, inst)
	refused("DeleteInstance of a protected instance", v3.ErrForbidden, err)
	op, err = c.RemoveInstanceProtection(ctx, inst)
	wait("RemoveInstanceProtection", op, err)
	op, err = c.DeleteReverseDNSInstance(ctx, inst)
	wait("DeleteReverseDNSInstance", op, err)
	op, err = c.StopInstance(ctx, inst)
	wait("StopInstance", op, err)
	op, err = c.DeleteInstance(ctx, inst)
	wait("DeleteInstance", op, err)
	_, err = c.GetInstance(ctx, inst)
	refused("GetInstance after delete", v3.ErrNotFound, err)
	op, err = c.DeleteAPIKey(ctx, key.Key)
	wait("DeleteAPIKey", op, err)
	op, err = c.DeleteIAMRole(ctx, role)
	wait("DeleteIAMRole", op, err)
	op, err = c.DeleteRuleFromSecurityGroup(ctx, sg, g.Rules[0].ID)
	wait("DeleteRuleFromSecurityGroup", op, err)
	for what, del := range map[string]func() (*v3.Operation, error){
		"security group":      func() (*v3.Operation, error) { return c.DeleteSecurityGroup(ctx, sg) },
		"anti-affinity group": func() (*v3.Operation, error) { return c.DeleteAntiAffinityGroup(ctx, aag) },
		"private network":     func() (*v3.Operation, error) { return c.DeletePrivateNetwork(ctx, pn) },
		"elastic IP":          func() (*v3.Operation, error) { return c.DeleteElasticIP(ctx, eip) },
		"SSH key":             func() (*v3.Operation, error) { return c.DeleteSSHKey(ctx, "operator") },
	} {
		op, err := del()
		wait("delete "+what, op, err)
	}
}

func lenOf[T any](l *T, err error, n func() int) (int, error) {
	if err != nil {
		return 0, err
	}
	return n(), nil
}

// v3ClientFor returns an egoscale v3 client of endpoint signing with key.
func v3ClientFor(t *testing.T, endpoint, key, secret string) *v3.Client {
	t.Helper()
	c, err := exoclient.New(exoclient.Config{Key: key, Secret: secret, Endpoint: endpoint, UserAgent: "resources-test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPoolReferences checks that an instance pool keeps and reports what it
// references (checked: unknown ones are 404), that an update replaces them
// and an empty ssh-key clears the key, and that a group the pool uses
// cannot be deleted until the pool is gone.
func TestPoolReferences(t *testing.T) {
	env := cloudtest.Start(t, cloudtest.Options{})
	c := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wait := func(what string, op *v3.Operation, err error) v3.UUID {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if op, err = c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
			t.Fatalf("%s: wait: %v", what, err)
		}
		return op.Reference.ID
	}
	pubKey, _ := sshPublicKey(t)
	op, err := c.RegisterSSHKey(ctx, v3.RegisterSSHKeyRequest{Name: "operator", PublicKey: pubKey})
	wait("RegisterSSHKey", op, err)
	op, err = c.CreateSecurityGroup(ctx, v3.CreateSecurityGroupRequest{Name: "members"})
	sg := wait("CreateSecurityGroup", op, err)
	op, err = c.CreateAntiAffinityGroup(ctx, v3.CreateAntiAffinityGroupRequest{Name: "spread"})
	aag := wait("CreateAntiAffinityGroup", op, err)
	pool := env.CreatePool(t, 1)

	_, err = c.UpdateInstancePool(ctx, pool, v3.UpdateInstancePoolRequest{SecurityGroups: []v3.SecurityGroup{{ID: "6d2f3ab6-0000-4000-8000-00000000dead"}}})
	if !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("UpdateInstancePool with an unknown security group: err = %v, want 404", err)
	}
	userData := base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))
	op, err = c.UpdateInstancePool(ctx, pool, v3.UpdateInstancePoolRequest{
		SecurityGroups: []v3.SecurityGroup{{ID: sg}}, AntiAffinityGroups: []v3.AntiAffinityGroup{{ID: aag}},
		SSHKey: &v3.SSHKey{Name: "operator"}, UserData: &userData,
	})
	wait("UpdateInstancePool", op, err)
	p, err := c.GetInstancePool(ctx, pool)
	switch {
	case err != nil:
		t.Fatalf("GetInstancePool: %v", err)
	case len(p.SecurityGroups) != 1 || p.SecurityGroups[0].ID != sg || len(p.AntiAffinityGroups) != 1 || p.AntiAffinityGroups[0].ID != aag:
		t.Errorf("pool references = groups %v, anti-affinity %v; want [%s], [%s]", p.SecurityGroups, p.AntiAffinityGroups, sg, aag)
	case p.SSHKey == nil || p.SSHKey.Name != "operator" || p.UserData != userData:
		t.Errorf("pool SSH key %+v, user data %q; want operator and %q", p.SSHKey, p.UserData, userData)
	}
	_, err = c.DeleteSecurityGroup(ctx, sg)
	if !errors.Is(err, v3.ErrConflict) {
		t.Errorf("DeleteSecurityGroup used by a pool: err = %v, want 409", err)
	}
	_, err = c.DeleteAntiAffinityGroup(ctx, aag)
	if !errors.Is(err, v3.ErrConflict) {
		t.Errorf("DeleteAntiAffinityGroup used by a pool: err = %v, want 409", err)
	}
	op, err = c.UpdateInstancePool(ctx, pool, v3.UpdateInstancePoolRequest{SSHKey: &v3.SSHKey{}})
	wait("UpdateInstancePool clearing the key", op, err)
	if p, err := c.GetInstancePool(ctx, pool); err != nil || p.SSHKey != nil || len(p.SecurityGroups) != 1 {
		t.Errorf("pool after clearing the key: %+v, %v; want no key, the group kept", p, err)
	}
	// Terraform clears a reference with the reset-field endpoint; the group
	// is then free while the pool lives on.
	op, err = c.ResetInstancePoolField(ctx, pool, v3.ResetInstancePoolFieldFieldAntiAffinityGroups)
	wait("ResetInstancePoolField anti-affinity-groups", op, err)
	if p, err := c.GetInstancePool(ctx, pool); err != nil || len(p.AntiAffinityGroups) != 0 || len(p.SecurityGroups) != 1 {
		t.Errorf("pool after resetting anti-affinity-groups: %+v, %v; want none, the security group kept", p, err)
	}
	op, err = c.DeleteAntiAffinityGroup(ctx, aag)
	wait("DeleteAntiAffinityGroup after the reset", op, err)
	op, err = c.DeleteInstancePool(ctx, pool)
	wait("DeleteInstancePool", op, err)
	op, err = c.DeleteSecurityGroup(ctx, sg)
	wait("DeleteSecurityGroup after the pool", op, err)
}

// TestRecordZones checks that zonal records (here a private network) belong
// to the zone they were created in, with their operations, and that a pool
// cannot reference another zone's, while security groups are global.
func TestRecordZones(t *testing.T) {
	env := cloudtest.Start(t, cloudtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ep, err := env.Client.GetZoneAPIEndpoint(ctx, "de-fra-1")
	if err != nil {
		t.Fatal(err)
	}
	fra, home := env.Client.WithEndpoint(ep), env.Client
	wait := func(c *v3.Client, what string, op *v3.Operation, err error) v3.UUID {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if op, err = c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
			t.Fatalf("%s: wait: %v", what, err)
		}
		return op.Reference.ID
	}
	op, err := fra.CreatePrivateNetwork(ctx, v3.CreatePrivateNetworkRequest{Name: "in-fra"})
	if err == nil {
		if _, err := home.GetOperation(ctx, op.ID); !errors.Is(err, v3.ErrNotFound) {
			t.Errorf("de-fra-1's operation in %s: err = %v, want not found", env.Zone, err)
		}
	}
	pn := wait(fra, "CreatePrivateNetwork in de-fra-1", op, err)
	if l, err := fra.ListPrivateNetworks(ctx); err != nil || len(l.PrivateNetworks) != 1 || l.PrivateNetworks[0].ID != pn {
		t.Errorf("de-fra-1 private networks = %+v, %v; want [%s]", l, err, pn)
	}
	if l, err := home.ListPrivateNetworks(ctx); err != nil || len(l.PrivateNetworks) != 0 {
		t.Errorf("%s private networks = %+v, %v; want none", env.Zone, l, err)
	}
	if _, err := home.GetPrivateNetwork(ctx, pn); !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("get de-fra-1's private network in %s: err = %v, want not found", env.Zone, err)
	}
	pool := env.CreatePool(t, 1)
	_, err = home.UpdateInstancePool(ctx, pool, v3.UpdateInstancePoolRequest{PrivateNetworks: []v3.PrivateNetwork{{ID: pn}}})
	if !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("pool of %s referencing de-fra-1's private network: err = %v, want 404", env.Zone, err)
	}
	// The pool's member is an instance of its zone only.
	p, err := home.GetInstancePool(ctx, pool)
	if err != nil || len(p.Instances) != 1 {
		t.Fatalf("GetInstancePool: %+v, %v; want one member", p, err)
	}
	member := p.Instances[0].ID
	_, err = fra.UpdateReverseDNSInstance(ctx, member, v3.UpdateReverseDNSInstanceRequest{DomainName: "member.example.net."})
	if !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("reverse DNS of a %s member set through de-fra-1: err = %v, want 404", env.Zone, err)
	}
	_, err = fra.UpdateInstance(ctx, member, v3.UpdateInstanceRequest{Name: "renamed"})
	if !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("update of a %s member through de-fra-1: err = %v, want 404 (it is updated in its own zone only)", env.Zone, err)
	}

	op, err = fra.CreateSecurityGroup(ctx, v3.CreateSecurityGroupRequest{Name: "global"})
	sg := wait(fra, "CreateSecurityGroup in de-fra-1", op, err)
	if _, err := home.GetSecurityGroup(ctx, sg); err != nil {
		t.Errorf("security group created in de-fra-1, read in %s: %v", env.Zone, err)
	}
	op, err = home.DeleteSecurityGroup(ctx, sg)
	wait(home, "DeleteSecurityGroup in the other zone", op, err)
	op, err = fra.DeletePrivateNetwork(ctx, pn)
	wait(fra, "DeletePrivateNetwork in de-fra-1", op, err)
}
