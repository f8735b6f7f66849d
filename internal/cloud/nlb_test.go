package cloud_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/prometheus/client_golang/prometheus"

	"tidepool/internal/cloud"
	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/cloud/nlb"
)

// serviceHealth returns the service's healthcheck-status by member IP.
func serviceHealth(ctx context.Context, c *v3.Client, nlbID, serviceID v3.UUID) (map[string]string, error) {
	s, err := c.GetLoadBalancerService(ctx, nlbID, serviceID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, st := range s.HealthcheckStatus {
		out[st.PublicIP.String()] = string(st.Status)
	}
	return out, nil
}

// spread sends n requests through addr, each on a new connection, and counts
// the answering instances.
func spread(t *testing.T, ctx context.Context, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		inst, err := getInstance(ctx, addr)
		if err != nil {
			t.Fatalf("request through the load balancer: %v", err)
		}
		got[inst]++
	}
	return got
}

// TestNLBServiceFollowsHealthyMembers puts a load balancer service in front of
// a pool of 3 and checks that traffic is spread over the healthy members
// only: a member whose /health fails is skipped, and an evicted member is
// taken out before it is stopped, so no request fails meanwhile.
func TestNLBServiceFollowsHealthyMembers(t *testing.T) {
	t.Parallel()
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t)})
	c := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pool := env.CreatePool(t, 3)
	nlbID, serviceID, addr := env.CreateNLBService(t, pool, 8000)
	lb, err := c.GetLoadBalancer(ctx, nlbID)
	if err != nil {
		t.Fatal(err)
	}
	if !env.NLBNet.Contains(mustAddr(t, lb.IP.String())) || lb.State != v3.LoadBalancerStateRunning || len(lb.Services) != 1 {
		t.Fatalf("load balancer = %+v, want running, an IP in %s and 1 service", lb, env.NLBNet)
	}
	svc := lb.Services[0]
	if svc.Port != 8000 || svc.TargetPort != 8080 || svc.InstancePool == nil || svc.InstancePool.ID != pool ||
		svc.Healthcheck == nil || svc.Healthcheck.URI != "/health" || svc.Protocol != "tcp" || svc.Strategy != "round-robin" {
		t.Errorf("service = %+v (healthcheck %+v)", svc, svc.Healthcheck)
	}

	list, err := c.ListInstances(ctx, v3.ListInstancesWithManagerID(pool))
	if err != nil {
		t.Fatal(err)
	}
	ipOf := map[string]string{}
	for _, inst := range list.Instances {
		ipOf[string(inst.ID)] = inst.PublicIP.String()
	}
	waitFor(t, time.Minute, "3 healthy backends", func() (bool, string) {
		h, err := serviceHealth(ctx, c, nlbID, serviceID)
		if err != nil {
			return false, err.Error()
		}
		for _, ip := range ipOf {
			if h[ip] != "success" {
				return false, "healthcheck-status " + mapString(h)
			}
		}
		return len(h) == 3, mapString(h)
	})
	got := spread(t, ctx, addr, 30)
	if len(got) != 3 {
		t.Fatalf("30 requests reached %v, want all 3 members", got)
	}
	for id, n := range got {
		if n < 5 {
			t.Errorf("member %s got %d of 30 requests, want a round-robin share (~10): %v", id, n, got)
		}
	}

	// The course's check: GET /health through the load balancer answers
	// exactly "OK" (its body is compared byte for byte).
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "OK" {
		t.Errorf("GET /health through the load balancer: %d %q, %v; want 200 \"OK\"", resp.StatusCode, body, err)
	}

	// The cloud exports the service's connection counters.
	if n := nlbConnections(t, env, serviceID); n < 30 {
		t.Errorf("tidepool_nlb_connections_total for service %s = %v, want at least the 30 requests sent", serviceID, n)
	}

	// A member whose health check fails gets no more traffic.
	var sick, evicted, kept string
	for id := range ipOf {
		switch {
		case sick == "":
			sick = id
		case evicted == "":
			evicted = id
		default:
			kept = id
		}
	}
	// The member drains only with its own token, read from the API.
	inst, err := c.GetInstance(ctx, v3.UUID(sick))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+ipOf[sick]+":8080/drain", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+inst.Labels[cloud.DrainTokenLabel])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /drain with the member's token = %d, want 200", resp.StatusCode)
	}
	waitFor(t, time.Minute, "failed health check of "+sick, func() (bool, string) {
		h, err := serviceHealth(ctx, c, nlbID, serviceID)
		if err != nil {
			return false, err.Error()
		}
		return h[ipOf[sick]] == "failure", mapString(h)
	})
	if got := spread(t, ctx, addr, 20); got[sick] != 0 || len(got) != 2 {
		t.Errorf("after %s failed its health check, 20 requests reached %v; want only the 2 others", sick, got)
	}

	// Evict a member under continuous load: no request may fail.
	var failures, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := getInstance(ctx, addr); err != nil {
					failures.Add(1)
					t.Logf("request failed during eviction: %v", err)
				} else {
					served.Add(1)
				}
			}
		}()
	}
	op, err := c.EvictInstancePoolMembers(ctx, pool, v3.EvictInstancePoolMembersRequest{Instances: []v3.UUID{v3.UUID(evicted)}})
	if err == nil {
		_, err = c.Wait(ctx, op, v3.OperationStateSuccess)
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("evict: %v", err)
	}
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed while a member was evicted, want 0", n, n+served.Load())
	}
	if got := spread(t, ctx, addr, 10); got[kept] != 10 {
		t.Errorf("after eviction 10 requests reached %v, want all on %s", got, kept)
	}
	h, err := serviceHealth(ctx, c, nlbID, serviceID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h[ipOf[evicted]]; ok {
		t.Errorf("evicted member %s still in healthcheck-status %v", evicted, mapString(h))
	}

	// The pool cannot go while a service uses it; the service and the load
	// balancer can, and the listener closes.
	if _, err := c.DeleteInstancePool(ctx, pool); !errors.Is(err, v3.ErrConflict) {
		t.Errorf("DeleteInstancePool while used: %v, want conflict", err)
	}
	op, err = c.DeleteLoadBalancerService(ctx, nlbID, serviceID)
	if err == nil {
		_, err = c.Wait(ctx, op, v3.OperationStateSuccess)
	}
	if err != nil {
		t.Fatalf("delete service: %v", err)
	}
	if _, err := c.GetLoadBalancerService(ctx, nlbID, serviceID); !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("GetLoadBalancerService after delete: %v, want not found", err)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("service address %s still accepts connections after delete", addr)
	}
	op, err = c.DeleteLoadBalancer(ctx, nlbID)
	if err == nil {
		_, err = c.Wait(ctx, op, v3.OperationStateSuccess)
	}
	if err != nil {
		t.Fatalf("delete load balancer: %v", err)
	}
	if _, err := c.GetLoadBalancer(ctx, nlbID); !errors.Is(err, v3.ErrNotFound) {
		t.Errorf("GetLoadBalancer after delete: %v, want not found", err)
	}
}

