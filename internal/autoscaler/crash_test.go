package autoscaler

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/cloud"
	"tidepool/internal/cloud/cloudtest"
)

// Crash safety against the real local cloud (issue 17, items 1 to 3). The
// SIGKILL matrix of the real binary is in faultinject_test.go.

func TestDrainLabelsMatchTheCloud(t *testing.T) {
	if DrainTokenLabel != cloud.DrainTokenLabel {
		t.Errorf("DrainTokenLabel %q, the local cloud's %q", DrainTokenLabel, cloud.DrainTokenLabel)
	}
}

// labelsOf returns the labels of instance id.
func labelsOf(t *testing.T, env *cloudtest.Env, id string) map[string]string {
	t.Helper()
	in, err := env.Client.GetInstance(context.Background(), v3.UUID(id))
	if err != nil {
		t.Fatalf("GetInstance %s: %v", id, err)
	}
	return in.Labels
}

// crashMidDrain leaves member id as an autoscaler killed in the middle of
// its drain would: marked as draining on the instance, and drained (its
// /health answers 503) with its own token.
func crashMidDrain(t *testing.T, env *cloudtest.Env, id string) {
	t.Helper()
	ctx := context.Background()
	in, err := env.Client.GetInstance(ctx, v3.UUID(id))
	if err != nil {
		t.Fatal(err)
	}
	labels := maps.Clone(map[string]string(in.Labels))
	token := labels[DrainTokenLabel]
	delete(labels, DrainTokenLabel)
	labels[DrainingLabel] = time.Now().UTC().Format(time.RFC3339)
	op, err := env.Client.UpdateInstance(ctx, v3.UUID(id), v3.UpdateInstanceRequest{Labels: labels})
	if err == nil {
		_, err = env.Client.Wait(ctx, op, v3.OperationStateSuccess)
	}
	if err != nil {
		t.Fatalf("mark %s: %v", id, err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+in.PublicIP.String()+":8080/drain", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /drain on %s = %d", id, resp.StatusCode)
	}
}

// memberStatus returns the NLB health check status of every member IP.
func memberStatus(t *testing.T, env *cloudtest.Env, nlbID, svcID v3.UUID) map[string]v3.LoadBalancerServerStatusStatus {
	t.Helper()
	svc, err := env.Client.GetLoadBalancerService(context.Background(), nlbID, svcID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v3.LoadBalancerServerStatusStatus{}
	for _, st := range svc.HealthcheckStatus {
		out[st.PublicIP.String()] = st.Status
	}
	return out
}

// TestReconcileOrphanedDrain is item 2: an autoscaler killed mid-drain left
// a member marked and out of the load balancer. A new autoscaler, without
// any state file, finds the mark in the cloud at its first tick and
// finishes the drain, evicting exactly that member; when evicting it would
// take the pool below its minimum it undoes the drain instead.
func TestReconcileOrphanedDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	tests := []struct {
		name       string
		size       int
		wantReason policy.Reason
		wantSize   int
	}{
		{"finished: drained member evicted", 2, ReasonResumeDrain, 1},
		{"undone at the minimum", 1, ReasonUndoDrain, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := cloudtest.Start(t, cloudtest.Options{})
			poolID := env.CreatePool(t, tt.size)
			nlbID, svcID, _ := env.CreateNLBService(t, poolID, 8000)
			waitHealthy(t, env, nlbID, svcID, tt.size)
			victim := newestMember(t, env, poolID)
			_, before := poolState(t, env, poolID)
			crashMidDrain(t, env, victim)
			waitHealthy(t, env, nlbID, svcID, tt.size-1) // out of the load balancer

			a, _ := startAutoscaler(t, env, poolID, func(c *Config) {
				c.NLBID, c.NLBServiceID = string(nlbID), string(svcID)
				c.DrainGrace = 200 * time.Millisecond
			})
			d := tick(t, a)
			size, after := poolState(t, env, poolID)
			if d.Reason != tt.wantReason || size != tt.wantSize || len(after) != tt.wantSize {
				t.Fatalf("decision %q (%s), pool %d with members %v; want %s and size %d", d.Message, d.Reason, size, after, tt.wantReason, tt.wantSize)
			}
			want := slices.DeleteFunc(slices.Clone(before), func(id string) bool { return id == victim && tt.wantReason == ReasonResumeDrain })
			slices.Sort(want)
			slices.Sort(after)
			if !slices.Equal(after, want) {
				t.Errorf("members %v, want %v: only the marked member may go", after, want)
			}
			for _, id := range after {
				if _, marked := labelsOf(t, env, id)[DrainingLabel]; marked {
					t.Errorf("member %s still marked as draining", id)
				}
			}
			waitHealthy(t, env, nlbID, svcID, tt.wantSize) // every member left serves
			if d := tick(t, a); d.Reason != policy.ReasonNoSignal {
				t.Errorf("next tick: %s, want nothing more to do", d.Message)
			}
		})
	}
}

