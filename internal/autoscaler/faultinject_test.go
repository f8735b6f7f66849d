package autoscaler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud/cloudtest"
)

// Fault injection (issue 17): the real `tidepool autoscaler` process is
// killed with SIGKILL at every step of a scale-out and of a scale-in, then
// started again; the pool must end up changed at most once per signal
// (exactly once wherever the cloud or the state file holds the record), with
// no member left draining and no member evicted but the one chosen.
//
// The autoscaler reaches the local cloud through faultProxy, which can hold
// a chosen API request (kill before the call) or hold its response (kill
// after the call). "Mid-drain" is observed on the cloud itself: the victim
// is marked and the load balancer reports it failing, while the first
// autoscaler waits its 30 s drain grace.

// faultProxy forwards the Exoscale API to the local cloud unchanged (the
// signature covers method, path, query and body, not the host) and springs
// its trap once: on the first request matching it, before forwarding it or
// after the cloud answered it, it reports on sprung and waits for release.
type faultProxy struct {
	srv   *httptest.Server
	rp    *httputil.ReverseProxy
	trap  *trap
	mu    sync.Mutex
	evict []string // bodies of every evict request forwarded
}

type trap struct {
	method string
	path   *regexp.Regexp
	after  bool // hold the response rather than the request
	once   sync.Once
	sprung chan struct{}
	free   chan struct{}
}

func newTrap(method, path string, after bool) *trap {
	return &trap{method: method, path: regexp.MustCompile(path), after: after, sprung: make(chan struct{}), free: make(chan struct{})}
}

// catch reports whether r springs the trap (only the first match does) and
// then blocks until the test releases it.
func (tr *trap) catch(r *http.Request) bool {
	if tr == nil || r.Method != tr.method || !tr.path.MatchString(r.URL.Path) {
		return false
	}
	caught := false
	tr.once.Do(func() { caught = true })
	if caught {
		close(tr.sprung)
		<-tr.free
	}
	return caught
}

func startFaultProxy(t *testing.T, endpoint string, tr *trap) *faultProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{trap: tr}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(&url.URL{Scheme: target.Scheme, Host: target.Host}) },
		ModifyResponse: func(resp *http.Response) error {
			if tr != nil && tr.after {
				tr.catch(resp.Request)
			}
			return nil
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ":evict") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			p.mu.Lock()
			p.evict = append(p.evict, string(body))
			p.mu.Unlock()
		}
		if tr != nil && !tr.after && tr.catch(r) {
			http.Error(w, "dropped by the fault proxy", http.StatusBadGateway)
			return
		}
		p.rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		if tr != nil {
			select {
			case <-tr.free:
			default:
				close(tr.free)
			}
		}
		p.srv.Close()
	})
	return p
}

// evicted returns the instance IDs named by the evict requests forwarded.
func (p *faultProxy) evicted(t *testing.T) []string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, b := range p.evict {
		var req struct {
			Instances []string `json:"instances"`
		}
		if err := json.Unmarshal([]byte(b), &req); err != nil {
			t.Fatalf("evict body %q: %v", b, err)
		}
		ids = append(ids, req.Instances...)
	}
	return ids
}

// autoscalerProc is one run of the real binary.
type autoscalerProc struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	exited chan error
	base   string
}

