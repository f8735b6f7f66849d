package autoscaler

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/exoclient"
)

// fakeCloud is an httptest server speaking the part of the Exoscale API v2
// JSON the autoscaler uses (paths and field names from
// ../shared/reference/exoscale-openapi-v2.yaml from the repository root), so
// tests drive the real egoscale v3 client. It holds one pool and one NLB
// service. Operations are returned pending and succeed at the first
// GET /operation unless holdOps is set.
//
// Tests use the local cloud (newLocalCloud) and keep this fake only where
// the local cloud cannot produce the case:
//   - TestTickFailedOperationIsAnError: the local cloud never ends a scale
//     operation in failure; the fake does (failOps).
//   - TestTickHolds "pool not running": a real pool is scaling-up only while
//     members boot; the fake holds that state across a tick.
//   - TestScaleInDrainsNewestThenEvicts, TestScaleInDrainTimeout: the drain
//     stand-in records the drain and sets when (or that never) the load
//     balancer sees the member fail, which real health checks cannot be
//     told; TestIntegrationScaleInUnderLoadFailsNoRequest drains for real.
type fakeCloud struct {
	t      *testing.T
	srv    *httptest.Server
	client *v3.Client

	mu      sync.Mutex
	poolID  string
	size    int
	state   string
	members []fakeMember
	nextID  int
	health  map[string]string // member IP -> NLB healthcheck status
	svcPort int64
	ops     map[string]string // operation ID -> state
	holdOps bool              // operations stay pending
	failOps bool              // operations end in failure
	calls   []string          // "METHOD route" of every call, in order
	now     func() time.Time
}

type fakeMember struct {
	id      string
	created time.Time
	ip      string
	labels  map[string]string
}

const (
	routePool    = "GET instance-pool"
	routeScale   = "PUT scale"
	routeEvict   = "PUT evict"
	routeList    = "GET instance"
	routeGetInst = "GET instance/id"
	routeUpdInst = "PUT instance/id"
	routeService = "GET service"
	routeOp      = "GET operation"
)

const fakeNLB, fakeSvc = "7b6c1a1e-0000-4000-8000-00000000a001", "7b6c1a1e-0000-4000-8000-00000000a002"

func newFakeCloud(t *testing.T, size int) *fakeCloud {
	t.Helper()
	f := &fakeCloud{
		t: t, poolID: "7b6c1a1e-0000-4000-8000-000000000001", state: "running",
		health: map[string]string{}, ops: map[string]string{},
		svcPort: 8080,
		now:     func() time.Time { return time.Date(2025, 11, 25, 10, 0, 0, 0, time.UTC) },
	}
	for range size {
		f.addMemberLocked()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/instance-pool/{id}", f.handle(routePool, f.getPool))
	mux.HandleFunc("PUT /v2/instance-pool/{action}", f.handle("", f.poolAction))
	mux.HandleFunc("GET /v2/instance", f.handle(routeList, f.listInstances))
	mux.HandleFunc("GET /v2/instance/{id}", f.handle(routeGetInst, f.getInstance))
	mux.HandleFunc("PUT /v2/instance/{id}", f.handle(routeUpdInst, f.updateInstance))
	mux.HandleFunc("GET /v2/load-balancer/{id}/service/{sid}", f.handle(routeService, f.getService))
	mux.HandleFunc("GET /v2/operation/{id}", f.handle(routeOp, f.getOperation))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	c, err := exoclient.New(exoclient.Config{Key: "EXOtest", Secret: "secret", Endpoint: f.srv.URL + "/v2"})
	if err != nil {
		t.Fatalf("exoclient.New: %v", err)
	}
	f.client = c
	return f
}

// addMemberLocked adds a member created one minute after the previous one.
func (f *fakeCloud) addMemberLocked() {
	f.nextID++
	ip := "127.0.0.1"
	m := fakeMember{
		id:      fmt.Sprintf("7b6c1a1e-0000-4000-8000-%012d", 100+f.nextID),
		created: f.now().Add(time.Duration(f.nextID) * time.Minute),
		ip:      ip,
	}
	f.members = append(f.members, m)
	f.size = len(f.members)
	f.health[ip] = "success"
}

func (f *fakeCloud) set(fn func(f *fakeCloud)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeCloud) callCount(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == route {
			n++
		}
	}
	return n
}

func (f *fakeCloud) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeCloud) poolSize() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

func (f *fakeCloud) memberIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, m := range f.members {
		ids = append(ids, m.id)
	}
	return ids
}

type fakeHandler func(r *http.Request) (status int, body any)

// handle records the call and writes JSON.
func (f *fakeCloud) handle(route string, h fakeHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if route == "" {
			switch {
			case strings.HasSuffix(r.PathValue("action"), ":scale"):
				route = routeScale
			case strings.HasSuffix(r.PathValue("action"), ":evict"):
				route = routeEvict
			}
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "EXO2-HMAC-SHA256 credential=EXOtest,") {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "bad credentials"})
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, route)
		f.mu.Unlock()
		status, body := h(r)
		writeJSON(w, status, body)
	}
}

