package cloud_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud"
)

// TestRestartFromState stops a cloud with a pool and a load balancer, then
// starts a new one on the same state directory: the pool comes back with the
// same members (IDs and addresses, new processes), the load balancer serves
// again on the same address, and nothing leaks in between. A member process
// recorded in the state that survived is killed; an unrelated process that
// reuses a recorded PID is not.
func TestRestartFromState(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	first := startHarness(t, harnessOptions{})
	c := first.client
	op, err := c.CreateInstancePool(ctx, v3.CreateInstancePoolRequest{
		Name: "web", Size: 2, DiskSize: 10,
		InstanceType: &v3.InstanceType{ID: microID(t, c)}, Template: &v3.Template{ID: ubuntuID(t, c)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if op, err = c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatal(err)
	}
	pool := op.Reference.ID
	op, err = c.CreateLoadBalancer(ctx, v3.CreateLoadBalancerRequest{Name: "front"})
	if err != nil {
		t.Fatal(err)
	}
	nlbID := op.Reference.ID
	op, err = c.AddServiceToLoadBalancer(ctx, nlbID, v3.AddServiceToLoadBalancerRequest{
		Name: "http", Port: 80, TargetPort: 8080, Protocol: "tcp", Strategy: "round-robin",
		InstancePool: &v3.InstancePool{ID: pool},
		Healthcheck:  &v3.LoadBalancerServiceHealthcheck{Mode: "http", Port: 8080, URI: "/health", Interval: 1, Timeout: 1, Retries: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatal(err)
	}
	before, err := c.ListInstances(ctx, v3.ListInstancesWithManagerID(pool))
	if err != nil || len(before.Instances) != 2 {
		t.Fatalf("instances before restart: %v, %v", before, err)
	}
	lb, err := c.GetLoadBalancer(ctx, nlbID)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(mustAddr(t, lb.IP.String()), 80).String()
	var oldPIDs []int
	for _, inst := range before.Instances {
		oldPIDs = append(oldPIDs, pidOf(string(inst.ID)))
	}

	first.stop() // fails the test if a member process is left
	for _, pid := range oldPIDs {
		if pid == 0 || alive(pid) {
			t.Errorf("member pid %d alive after shutdown (0: never found)", pid)
		}
	}

	// Plant processes under recorded PIDs: a surviving member (it must be
	// killed) and an unrelated process (it must be left alone).
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	strayID := "stray-member"
	ip4 := first.opts.memberNet.Addr().As4()
	ip4[3] = 200
	strayAddr := netip.AddrPortFrom(netip.AddrFrom4(ip4), 8080)
	stray := startProcess(t, bin, "app", "--listen", strayAddr.String(), "--instance-id", strayID)
	bystander := startProcess(t, "sleep", "300")
	addStateInstances(t, first.opts.stateDir, map[string]int{strayID: stray.Process.Pid, "bystander": bystander.Process.Pid})

	second := startHarness(t, first.opts)
	c = second.client
	if err := waitErr(stray, 30*time.Second); err == nil {
		t.Errorf("stray member process exited cleanly, want it killed")
	}
	if !alive(bystander.Process.Pid) {
		t.Errorf("unrelated process %d that reused a recorded PID was killed", bystander.Process.Pid)
	}

	waitFor(t, time.Minute, "pool running again", func() (bool, string) {
		p, err := c.GetInstancePool(ctx, pool)
		if err != nil {
			return false, err.Error()
		}
		return p.State == v3.InstancePoolStateRunning && len(p.Instances) == 2, string(p.State)
	})
	after, err := c.ListInstances(ctx, v3.ListInstancesWithManagerID(pool))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := instanceKeys(after), instanceKeys(before); !slices.Equal(got, want) {
		t.Errorf("instances after restart = %v, want the same IDs and IPs %v", got, want)
	}
	for _, inst := range after.Instances {
		if pid := pidOf(string(inst.ID)); pid == 0 || slices.Contains(oldPIDs, pid) {
			t.Errorf("member %s pid %d after restart, want a new live process", inst.ID, pid)
		}
	}
	waitFor(t, time.Minute, "load balancer serving again", func() (bool, string) {
		h, err := serviceHealth(ctx, c, nlbID, lb.Services[0].ID)
		if err != nil {
			return false, err.Error()
		}
		ok := len(h) == 2
		for _, s := range h {
			ok = ok && s == "success"
		}
		return ok, mapString(h)
	})
	if got := spread(t, ctx, addr, 10); len(got) != 2 {
		t.Errorf("10 requests through %s after restart reached %v, want both members", addr, got)
	}
	second.stop()

	if b, err := os.ReadFile(filepath.Join(first.opts.stateDir, cloud.StateFile)); err != nil {
		t.Fatal(err)
	} else {
		var doc struct {
			Instances []struct {
				ID  string `json:"id"`
				PID int    `json:"pid"`
			} `json:"instances"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Instances) != 2 {
			t.Errorf("state after second shutdown has %d instances, want the 2 members", len(doc.Instances))
		}
		for _, inst := range doc.Instances {
			if inst.PID != 0 {
				t.Errorf("state records pid %d for %s after a clean shutdown", inst.PID, inst.ID)
			}
		}
	}
}

// instanceKeys returns "id ip" of each instance, sorted.
func instanceKeys(l *v3.ListInstancesResponse) []string {
	var keys []string
	for _, inst := range l.Instances {
		keys = append(keys, string(inst.ID)+" "+inst.PublicIP.String())
	}
	slices.Sort(keys)
	return keys
}

// startProcess starts a child process that the test ends (by PID) if it is
// still running at cleanup.
func startProcess(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// waitErr waits for cmd to exit and returns its exit error.
func waitErr(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return errors.New("still running")
	}
}

// addStateInstances records processes in the state file as instances that
// were leaving their pool (no pool), each with a PID.
func addStateInstances(t *testing.T, dir string, pids map[string]int) {
	t.Helper()
	path := filepath.Join(dir, cloud.StateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	insts, _ := doc["instances"].([]any)
	for id, pid := range pids {
		insts = append(insts, map[string]any{"id": id, "name": id, "pool": "", "ip": "127.0.0.1", "pid": pid})
	}
	doc["instances"] = insts
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