// TestReconcileIntent is item 1 with a state file: the intent recorded
// before a change is compared with the cloud at the first tick after a
// restart. A change that reached the cloud is not made again; one that
// never did gives its signals back, and the tick makes it once.
func TestReconcileIntent(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	tests := []struct {
		name string
		size int
		// before prepares the cloud as the crashed autoscaler left it and
		// returns the intent its state file holds.
		before     func(t *testing.T, env *cloudtest.Env, poolID v3.UUID) Intent
		wantReason policy.Reason
		wantSize   int
	}{
		{"scale-up that reached the cloud", 1, func(t *testing.T, env *cloudtest.Env, poolID v3.UUID) Intent {
			scaleTo(t, env, poolID, 2)
			return Intent{Action: policy.ActionScaleUp, From: 1, To: 2, Pending: policy.Pending{Up: 1}}
		}, ReasonChangeFound, 2},
		{"scale-up never sent", 1, func(t *testing.T, env *cloudtest.Env, poolID v3.UUID) Intent {
			return Intent{Action: policy.ActionScaleUp, From: 1, To: 2, Pending: policy.Pending{Up: 1}}
		}, policy.ReasonUpSignal, 2},
		{"scale-in that evicted its victim", 2, func(t *testing.T, env *cloudtest.Env, poolID v3.UUID) Intent {
			victim := newestMember(t, env, poolID)
			op, err := env.Client.EvictInstancePoolMembers(context.Background(), poolID, v3.EvictInstancePoolMembersRequest{Instances: []v3.UUID{v3.UUID(victim)}})
			if err == nil {
				_, err = env.Client.Wait(context.Background(), op, v3.OperationStateSuccess)
			}
			if err != nil {
				t.Fatal(err)
			}
			return Intent{Action: policy.ActionScaleDown, From: 2, To: 1, Victims: []string{victim}, Pending: policy.Pending{Down: 1}}
		}, ReasonChangeFound, 1},
		{"scale-in never started", 2, func(t *testing.T, env *cloudtest.Env, poolID v3.UUID) Intent {
			return Intent{Action: policy.ActionScaleDown, From: 2, To: 1, Victims: []string{newestMember(t, env, poolID)}, Pending: policy.Pending{Down: 1}}
		}, policy.ReasonDownSignal, 1},
		{"scale-in killed mid-drain", 2, func(t *testing.T, env *cloudtest.Env, poolID v3.UUID) Intent {
			victim := newestMember(t, env, poolID)
			crashMidDrain(t, env, victim)
			return Intent{Action: policy.ActionScaleDown, From: 2, To: 1, Victims: []string{victim}, Pending: policy.Pending{Down: 1}}
		}, ReasonResumeDrain, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := cloudtest.Start(t, cloudtest.Options{})
			poolID := env.CreatePool(t, tt.size)
			in := tt.before(t, env, poolID)
			in.Decided = time.Now().Add(-time.Second)
			state := filepath.Join(t.TempDir(), "state.json")
			writeState(t, state, persisted{Intent: &in})
			var victims []string
			if in.Action == policy.ActionScaleDown {
				victims = in.Victims
			}

			a, _ := startAutoscaler(t, env, poolID, func(c *Config) { c.StateFile = state; c.DrainGrace = -1 })
			d := tick(t, a)
			size, members := poolState(t, env, poolID)
			if d.Reason != tt.wantReason || size != tt.wantSize || len(members) != tt.wantSize {
				t.Fatalf("decision %q (%s), pool size %d with %d members; want %s and size %d", d.Message, d.Reason, size, len(members), tt.wantReason, tt.wantSize)
			}
			for _, v := range victims {
				if slices.Contains(members, v) {
					t.Errorf("victim %s still in the pool %v", v, members)
				}
			}
			st := readState(t, state)
			if st.Intent != nil || st.Pending != (policy.Pending{}) || st.LastScale.IsZero() {
				t.Errorf("state after the tick = %+v, want no intent, no pending signal, a last scale time", st)
			}
			// One change per signal: the next tick has nothing to do.
			if d := tick(t, a); d.Reason != policy.ReasonNoSignal {
				t.Errorf("second tick: %s, want no signal", d.Message)
			}
			if size, _ := poolState(t, env, poolID); size != tt.wantSize {
				t.Errorf("pool size %d after the second tick, want %d", size, tt.wantSize)
			}
		})
	}
}

