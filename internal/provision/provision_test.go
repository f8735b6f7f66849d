package provision_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/provision"
)

func TestMain(m *testing.M) {
	code := m.Run()
	buildbin.Cleanup()
	os.Exit(code)
}

// TestPoolAndService provisions a pool and a load balancer service on the
// local cloud through the real egoscale client and sends a request through it.
func TestPoolAndService(t *testing.T) {
	env := cloudtest.Start(t, cloudtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if _, err := provision.CreatePool(ctx, env.Client, provision.PoolSpec{Name: "bad", Size: 1, InstanceType: "standard.nope"}); err == nil ||
		!strings.Contains(err.Error(), "standard.nope") {
		t.Errorf("unknown instance type: err = %v, want one naming it", err)
	}
	if _, err := provision.CreatePool(ctx, env.Client, provision.PoolSpec{Name: "huge", Size: 10000}); err == nil {
		t.Error("size 10000: want an error from the API")
	}

	id, err := provision.CreatePool(ctx, env.Client, provision.PoolSpec{Name: "web", Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := env.Client.GetInstancePool(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if pool.State != "running" || len(pool.Instances) != 2 {
		t.Fatalf("pool state %s with %d instances, want running with 2", pool.State, len(pool.Instances))
	}

	svc, err := provision.CreateNLBService(ctx, env.Client, provision.ServiceSpec{
		Name: "web", Pool: id, Port: 8000, TargetPort: 8080, Interval: 1, Timeout: 1, Retries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + svc.Addr + "/?work=1ms")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), `"instance"`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer through the load balancer at %s: %v", svc.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