func (f *fakeCloud) checkPool(r *http.Request, id string) (int, any) {
	if id != f.poolID {
		return http.StatusNotFound, map[string]string{"message": "instance pool " + id + " not found"}
	}
	return 0, nil
}

func (f *fakeCloud) getPool(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, body := f.checkPool(r, r.PathValue("id")); st != 0 {
		return st, body
	}
	refs := []map[string]string{}
	for _, m := range f.members {
		refs = append(refs, map[string]string{"id": m.id})
	}
	return http.StatusOK, map[string]any{"id": f.poolID, "name": "fake", "size": f.size, "state": f.state, "instances": refs}
}

func (f *fakeCloud) poolAction(r *http.Request) (int, any) {
	id, action, _ := strings.Cut(r.PathValue("action"), ":")
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, body := f.checkPool(r, id); st != 0 {
		return st, body
	}
	switch action {
	case "scale":
		var req struct {
			Size *int `json:"size"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Size == nil || *req.Size < 0 {
			return http.StatusBadRequest, map[string]string{"message": "bad size"}
		}
		for len(f.members) < *req.Size {
			f.addMemberLocked()
		}
		for len(f.members) > *req.Size {
			f.members = f.members[:len(f.members)-1]
		}
		f.size = *req.Size
	case "evict":
		var req struct {
			Instances []string `json:"instances"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Instances) == 0 {
			return http.StatusBadRequest, map[string]string{"message": "bad instances"}
		}
		for _, iid := range req.Instances {
			i := -1
			for j, m := range f.members {
				if m.id == iid {
					i = j
				}
			}
			if i < 0 {
				return http.StatusBadRequest, map[string]string{"message": "not a member: " + iid}
			}
			f.members = append(f.members[:i], f.members[i+1:]...)
		}
		f.size = len(f.members)
	default:
		return http.StatusNotFound, map[string]string{"message": "no such action"}
	}
	opID := fmt.Sprintf("7b6c1a1e-0000-4000-8000-%012d", 900+len(f.ops))
	f.ops[opID] = "pending"
	return http.StatusOK, map[string]any{"id": opID, "state": "pending", "reference": map[string]string{"id": f.poolID}}
}

func (f *fakeCloud) instanceJSON(m fakeMember) map[string]any {
	return map[string]any{"id": m.id, "name": "pool-" + m.id[len(m.id)-4:], "state": "running",
		"created-at": m.created.Format(time.RFC3339), "public-ip": m.ip, "labels": m.labels,
		"manager": map[string]string{"id": f.poolID, "type": "instance-pool"}}
}

// updateInstance replaces a member's labels (update-instance).
func (f *fakeCloud) updateInstance(r *http.Request) (int, any) {
	var req struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return http.StatusBadRequest, map[string]string{"message": "bad body"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.members {
		if m.id == r.PathValue("id") {
			if req.Labels != nil {
				f.members[i].labels = req.Labels
			}
			opID := fmt.Sprintf("7b6c1a1e-0000-4000-8000-%012d", 900+len(f.ops))
			f.ops[opID] = "pending"
			return http.StatusOK, map[string]any{"id": opID, "state": "pending", "reference": map[string]string{"id": m.id}}
		}
	}
	return http.StatusNotFound, map[string]string{"message": "instance not found"}
}

func (f *fakeCloud) listInstances(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []map[string]any{}
	if mid := r.URL.Query().Get("manager-id"); mid == "" || mid == f.poolID {
		for _, m := range f.members {
			out = append(out, f.instanceJSON(m))
		}
	}
	return http.StatusOK, map[string]any{"instances": out}
}

func (f *fakeCloud) getInstance(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m.id == r.PathValue("id") {
			return http.StatusOK, f.instanceJSON(m)
		}
	}
	return http.StatusNotFound, map[string]string{"message": "instance not found"}
}

func (f *fakeCloud) getService(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.PathValue("id") != fakeNLB || r.PathValue("sid") != fakeSvc {
		return http.StatusNotFound, map[string]string{"message": "service not found"}
	}
	status := []map[string]string{}
	for _, m := range f.members {
		status = append(status, map[string]string{"public-ip": m.ip, "status": f.health[m.ip]})
	}
	return http.StatusOK, map[string]any{"id": fakeSvc, "name": "http", "port": 80, "target-port": f.svcPort,
		"protocol": "tcp", "strategy": "round-robin", "state": "running", "healthcheck-status": status}
}

func (f *fakeCloud) getOperation(r *http.Request) (int, any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	st, ok := f.ops[id]
	if !ok {
		return http.StatusNotFound, map[string]string{"message": "operation not found"}
	}
	if st == "pending" && !f.holdOps {
		st = "success"
		if f.failOps {
			st = "failure"
		}
		f.ops[id] = st
	}
	return http.StatusOK, map[string]any{"id": id, "state": st, "reference": map[string]string{"id": f.poolID}}
}

func (f *fakeCloud) apiClient() *v3.Client { return f.client }
func (f *fakeCloud) pool() string          { return f.poolID }