func startAutoscalerProc(t *testing.T, bin string, env *cloudtest.Env, endpoint string, poolID, nlbID, svcID v3.UUID, extra ...string) *autoscalerProc {
	t.Helper()
	args := append([]string{"autoscaler", "--listen", "127.0.0.1:0", "--tick", "300ms", "--min", "1", "--max", "4",
		"--nlb-id", string(nlbID), "--nlb-service-id", string(svcID), "--app-port", "8080",
		"--drain-timeout", "30s", "--retry-base", "100ms", "--log-level", "debug"}, extra...)
	p := &autoscalerProc{cmd: exec.Command(bin, args...), exited: make(chan error, 1)}
	p.cmd.Env = append(p.cmd.Environ(),
		"EXOSCALE_KEY="+env.Key, "EXOSCALE_SECRET="+env.Secret, "EXOSCALE_ZONE="+env.Zone,
		"EXOSCALE_API_ENDPOINT="+endpoint, "EXOSCALE_INSTANCEPOOL_ID="+string(poolID), "LISTEN_PORT=")
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("autoscaler %v stderr:\n%s", args[len(args)-len(extra):], p.stderr.String())
		}
	})
	p.base = "http://" + waitFor(t, &p.stderr, "msg=listening addr=", 30*time.Second)
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *autoscalerProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// killStep says where the first autoscaler is killed.
type killStep struct {
	name string
	trap func() *trap // nil: killed on the cloud's state (mid-drain)
	// lost: without a state file the signal may be lost (it was only in the
	// killed process's memory and nothing reached the cloud yet).
	lost bool
}

const memberPath = `^/v2/instance/[0-9a-f-]+$`

func TestFaultInjectionSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the autoscaler binary against the local cloud many times")
	}
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	scaleOut := []killStep{
		{"before the scale call", func() *trap { return newTrap(http.MethodPut, `:scale$`, false) }, true},
		{"after the scale call", func() *trap { return newTrap(http.MethodPut, `:scale$`, true) }, false},
	}
	scaleIn := []killStep{
		{"before the draining mark", func() *trap { return newTrap(http.MethodPut, memberPath, false) }, true},
		{"after the draining mark", func() *trap { return newTrap(http.MethodPut, memberPath, true) }, false},
		{"mid-drain", nil, false},
		{"before the evict call", func() *trap { return newTrap(http.MethodPut, `:evict$`, false) }, false},
		{"after the evict call", func() *trap { return newTrap(http.MethodPut, `:evict$`, true) }, false},
	}
	for _, withState := range []bool{true, false} {
		mode := map[bool]string{true: "state file", false: "no state file"}[withState]
		for _, st := range scaleOut {
			t.Run("scale-out/"+st.name+"/"+mode, func(t *testing.T) { faultCase(t, bin, "/up", st, withState) })
		}
		for _, st := range scaleIn {
			t.Run("scale-in/"+st.name+"/"+mode, func(t *testing.T) { faultCase(t, bin, "/down", st, withState) })
		}
	}
}

