package discover

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"

	"tidepool/internal/cloud/cloudtest"
)

// localCloud is the local cloud (cloudtest: internal/cloud serving the
// Exoscale API, real member processes) with one running pool, and the fault
// every API request meets until it is cleared (none at first). Tests reach
// it through the real egoscale v3 client.
type localCloud struct {
	env      *cloudtest.Env
	poolID   string
	poolName string

	fault    atomic.Pointer[cloudtest.Fault]
	requests atomic.Int64
}

// Faults the agent must survive.
var (
	faultServer    = &cloudtest.Fault{Status: http.StatusInternalServerError}
	faultUnavail   = &cloudtest.Fault{Status: http.StatusServiceUnavailable, Body: "upstream unavailable", ContentType: "text/plain"}
	faultMalformed = &cloudtest.Fault{Body: `{"instances":[{"id":`}
	faultHang      = &cloudtest.Fault{Delay: time.Hour} // until the client gives up
)

// cloudtestUA marks the requests of cloudtest's own client (Env.Client),
// which the test uses to read and change the cloud: they meet no fault and
// are not counted.
const cloudtestUA = "tidepool-cloudtest"

// newLocalCloud starts a local cloud with a running pool of size members.
func newLocalCloud(t *testing.T, size int) *localCloud {
	t.Helper()
	lc := &localCloud{}
	lc.env = cloudtest.Start(t, cloudtest.Options{Fault: func(r *http.Request) (cloudtest.Fault, bool) {
		if strings.Contains(r.UserAgent(), cloudtestUA) {
			return cloudtest.Fault{}, false // the test's own calls
		}
		lc.requests.Add(1)
		if f := lc.fault.Load(); f != nil {
			return *f, true
		}
		return cloudtest.Fault{}, false
	}})
	id := lc.env.CreatePool(t, size)
	lc.poolID = string(id)
	p, err := lc.env.Client.GetInstancePool(context.Background(), id)
	if err != nil {
		t.Fatalf("get pool: %v", err)
	}
	lc.poolName = p.Name
	return lc
}

// setFault makes every request meet f from now on; nil clears it.
func (lc *localCloud) setFault(f *cloudtest.Fault) { lc.fault.Store(f) }

// requestCount is the number of requests the agents sent so far.
func (lc *localCloud) requestCount() int { return int(lc.requests.Load()) }

// deletePool deletes the pool (its members stop) and waits for it.
func deletePool(t *testing.T, lc *localCloud) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), itWait)
	defer cancel()
	op, err := lc.env.Client.DeleteInstancePool(ctx, v3.UUID(lc.poolID))
	if err != nil {
		t.Fatalf("delete pool: %v", err)
	}
	if _, err := lc.env.Client.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatalf("delete pool: %v", err)
	}
}

func (lc *localCloud) endpoint() string { return lc.env.Endpoint }

// pool describes the pool as the agent's labels do.
func (lc *localCloud) pool() Pool {
	return Pool{ID: lc.poolID, Name: lc.poolName, Zone: lc.env.Zone}
}

// members returns the pool's targets (node exporter port) as the cloud
// has them now.
func (lc *localCloud) members(t *testing.T) []member {
	return poolTruth(t, lc.env, v3.UUID(lc.poolID), DefaultPort)
}

// newTestClient returns a real egoscale v3 client for endpoint, without
// egoscale's retrying transport, closing its idle connections at cleanup.
func newTestClient(t *testing.T, endpoint, key, secret string) *v3.Client {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := v3.NewClient(credentials.NewStaticCredentials(key, secret),
		v3.ClientOptWithEndpoint(v3.Endpoint(endpoint)), v3.ClientOptWithHTTPClient(hc))
	if err != nil {
		t.Fatalf("egoscale client: %v", err)
	}
	return c
}

// memClient is an in-memory Client for tests that need thousands of
// refreshes without HTTP; members may be swapped at any time.
type memClient struct {
	mu      sync.Mutex
	pool    v3.InstancePool
	members []v3.ListInstancesResponseInstances
	err     error
}

var _ Client = (*memClient)(nil)

func (c *memClient) set(members []v3.ListInstancesResponseInstances, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members, c.err = members, err
}

func (c *memClient) GetInstancePool(_ context.Context, id v3.UUID) (*v3.InstancePool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	if id != c.pool.ID {
		return nil, v3.ErrNotFound
	}
	p := c.pool
	return &p, nil
}

func (c *memClient) ListInstancePools(context.Context) (*v3.ListInstancePoolsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	return &v3.ListInstancePoolsResponse{InstancePools: []v3.InstancePool{c.pool}}, nil
}

func (c *memClient) ListInstances(_ context.Context, _ ...v3.ListInstancesOpt) (*v3.ListInstancesResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	return &v3.ListInstancesResponse{Instances: append([]v3.ListInstancesResponseInstances(nil), c.members...)}, nil
}
