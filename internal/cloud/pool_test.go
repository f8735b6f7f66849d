package cloud_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/cloud"
	"tidepool/internal/cloud/cloudtest"
)

// TestPoolLifecycle drives an instance pool through the egoscale client:
// create, inspect, scale up, evict a named member, delete an instance, kill a
// member process, scale down, update and delete, checking states, the member
// processes and the pool's self-healing at each step.
func TestPoolLifecycle(t *testing.T) {
	t.Parallel()
	env := cloudtest.Start(t, cloudtest.Options{BootDelay: time.Second, Logger: testLogger(t)})
	c := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	id := env.CreatePool(t, 2)

	// The pool and its members as the API shows them.
	p, members, err := poolInstances(ctx, c, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.State != v3.InstancePoolStateRunning || p.Size != 2 || len(members) != 2 {
		t.Fatalf("new pool: state %q size %d instances %d, want running 2 2", p.State, p.Size, len(members))
	}
	if p.InstanceType == nil || p.InstanceType.Cpus != 1 || p.Template == nil || p.Template.Name != "Linux Ubuntu 24.04 LTS 64-bit" {
		t.Errorf("pool instance-type %+v template %+v, want standard.micro (1 cpu) and Ubuntu 24.04", p.InstanceType, p.Template)
	}
	list, err := c.ListInstances(ctx, v3.ListInstancesWithManagerID(id), v3.ListInstancesWithManagerType(v3.ListInstancesManagerTypeInstancePool))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Instances) != 2 {
		t.Fatalf("ListInstances(manager-id) = %d instances, want 2", len(list.Instances))
	}
	seenIPs := map[string]bool{}
	for _, inst := range list.Instances {
		ip := inst.PublicIP.String()
		switch {
		case !contains(members, inst.ID):
			t.Errorf("instance %s listed but not a member of the pool %v", inst.ID, members)
		case inst.Manager == nil || inst.Manager.ID != id || inst.Manager.Type != v3.ManagerTypeInstancePool:
			t.Errorf("instance %s manager = %+v, want {%s instance-pool}", inst.ID, inst.Manager, id)
		case inst.State != v3.InstanceStateRunning:
			t.Errorf("instance %s state = %q, want running", inst.ID, inst.State)
		case !strings.HasPrefix(inst.Name, "pool-"+string(id)[:5]+"-"):
			t.Errorf("instance name %q, want pool-%s-N", inst.Name, string(id)[:5])
		case !env.MemberNet.Contains(mustAddr(t, ip)) || seenIPs[ip]:
			t.Errorf("instance %s public-ip %s: want a distinct address in %s", inst.ID, ip, env.MemberNet)
		case inst.CreatedAT.IsZero() || inst.InstanceType == nil || inst.Template == nil:
			t.Errorf("instance %s lacks created-at, instance-type or template: %+v", inst.ID, inst)
		}
		seenIPs[ip] = true
		// The member is a real app on its IP, with node exporter metrics.
		if got, err := getInstance(ctx, ip+":8080"); err != nil || got != string(inst.ID) {
			t.Errorf("GET http://%s:8080/ answered by %q, %v; want %s", ip, got, err, inst.ID)
		}
		if resp, err := http.Get("http://" + ip + ":9100/metrics"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("node exporter of %s: %v %v", inst.ID, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	other, err := c.ListInstances(ctx, v3.ListInstancesWithManagerID(v3.UUID("00000000-0000-4000-8000-000000000000")))
	if err != nil || len(other.Instances) != 0 {
		t.Errorf("ListInstances(other manager-id) = %v, %v; want none", other, err)
	}

	// Scale up: scaling-up while the new member boots, then running.
	op, err := c.ScaleInstancePool(ctx, id, v3.ScaleInstancePoolRequest{Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	if op.State != v3.OperationStatePending || op.Reference == nil || op.Reference.ID != id {
		t.Errorf("scale operation = %+v, want pending with reference %s", op, id)
	}
	if p, err := c.GetInstancePool(ctx, id); err != nil || p.State != v3.InstancePoolStateScalingUP || p.Size != 3 {
		t.Errorf("pool right after scale: %v %v, want scaling-up size 3", p, err)
	}
	if _, err := c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatalf("wait for scale: %v", err)
	}
	_, members, err = poolInstances(ctx, c, id)
	if err != nil || len(members) != 3 {
		t.Fatalf("after scale to 3: members %v, %v", members, err)
	}

	// Evict a named member: it drains ("stopping"), then is gone; size 2.
	victim := members[0]
	victimPID := pidOf(string(victim))
	if victimPID == 0 {
		t.Fatalf("no process for member %s", victim)
	}
	op, err = c.EvictInstancePoolMembers(ctx, id, v3.EvictInstancePoolMembersRequest{Instances: []v3.UUID{victim}})
	if err != nil {
		t.Fatal(err)
	}
	if inst, err := c.GetInstance(ctx, victim); err != nil || inst.State != v3.InstanceStateStopping {
		t.Errorf("evicted member right after evict: %v %v, want state stopping", inst, err)
	}
	if p, err := c.GetInstancePool(ctx, id); err != nil || p.Size != 2 || p.State != v3.InstancePoolStateScalingDown || len(p.Instances) != 2 {
		t.Errorf("pool right after evict: %+v %v, want scaling-down, size 2, 2 instances", p, err)
	}
	if _, err := c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatalf("wait for evict: %v", err)
	}
	if _, err := c.GetInstance(ctx, victim); !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("GetInstance(evicted) err = %v, want not found", err)
	}
	if alive(victimPID) {
		t.Errorf("evicted member process %d still alive", victimPID)
	}
	if err := env.WaitPoolRunning(ctx, id); err != nil {
		t.Fatal(err)
	}

	// DELETE /instance kills a member; the pool replaces it.
	_, members, _ = poolInstances(ctx, c, id)
	deleted := members[0]
	deletedPID := pidOf(string(deleted))
	op, err = c.DeleteInstance(ctx, deleted)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatalf("wait for delete instance: %v", err)
	}
	if alive(deletedPID) {
		t.Errorf("deleted member process %d still alive", deletedPID)
	}
	waitReplaced(t, env, id, deleted, 2)

	// A member whose process dies is replaced too.
	_, members, _ = poolInstances(ctx, c, id)
	crashed := members[1]
	if err := syscall.Kill(pidOf(string(crashed)), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitReplaced(t, env, id, crashed, 2)

	// Scale down picks victims itself.
	op, err = c.ScaleInstancePool(ctx, id, v3.ScaleInstancePoolRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatalf("wait for scale down: %v", err)
	}
	if list, err := c.ListInstances(ctx, v3.ListInstancesWithManagerID(id)); err != nil || len(list.Instances) != 1 {
		t.Errorf("after scale to 1: %v instances, %v", list, err)
	}

	// Update, then delete the pool.
	op, err = c.UpdateInstancePool(ctx, id, v3.UpdateInstancePoolRequest{Name: "renamed", Description: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatal(err)
	}
	if p, err := c.GetInstancePool(ctx, id); err != nil || p.Name != "renamed" || p.Description != "d" || p.Size != 1 {
		t.Errorf("after update: %+v, %v; want name renamed, description d, size 1", p, err)
	}
	if pools, err := c.ListInstancePools(ctx); err != nil {
		t.Error(err)
	} else if _, err := pools.FindInstancePool("renamed"); err != nil {
		t.Errorf("ListInstancePools: %v", err)
	}
	op, err = c.DeleteInstancePool(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetInstancePool(ctx, id); !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("GetInstancePool after delete: %v, want not found", err)
	}
	if left := env.MemberProcesses(); len(left) != 0 {
		t.Errorf("member processes after pool delete: %v", left)
	}
}

// waitReplaced waits until the pool is running with size members, none of
// them gone, and gone no longer exists.
func waitReplaced(t *testing.T, env *cloudtest.Env, id, gone v3.UUID, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitFor(t, time.Minute, "replacement of "+string(gone), func() (bool, string) {
		p, members, err := poolInstances(ctx, env.Client, id)
		if err != nil {
			return false, err.Error()
		}
		_, gerr := env.Client.GetInstance(ctx, gone)
		ok := p.State == v3.InstancePoolStateRunning && len(members) == size && !contains(members, gone) && errors.Is(gerr, v3.ErrNotFound)
		return ok, string(p.State) + " " + strings.Join(uuidStrings(members), ",")
	})
}

func uuidStrings(ids []v3.UUID) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return s
}

// TestPoolOperationFailsWhenMembersCannotStart uses a member program that
// exits at once: the create operation ends in failure with the reason, and
// the pool keeps retrying with backoff.
func TestPoolOperationFailsWhenMembersCannotStart(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{appCommand: []string{"/bin/false"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	op, err := h.client.CreateInstancePool(ctx, v3.CreateInstancePoolRequest{
		Name: "broken", Size: 1, DiskSize: 10,
		InstanceType: &v3.InstanceType{ID: microID(t, h.client)},
		Template:     &v3.Template{ID: ubuntuID(t, h.client)},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.client.Wait(ctx, op, v3.OperationStateSuccess)
	if err == nil || !strings.Contains(err.Error(), "failure") || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("Wait = %v, want a failure explaining that the member exited", err)
	}
	p, err := h.client.GetInstancePool(ctx, op.Reference.ID)
	if err != nil || p.State != v3.InstancePoolStateCreating {
		t.Errorf("pool after failures: %+v, %v; want state creating", p, err)
	}
}

func microID(t testing.TB, c *v3.Client) v3.UUID {
	types, err := c.ListInstanceTypes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	it, err := types.FindInstanceTypeByIdOrFamilyAndSize("standard.micro")
	if err != nil {
		t.Fatal(err)
	}
	return it.ID
}

func ubuntuID(t testing.TB, c *v3.Client) v3.UUID {
	tpls, err := c.ListTemplates(context.Background(), v3.ListTemplatesWithVisibility(v3.ListTemplatesVisibilityPublic))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := tpls.FindTemplate("Linux Ubuntu 24.04 LTS 64-bit")
	if err != nil {
		t.Fatal(err)
	}
	return tpl.ID
}

var _ = cloud.DefaultZone