func scaleTo(t *testing.T, env *cloudtest.Env, poolID v3.UUID, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := env.Client.ScaleInstancePool(ctx, poolID, v3.ScaleInstancePoolRequest{Size: int64(size)}); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitPoolRunning(ctx, poolID); err != nil {
		t.Fatal(err)
	}
}

func writeState(t *testing.T, path string, st persisted) {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readState(t *testing.T, path string) persisted {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st persisted
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state file %s: %v", path, err)
	}
	return st
}

// hookedCloud is the real egoscale client with a hook called before every
// call that changes the cloud, and a log of when each was made.
type hookedCloud struct {
	*v3.Client
	before func(op string)
	mu     sync.Mutex
	calls  []hookedCall
}

type hookedCall struct {
	op string
	at time.Time
}

func (h *hookedCloud) note(op string) {
	if h.before != nil {
		h.before(op)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, hookedCall{op, time.Now()})
}

func (h *hookedCloud) callsOf(op string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []time.Time
	for _, c := range h.calls {
		if c.op == op {
			out = append(out, c.at)
		}
	}
	return out
}

func (h *hookedCloud) ScaleInstancePool(ctx context.Context, id v3.UUID, req v3.ScaleInstancePoolRequest) (*v3.Operation, error) {
	h.note(opScale)
	return h.Client.ScaleInstancePool(ctx, id, req)
}

func (h *hookedCloud) EvictInstancePoolMembers(ctx context.Context, id v3.UUID, req v3.EvictInstancePoolMembersRequest) (*v3.Operation, error) {
	h.note(opEvict)
	return h.Client.EvictInstancePoolMembers(ctx, id, req)
}

func (h *hookedCloud) UpdateInstance(ctx context.Context, id v3.UUID, req v3.UpdateInstanceRequest) (*v3.Operation, error) {
	h.note(opUpdateInstance)
	return h.Client.UpdateInstance(ctx, id, req)
}