// faultCase runs one kill: a pool of 2 behind a load balancer, one signal,
// SIGKILL at the step, a restart, then the checks.
func faultCase(t *testing.T, bin, signalPath string, step killStep, withState bool) {
	env := cloudtest.Start(t, cloudtest.Options{})
	poolID := env.CreatePool(t, 2)
	nlbID, svcID, _ := env.CreateNLBService(t, poolID, 8000)
	waitHealthy(t, env, nlbID, svcID, 2)
	_, before := poolState(t, env, poolID)
	victim := newestMember(t, env, poolID)

	var tr *trap
	if step.trap != nil {
		tr = step.trap()
	}
	proxy := startFaultProxy(t, env.Endpoint, tr)
	endpoint := proxy.srv.URL + "/v2"
	var stateArgs []string
	if withState {
		stateArgs = []string{"--state-file", t.TempDir() + "/state.json"}
	}

	// Mid-drain is observed on the cloud: a long grace keeps the first run
	// there until it is killed. Elsewhere the proxy stops it in time.
	grace := "500ms"
	if tr == nil {
		grace = "30s"
	}
	first := startAutoscalerProc(t, bin, env, endpoint, poolID, nlbID, svcID, append([]string{"--drain-grace", grace}, stateArgs...)...)
	if code := send(t, http.MethodPost, first.base+signalPath, ""); code != http.StatusOK {
		t.Fatalf("POST %s = %d", signalPath, code)
	}
	if tr != nil {
		select {
		case <-tr.sprung:
		case <-time.After(60 * time.Second):
			t.Fatalf("the autoscaler never reached the step %q", step.name)
		}
		first.kill()
		close(tr.free)
	} else {
		waitMidDrain(t, env, nlbID, svcID, victim)
		first.kill()
	}

	second := startAutoscalerProc(t, bin, env, endpoint, poolID, nlbID, svcID, append([]string{"--drain-grace", "500ms"}, stateArgs...)...)
	want := len(before) + 1
	if signalPath == "/down" {
		want = len(before) - 1
	}
	if step.lost && !withState {
		want = len(before) // the signal died with the process: no change, which is at most one
	}
	members := waitSettled(t, env, poolID, nlbID, svcID, want)

	// At most one change per signal: the size holds over several more ticks.
	time.Sleep(6 * 300 * time.Millisecond)
	if size, ids := poolState(t, env, poolID); size != want || len(ids) != want {
		t.Errorf("pool size %d (%d members) a few ticks after settling, want %d: changed again", size, len(ids), want)
	}
	// Only the chosen victim was evicted, by the first or the second run.
	for _, id := range proxy.evicted(t) {
		if id != victim {
			t.Errorf("member %s evicted; only the victim %s may be", id, victim)
		}
	}
	if signalPath == "/down" && want < len(before) {
		wantMembers := slices.DeleteFunc(slices.Clone(before), func(id string) bool { return id == victim })
		slices.Sort(wantMembers)
		if !slices.Equal(members, wantMembers) {
			t.Errorf("members %v, want %v (all but the victim %s)", members, wantMembers, victim)
		}
	}
	if signalPath == "/up" {
		for _, id := range before {
			if !slices.Contains(members, id) {
				t.Errorf("member %s was removed by a scale-out", id)
			}
		}
	}
	second.kill()
	t.Logf("killed %s: pool %d -> %d, members %v", step.name, len(before), len(members), members)
}

// waitMidDrain waits until the victim is marked as draining on its instance
// and the load balancer reports it failing, while it is still a member.
func waitMidDrain(t *testing.T, env *cloudtest.Env, nlbID, svcID v3.UUID, victim string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		in, err := env.Client.GetInstance(context.Background(), v3.UUID(victim))
		if err == nil {
			if _, marked := in.Labels[DrainingLabel]; marked && memberStatus(t, env, nlbID, svcID)[in.PublicIP.String()] == v3.LoadBalancerServerStatusStatusFailure {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("victim %s never marked and failing (last: %v)", victim, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSettled waits until the pool is running at size want, no member is
// marked as draining and the load balancer sees every member healthy, and
// returns the sorted member IDs.
func waitSettled(t *testing.T, env *cloudtest.Env, poolID, nlbID, svcID v3.UUID, want int) []string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		why := settled(t, env, poolID, nlbID, svcID, want)
		if why == "" {
			_, ids := poolState(t, env, poolID)
			slices.Sort(ids)
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled within 90s: %s", why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func settled(t *testing.T, env *cloudtest.Env, poolID, nlbID, svcID v3.UUID, want int) string {
	ctx := context.Background()
	p, err := env.Client.GetInstancePool(ctx, poolID)
	if err != nil {
		return err.Error()
	}
	if p.State != v3.InstancePoolStateRunning || int(p.Size) != want || len(p.Instances) != want {
		return fmt.Sprintf("pool %s size %d with %d members, want running at %d", p.State, p.Size, len(p.Instances), want)
	}
	status := memberStatus(t, env, nlbID, svcID)
	for _, ref := range p.Instances {
		in, err := env.Client.GetInstance(ctx, ref.ID)
		if err != nil {
			return err.Error()
		}
		if _, marked := in.Labels[DrainingLabel]; marked {
			return fmt.Sprintf("member %s still marked as draining", in.ID)
		}
		if st := status[in.PublicIP.String()]; st != v3.LoadBalancerServerStatusStatusSuccess {
			return fmt.Sprintf("member %s is %q at the load balancer", in.ID, st)
		}
	}
	return ""
}
