package autoscaler

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/exoclient"
)

// testCloud is what newTestAutoscaler points an autoscaler at: the local
// cloud, or the fake where the local cloud cannot produce the case.
type testCloud interface {
	apiClient() *v3.Client
	pool() string
}

// localCloud is the local cloud (cloudtest: internal/cloud serving the
// Exoscale API, real member processes) with one running pool, reached
// through the egoscale client the autoscaler gets. Every request of that
// client is logged by route (routePool, routeScale, ...), and faults queued
// for a route hit its next requests.
type localCloud struct {
	env    *cloudtest.Env
	client *v3.Client
	poolID string

	mu       sync.Mutex
	calls    []string
	failures map[string][]cloudtest.Fault
}

var _ testCloud = (*localCloud)(nil)

// autoscalerUA marks the requests of the autoscaler under test (the test's
// own reads of the cloud are not logged).
const autoscalerUA = "tidepool-autoscaler-under-test"

// newLocalCloud starts a local cloud with a running pool of size members.
func newLocalCloud(t *testing.T, size int) *localCloud {
	t.Helper()
	c := &localCloud{failures: map[string][]cloudtest.Fault{}}
	c.env = cloudtest.Start(t, cloudtest.Options{Fault: c.fault})
	c.poolID = string(c.env.CreatePool(t, size))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	var err error
	c.client, err = exoclient.New(exoclient.Config{
		Key: c.env.Key, Secret: c.env.Secret, Endpoint: c.env.Endpoint, Transport: tr, UserAgent: autoscalerUA,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *localCloud) apiClient() *v3.Client { return c.client }
func (c *localCloud) pool() string          { return c.poolID }

// route names a request as the fake's routes do.
func route(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	switch parts := strings.Split(p, "/"); {
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "instance-pool":
		return routePool
	case r.Method == http.MethodPut && len(parts) == 2 && parts[0] == "instance-pool" && strings.HasSuffix(p, ":scale"):
		return routeScale
	case r.Method == http.MethodPut && len(parts) == 2 && parts[0] == "instance-pool" && strings.HasSuffix(p, ":evict"):
		return routeEvict
	case r.Method == http.MethodGet && p == "instance":
		return routeList
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "instance":
		return routeGetInst
	case r.Method == http.MethodGet && len(parts) == 4 && parts[0] == "load-balancer" && parts[2] == "service":
		return routeService
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "operation":
		return routeOp
	}
	return r.Method + " " + p
}

// fault is the cloudtest.Options.Fault of the cloud: it logs the
// autoscaler's requests and hands out the queued faults.
func (c *localCloud) fault(r *http.Request) (cloudtest.Fault, bool) {
	if !strings.Contains(r.UserAgent(), autoscalerUA) {
		return cloudtest.Fault{}, false
	}
	rt := route(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, rt)
	q := c.failures[rt]
	if len(q) == 0 {
		return cloudtest.Fault{}, false
	}
	c.failures[rt] = q[1:]
	return q[0], true
}

// fail queues faults for the next requests of route, one each.
func (c *localCloud) fail(route string, fs ...cloudtest.Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures[route] = append(c.failures[route], fs...)
}

func (c *localCloud) callCount(route string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.calls {
		if r == route {
			n++
		}
	}
	return n
}

func (c *localCloud) callLog() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// poolSize reads the pool's size from the cloud; -1 if it cannot.
func (c *localCloud) poolSize() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.env.Client.GetInstancePool(ctx, v3.UUID(c.poolID))
	if err != nil {
		return -1
	}
	return int(p.Size)
}

// noCloud is a testCloud for tests that never reach a cloud (webhook
// parsing, configuration checks).
type noCloud struct{ t *testing.T }

func (n noCloud) apiClient() *v3.Client { return offlineClient(n.t) }
func (n noCloud) pool() string          { return "7b6c1a1e-0000-4000-8000-000000000001" }

// offlineClient is an egoscale client for tests that never reach a cloud
// (configuration checks, webhook parsing): its endpoint refuses connections.
func offlineClient(t *testing.T) *v3.Client {
	t.Helper()
	c, err := exoclient.New(exoclient.Config{Key: "EXOtest", Secret: "secret", Endpoint: "http://127.0.0.1:1/v2"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