// TestIntentRecordedBeforeTheCloudIsCalled checks the order that makes item
// 1 impossible: when the first request of a change reaches the cloud, the
// state file already holds its intent and no longer the signals it consumed.
func TestIntentRecordedBeforeTheCloudIsCalled(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	tests := []struct {
		name      string
		size      int
		path      string
		firstCall string // the first change request of the decision
		want      policy.Action
	}{
		{"scale-up", 1, "/up", opScale, policy.ActionScaleUp},
		{"scale-in", 2, "/down", opUpdateInstance, policy.ActionScaleDown}, // the draining mark comes first
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := cloudtest.Start(t, cloudtest.Options{})
			poolID := env.CreatePool(t, tt.size)
			state := filepath.Join(t.TempDir(), "state.json")
			var mu sync.Mutex
			var seen []persisted
			hc := &hookedCloud{Client: env.Client, before: func(op string) {
				if op == tt.firstCall {
					mu.Lock()
					seen = append(seen, readState(t, state))
					mu.Unlock()
				}
			}}
			a, base := startAutoscaler(t, env, poolID, func(c *Config) { c.Cloud = hc; c.StateFile = state; c.DrainGrace = -1 })
			if code := send(t, http.MethodPost, base+tt.path, ""); code != 200 {
				t.Fatalf("POST %s = %d", tt.path, code)
			}
			if readState(t, state).Pending.Direction() == policy.None {
				t.Fatal("the signal is not in the state file")
			}
			if d := tick(t, a); d.Action != tt.want {
				t.Fatalf("decision %s, want %s", d.Message, tt.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 {
				t.Fatalf("no %s call", tt.firstCall)
			}
			st := seen[0]
			if st.Intent == nil || st.Intent.Action != tt.want || st.Pending != (policy.Pending{}) || st.Intent.Pending.Direction() == policy.None {
				t.Errorf("state file at the first %s call: %+v (intent %+v); want the intent with its consumed signal and nothing pending", tt.firstCall, st, st.Intent)
			}
			if end := readState(t, state); end.Intent != nil {
				t.Errorf("state file after the change still holds the intent %+v", end.Intent)
			}
		})
	}
}

// TestTicksCountFromTheEndOfTheLastChange is item 3: a change that outlasts
// the tick interval (here a scale-up whose members boot for 1.5 s with a
// 400 ms tick) is not followed at once by the next one: the next change
// starts at least one interval after the previous one ended.
func TestTicksCountFromTheEndOfTheLastChange(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const boot, interval = 1500 * time.Millisecond, 400 * time.Millisecond
	env := cloudtest.Start(t, cloudtest.Options{BootDelay: boot})
	poolID := env.CreatePool(t, 1)
	hc := &hookedCloud{Client: env.Client}
	a, base := startAutoscaler(t, env, poolID, func(c *Config) {
		c.Cloud = hc
		c.Ticks = nil // the real timer
		c.Interval = interval
	})
	if code := send(t, http.MethodPost, base+"/up", ""); code != 200 {
		t.Fatalf("POST /up = %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(hc.callsOf(opScale)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no scale-up within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A second signal while the first change waits for its members.
	if code := send(t, http.MethodPost, base+"/up", ""); code != 200 {
		t.Fatalf("POST /up = %d", code)
	}
	for len(hc.callsOf(opScale)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no second scale-up within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	calls := hc.callsOf(opScale)
	// The first change ended when it set the last scale time (after its
	// members booted), just before its tick returned; the second change,
	// waiting for its own members, has not set it again yet. (A decision's
	// Record.Time is when its tick began.)
	ended := a.Status().LastScale
	if ended.IsZero() || ended.Sub(calls[0]) < boot {
		t.Fatalf("first change recorded at %v, %s after its request; want after the %s boot", ended, ended.Sub(calls[0]), boot)
	}
	gap := calls[1].Sub(ended)
	if gap < interval {
		t.Errorf("second change started %s after the first one ended, want at least the interval %s", gap.Round(time.Millisecond), interval)
	}
	t.Logf("first change took %s (tick %s); the second started %s after it ended", ended.Sub(calls[0]).Round(time.Millisecond), interval, gap.Round(time.Millisecond))
	if size, _ := poolState(t, env, poolID); size != 3 {
		t.Errorf("pool size %d, want 3 (one change per signal)", size)
	}
}