func mapString(m map[string]string) string {
	s := ""
	for k, v := range m {
		s += k + "=" + v + " "
	}
	return s
}

// nlbConnections sums tidepool_nlb_connections_total of a service as the
// Cloud collector reports it.
func nlbConnections(t *testing.T, env *cloudtest.Env, serviceID v3.UUID) float64 {
	t.Helper()
	var sum float64
	for _, smp := range nlbSamples(t, env, "tidepool_nlb_connections_total", serviceID) {
		sum += smp.value
	}
	return sum
}

// nlbSample is one series of a load balancer service.
type nlbSample struct {
	labels map[string]string
	value  float64 // of a counter or gauge
}

// nlbSamples returns the series called name of a service as the Cloud
// collector reports them.
func nlbSamples(t *testing.T, env *cloudtest.Env, name string, serviceID v3.UUID) []nlbSample {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(env.Cloud)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather cloud metrics: %v", err)
	}
	var out []nlbSample
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			smp := nlbSample{labels: map[string]string{}, value: m.GetCounter().GetValue() + m.GetGauge().GetValue()}
			for _, l := range m.GetLabel() {
				smp.labels[l.GetName()] = l.GetValue()
			}
			if smp.labels["service"] == string(serviceID) {
				out = append(out, smp)
			}
		}
	}
	return out
}

// TestNLBPortableDataPath runs the load balancers of a cloud configured with
// the portable data path (tidepool cloud --nlb-datapath portable): the
// service reports that path and requests flow through it to every member.
func TestNLBPortableDataPath(t *testing.T) {
	t.Parallel()
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t), NLBDataPath: nlb.DataPathPortable})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	pool := env.CreatePool(t, 2)
	nlbID, serviceID, addr := env.CreateNLBService(t, pool, 8000)
	waitFor(t, time.Minute, "2 healthy backends", func() (bool, string) {
		h, err := serviceHealth(ctx, env.Client, nlbID, serviceID)
		if err != nil {
			return false, err.Error()
		}
		ok := 0
		for _, st := range h {
			if st == "success" {
				ok++
			}
		}
		return ok == 2, mapString(h)
	})
	info := nlbSamples(t, env, "tidepool_nlb_data_path_info", serviceID)
	if len(info) != 1 || info[0].labels["data_path"] != string(nlb.DataPathPortable) || info[0].value != 1 {
		t.Errorf("tidepool_nlb_data_path_info of service %s = %v, want one series data_path=portable 1", serviceID, info)
	}
	if got := spread(t, ctx, addr, 10); len(got) != 2 {
		t.Errorf("10 requests reached %v, want both members", got)
	}
	if n := nlbConnections(t, env, serviceID); n < 10 {
		t.Errorf("tidepool_nlb_connections_total for service %s = %v, want at least the 10 requests sent", serviceID, n)
	}
}
