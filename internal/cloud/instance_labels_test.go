package cloud_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/cloud"
	"tidepool/internal/provision"
)

// TestInstanceLabelsAndDrainTokens checks the members' drain credentials
// (issue 17: members trust only the cloud) and instance labels: every member
// gets its own token, shown only through the signed API under
// cloud.DrainTokenLabel; its app accepts POST /drain with that token and
// with no other; PUT /instance/{id} sets labels but cannot forge the token;
// labels survive a restart of the cloud, tokens are new with the new
// processes.
func TestInstanceLabelsAndDrainTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs member processes")
	}
	h := startHarness(t, harnessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	poolID, err := provision.CreatePool(ctx, h.client, provision.PoolSpec{Name: "labels", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Members carry the pool's labels from their creation on.
	if _, err := h.client.UpdateInstancePool(ctx, poolID, v3.UpdateInstancePoolRequest{Labels: v3.Labels{"app": "tidepool"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.ScaleInstancePool(ctx, poolID, v3.ScaleInstancePoolRequest{Size: 2}); err != nil {
		t.Fatal(err)
	}
	if err := provision.WaitPoolRunning(ctx, h.client, poolID); err != nil {
		t.Fatal(err)
	}
	list, err := h.client.ListInstances(ctx, v3.ListInstancesWithManagerID(poolID))
	if err != nil || len(list.Instances) != 2 {
		t.Fatalf("ListInstances = %d instances, %v; want 2", len(list.Instances), err)
	}
	older, newer := list.Instances[0], list.Instances[1] // sorted by creation
	if older.Labels["app"] != "" || newer.Labels["app"] != "tidepool" {
		t.Errorf("labels: first member %v, second %v; want the pool's label on the member created after it was set", older.Labels, newer.Labels)
	}
	tokens := map[v3.UUID]string{}
	for _, in := range list.Instances {
		tok := in.Labels[cloud.DrainTokenLabel]
		if len(tok) < 32 {
			t.Fatalf("member %s drain token %q: want a random token of at least 32 characters", in.ID, tok)
		}
		tokens[in.ID] = tok
	}
	if tokens[older.ID] == tokens[newer.ID] {
		t.Fatalf("both members have the drain token %q, want one per member", tokens[older.ID])
	}

	drain := func(method string, in v3.ListInstancesResponseInstances, token string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+in.PublicIP.String()+":8080/drain", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s /drain on %s: %v", method, in.ID, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	checks := []struct {
		name   string
		method string
		target v3.ListInstancesResponseInstances
		token  string
		want   int
	}{
		{"no credential", "POST", older, "", 401},
		{"the other member's token", "POST", older, tokens[newer.ID], 401},
		{"the cloud API secret", "POST", older, h.opts.secret, 401},
		{"its own token", "POST", older, tokens[older.ID], 200},
		{"undo with its own token", "DELETE", older, tokens[older.ID], 200},
		{"second member, first member's token", "POST", newer, tokens[older.ID], 401},
	}
	for _, c := range checks {
		if got := drain(c.method, c.target, c.token); got != c.want {
			t.Errorf("%s: %s /drain = %d, want %d", c.name, c.method, got, c.want)
		}
	}

	// Labels are set through the API; the token label cannot be forged.
	if _, err := h.client.UpdateInstance(ctx, older.ID, v3.UpdateInstanceRequest{
		Labels: v3.Labels{"tidepool-draining": "x", cloud.DrainTokenLabel: "forged"},
	}); err != nil {
		t.Fatalf("UpdateInstance: %v", err)
	}
	// egoscale sends "labels": null without labels: they stay as they are.
	if _, err := h.client.UpdateInstance(ctx, older.ID, v3.UpdateInstanceRequest{Name: "renamed"}); err != nil {
		t.Fatalf("UpdateInstance name: %v", err)
	}
	got, err := h.client.GetInstance(ctx, older.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "renamed" || got.Labels["tidepool-draining"] != "x" || got.Labels[cloud.DrainTokenLabel] != tokens[older.ID] {
		t.Errorf("after updates: name %q labels %v; want renamed, tidepool-draining=x and the real token", got.Name, got.Labels)
	}
	if _, err := h.client.UpdateInstance(ctx, v3.UUID("00000000-0000-4000-8000-000000000000"), v3.UpdateInstanceRequest{Labels: v3.Labels{}}); !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("UpdateInstance of an unknown instance = %v, want not found", err)
	}

	// A restart keeps labels; members are new processes with new tokens.
	h.stop()
	second := startHarness(t, h.opts)
	if err := provision.WaitPoolRunning(ctx, second.client, poolID); err != nil {
		t.Fatal(err)
	}
	after, err := second.client.GetInstance(ctx, older.ID)
	if err != nil {
		t.Fatal(err)
	}
	newToken := after.Labels[cloud.DrainTokenLabel]
	if after.Labels["tidepool-draining"] != "x" || newToken == "" || newToken == tokens[older.ID] {
		t.Errorf("after a restart: labels %v; want tidepool-draining=x kept and a new drain token", after.Labels)
	}
	olderNow := older
	olderNow.PublicIP = after.PublicIP
	if code := drain("POST", olderNow, tokens[older.ID]); code != 401 {
		t.Errorf("the old token after a restart: POST /drain = %d, want 401", code)
	}
	if code := drain("POST", olderNow, newToken); code != 200 {
		t.Errorf("the new token after a restart: POST /drain = %d, want 200", code)
	}
}
