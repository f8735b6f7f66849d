package cloud_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/loopback"
	"tidepool/internal/provision"
)

// createPool creates a pool of size members through h's client and waits
// for its operation.
func createPool(t *testing.T, h *harness, name string, size int64) v3.UUID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	op, err := h.client.CreateInstancePool(ctx, v3.CreateInstancePoolRequest{
		Name: name, Size: size, DiskSize: 10,
		InstanceType: &v3.InstanceType{ID: microID(t, h.client)},
		Template:     &v3.Template{ID: ubuntuID(t, h.client)},
	})
	if err == nil {
		op, err = provision.WaitOperation(ctx, h.client, op)
	}
	if err != nil {
		t.Fatalf("create pool %s: %v", name, err)
	}
	return op.Reference.ID
}

// TestSupersededScaleFails: a scale operation overtaken by a later scale
// never reports success for the size it no longer gets; the later one
// succeeds.
func TestSupersededScaleFails(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{bootDelay: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := createPool(t, h, "superseded", 1)

	first, err := h.client.ScaleInstancePool(ctx, id, v3.ScaleInstancePoolRequest{Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.client.ScaleInstancePool(ctx, id, v3.ScaleInstancePoolRequest{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provision.WaitOperation(ctx, h.client, second); err != nil {
		t.Errorf("the later scale (to 1): %v", err)
	}
	got, err := provision.WaitOperation(ctx, h.client, first)
	if err == nil || got.State != v3.OperationStateFailure || !strings.Contains(got.Message, "superseded") {
		t.Errorf("the superseded scale (to 3): state %s, message %q, err %v; want a failure saying superseded", got.State, got.Message, err)
	}
}

// TestScaleUpWhileMembersDrain: a scale-up right after a scale-down that
// freed the whole address range waits for the draining members' addresses
// instead of counting member start failures, and succeeds.
func TestScaleUpWhileMembersDrain(t *testing.T) {
	t.Parallel()
	memberNet, nlbNet := loopback.Ranges()
	// A /29 hands out .2 to .6: five members.
	small := netip.PrefixFrom(memberNet.Addr(), 29)
	h := startHarness(t, harnessOptions{memberNet: small, nlbNet: nlbNet, appDrain: "4s", bootDelay: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := createPool(t, h, "drain", 5)

	if _, err := h.client.ScaleInstancePool(ctx, id, v3.ScaleInstancePoolRequest{Size: 0}); err != nil {
		t.Fatal(err)
	}
	// The five members leave, drain for 4 s and hold their addresses
	// meanwhile.
	waitFor(t, 10*time.Second, "every member leaving", func() (bool, string) {
		p, ids, err := poolInstances(ctx, h.client, id)
		if err != nil {
			return false, err.Error()
		}
		return len(ids) == 0, string(p.State)
	})
	start := time.Now()
	op, err := h.client.ScaleInstancePool(ctx, id, v3.ScaleInstancePoolRequest{Size: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provision.WaitOperation(ctx, h.client, op); err != nil {
		t.Fatalf("scale back to 5 while members drain: %v", err)
	}
	if d := time.Since(start); d < 3*time.Second {
		t.Logf("scale-up took only %v: the members did not hold their addresses long", d)
	}
}

// TestZeroBootDelay: a boot delay of zero means none (not the 3 s
// default): a new member runs within well under 3 s.
func TestZeroBootDelay(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{bootDelay: -1}) // harness: negative means cloud.Config.BootDelay = 0
	start := time.Now()
	createPool(t, h, "instant", 1)
	if d := time.Since(start); d >= 2500*time.Millisecond {
		t.Errorf("pool of 1 running after %v, want well under the 3 s default boot delay", d)
	}
}
