package discover

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"
)

// fakeCloud is a small httptest server speaking the Exoscale v2 JSON of the
// three calls the agent makes (field names from
// ../shared/reference/exoscale-openapi-v2.yaml from the repository root), with injectable faults.
// Tests reach it through the real egoscale v3 client.
type fakeCloud struct {
	srv *httptest.Server
	key string

	mu       sync.Mutex
	pools    []fakePool
	fault    fault
	requests int
}

type fakePool struct {
	ID, Name string
	Members  []fakeInstance
}

type fakeInstance struct {
	ID, Name, IP, State string
}

// fault makes the fake cloud misbehave on every request until cleared.
type fault int

const (
	faultNone      fault = iota
	faultServer          // 500 with a JSON message
	faultUnavail         // 503 with a plain-text body
	faultMalformed       // 200 with a truncated JSON body
	faultHang            // no answer until the client gives up
)

func newFakeCloud(t *testing.T) *fakeCloud {
	t.Helper()
	fc := &fakeCloud{key: "EXOtestkey"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/instance-pool", fc.handle(fc.listPools))
	mux.HandleFunc("GET /v2/instance-pool/{id}", fc.handle(fc.getPool))
	mux.HandleFunc("GET /v2/instance", fc.handle(fc.listInstances))
	fc.srv = httptest.NewServer(mux)
	t.Cleanup(fc.srv.Close)
	return fc
}

func (fc *fakeCloud) endpoint() string { return fc.srv.URL + "/v2" }

func (fc *fakeCloud) setPools(pools ...fakePool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.pools = pools
}

func (fc *fakeCloud) setFault(f fault) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.fault = f
}

func (fc *fakeCloud) requestCount() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.requests
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // test server; the client sees a broken body
}

func (fc *fakeCloud) handle(h func(r *http.Request) (int, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fc.mu.Lock()
		fc.requests++
		f := fc.fault
		fc.mu.Unlock()
		if !strings.HasPrefix(r.Header.Get("Authorization"), "EXO2-HMAC-SHA256 credential="+fc.key+",") {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "Invalid request signature"})
			return
		}
		switch f {
		case faultServer:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "internal error"})
			return
		case faultUnavail:
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		case faultMalformed:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"instances":[{"id":`)) //nolint:errcheck // test server
			return
		case faultHang:
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
			return
		}
		code, body := h(r)
		writeJSON(w, code, body)
	}
}

func poolJSON(p fakePool) map[string]any {
	ids := []map[string]any{}
	for _, m := range p.Members {
		ids = append(ids, map[string]any{"id": m.ID})
	}
	return map[string]any{"id": p.ID, "name": p.Name, "size": len(p.Members), "state": "running", "instances": ids}
}

func (fc *fakeCloud) listPools(*http.Request) (int, any) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	out := []map[string]any{}
	for _, p := range fc.pools {
		out = append(out, poolJSON(p))
	}
	return http.StatusOK, map[string]any{"instance-pools": out}
}

func (fc *fakeCloud) getPool(r *http.Request) (int, any) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, p := range fc.pools {
		if p.ID == r.PathValue("id") {
			return http.StatusOK, poolJSON(p)
		}
	}
	return http.StatusNotFound, map[string]string{"message": "resource not found"}
}

func (fc *fakeCloud) listInstances(r *http.Request) (int, any) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	q := r.URL.Query()
	out := []map[string]any{}
	for _, p := range fc.pools {
		if id := q.Get("manager-id"); id != "" && id != p.ID {
			continue
		}
		for _, m := range p.Members {
			in := map[string]any{
				"id": m.ID, "name": m.Name, "state": m.State,
				"manager": map[string]any{"id": p.ID, "type": "instance-pool"},
			}
			if m.IP != "" {
				in["public-ip"] = m.IP
			}
			out = append(out, in)
		}
	}
	return http.StatusOK, map[string]any{"instances": out}
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
