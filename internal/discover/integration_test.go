package discover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/cloud/cloudtest"
)

// Integration tests: the agent, through the real egoscale v3 client, against
// the project's local cloud (real member processes on loopback IPs).

const (
	itInterval = time.Second
	itWait     = 2 * time.Minute // generous: the machine is shared and noisy
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("TIDEPOOL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// runAgent runs a.Run until the test ends.
func runAgent(t *testing.T, a *Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("agent Run did not return within 10s of cancel")
		}
	})
}

// member is what the file says about one target.
type member struct{ Target, InstanceID string }

// poolTruth asks the cloud, by calls other than the agent's, which members
// should be targets now: the pool's instance IDs, each fetched on its own,
// keeping those with an IP that are not being destroyed.
func poolTruth(t *testing.T, env *cloudtest.Env, poolID v3.UUID, port int) []member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := env.Client.GetInstancePool(ctx, poolID)
	if err != nil {
		t.Fatalf("get pool: %v", err)
	}
	var out []member
	for _, ref := range p.Instances {
		in, err := env.Client.GetInstance(ctx, ref.ID)
		if errors.Is(err, v3.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get instance %s: %v", ref.ID, err)
		}
		if len(in.PublicIP) == 0 || gone[string(in.State)] {
			continue
		}
		out = append(out, member{net.JoinHostPort(in.PublicIP.String(), fmt.Sprint(port)), string(in.ID)})
	}
	slices.SortFunc(out, func(a, b member) int { return strings.Compare(a.Target+a.InstanceID, b.Target+b.InstanceID) })
	return out
}

// fileMembers parses the file_sd file, checking every group's labels.
func fileMembers(t *testing.T, path string, pool Pool) ([]member, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var groups []TargetGroup
	if err := json.Unmarshal(b, &groups); err != nil {
		t.Fatalf("file %s is not valid JSON: %v\n%s", path, err, b)
	}
	var out []member
	for _, g := range groups {
		if len(g.Targets) != 1 {
			t.Fatalf("group with %d targets, want 1: %+v", len(g.Targets), g)
		}
		l := g.Labels
		if l[LabelPoolID] != pool.ID || l[LabelPoolName] != pool.Name || l[LabelZone] != pool.Zone ||
			l[LabelInstanceID] == "" || l[LabelInstanceName] == "" {
			t.Fatalf("group labels %v, want pool %+v and instance id/name", l, pool)
		}
		out = append(out, member{g.Targets[0], l[LabelInstanceID]})
	}
	return out, nil
}

// waitFollows waits until the agent has completed a refresh that started
// after the cloud's truth was read and checks that the file then equals it:
// the file follows a change within one refresh. It returns the members.
func waitFollows(t *testing.T, env *cloudtest.Env, a *Agent, poolID v3.UUID, pool Pool) []member {
	t.Helper()
	want := poolTruth(t, env, poolID, a.port)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		// refreshes_total counts refresh starts: once it reaches n+2, the
		// refresh that started after the truth was read (at most n+1) is done.
		n := metric(t, a, "tidepool_discover_refreshes_total")
		deadline := time.Now().Add(itWait)
		for metric(t, a, "tidepool_discover_refreshes_total") < n+2 {
			if time.Now().After(deadline) {
				t.Fatalf("agent made no refresh in %v", itWait)
			}
			time.Sleep(20 * time.Millisecond)
		}
		got, err := fileMembers(t, a.output, pool)
		if err != nil {
			t.Fatalf("read file: %v", err)
		}
		if slices.Equal(got, want) {
			t.Logf("file follows the pool (%d targets) %v after reading the truth",
				len(got), time.Since(start).Round(time.Millisecond))
			return got
		}
		// The truth may have moved on between our read and the agent's (a
		// member finishing its destruction, a replacement appearing): only a
		// mismatch with an unchanged truth is a failure.
		now := poolTruth(t, env, poolID, a.port)
		if slices.Equal(now, want) || attempt == 5 {
			t.Fatalf("file after one refresh:\n got %v\nwant %v", got, want)
		}
		want = now
	}
}

func scalePool(t *testing.T, env *cloudtest.Env, poolID v3.UUID, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), itWait)
	defer cancel()
	op, err := env.Client.ScaleInstancePool(ctx, poolID, v3.ScaleInstancePoolRequest{Size: int64(size)})
	if err != nil {
		t.Fatalf("scale pool to %d: %v", size, err)
	}
	if _, err := env.Client.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatalf("scale pool to %d: %v", size, err)
	}
	if err := env.WaitPoolRunning(ctx, poolID); err != nil {
		t.Fatal(err)
	}
}

// outageProxy stands between the agent and the cloud: it passes requests
// through, answers 503, or is stopped (connection refused) and restarted on
// the same address.
type outageProxy struct {
	srv     *httptest.Server
	addr    string
	handler http.Handler
	fail503 atomic.Bool
}

func newOutageProxy(t *testing.T, endpoint string) *outageProxy {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.fail503.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	})
	p.srv = httptest.NewServer(p.handler)
	p.addr = p.srv.Listener.Addr().String()
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *outageProxy) endpoint() string { return "http://" + p.addr + "/v2" }

func (p *outageProxy) stop() { p.srv.Close() }

func (p *outageProxy) restart(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("restart proxy on %s: %v", p.addr, err)
	}
	p.srv = httptest.NewUnstartedServer(p.handler)
	p.srv.Listener.Close()
	p.srv.Listener = ln
	p.srv.Start()
}

// waitErrors waits until the agent counted n more errors of kind than before.
func waitErrors(t *testing.T, a *Agent, kind string, before float64, n float64) float64 {
	t.Helper()
	deadline := time.Now().Add(itWait)
	for {
		got := metric(t, a, "tidepool_discover_refresh_errors_total", "kind", kind)
		if got >= before+n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("errors{kind=%q} = %v, want >= %v within %v", kind, got, before+n, itWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFollowsLocalCloudPool scales the pool up and down, kills a member and
// breaks the API, checking the file after each step.
func TestFollowsLocalCloudPool(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (local cloud with member processes)")
	}
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t)})
	poolID := env.CreatePool(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := env.Client.GetInstancePool(ctx, poolID)
	if err != nil {
		t.Fatal(err)
	}
	pool := Pool{ID: string(poolID), Name: p.Name, Zone: env.Zone}

	proxy := newOutageProxy(t, env.Endpoint)
	a, err := New(Config{
		Client: newTestClient(t, proxy.endpoint(), env.Key, env.Secret),
		PoolID: string(poolID), Zone: env.Zone,
		Output:   filepath.Join(t.TempDir(), "sd", "config.json"),
		Interval: itInterval, Timeout: 10 * time.Second,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	t.Log("pool of 2")
	if got := waitFollows(t, env, a, poolID, pool); len(got) != 2 {
		t.Fatalf("%d targets for a pool of 2", len(got))
	}

	t.Log("scale up to 4")
	scalePool(t, env, poolID, 4)
	if got := waitFollows(t, env, a, poolID, pool); len(got) != 4 {
		t.Fatalf("%d targets after scaling to 4", len(got))
	}

	t.Log("scale down to 2")
	scalePool(t, env, poolID, 2)
	before := waitFollows(t, env, a, poolID, pool)
	if len(before) != 2 {
		t.Fatalf("%d targets after scaling to 2", len(before))
	}

	t.Log("kill a member")
	victim := before[0]
	op, err := env.Client.DeleteInstance(ctx, v3.UUID(victim.InstanceID))
	if err != nil {
		t.Fatalf("delete instance: %v", err)
	}
	if _, err := env.Client.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatalf("delete instance: %v", err)
	}
	after := waitFollows(t, env, a, poolID, pool)
	for _, m := range after {
		if m.InstanceID == victim.InstanceID {
			t.Errorf("killed member %v still listed: %v", victim, after)
		}
	}
	if err := env.WaitPoolRunning(ctx, poolID); err != nil {
		t.Fatal(err)
	}
	waitFollows(t, env, a, poolID, pool) // the replacement, if the pool made one

	for _, outage := range []struct {
		name  string
		kind  string
		start func()
		end   func()
	}{
		{"API answers 503", KindServer, func() { proxy.fail503.Store(true) }, func() { proxy.fail503.Store(false) }},
		{"API server stopped", KindNetwork, proxy.stop, func() { proxy.restart(t) }},
	} {
		t.Log("outage: " + outage.name)
		errs := metric(t, a, "tidepool_discover_refresh_errors_total", "kind", outage.kind)
		outage.start()
		// Once a refresh has failed, none that started before the outage
		// can still publish (refreshes run one at a time): the file now is
		// the last good one.
		failed := waitErrors(t, a, outage.kind, errs, 1)
		good, err := os.ReadFile(a.output)
		if err != nil {
			t.Fatal(err)
		}
		// The pool changes during the outage; the agent cannot know.
		scalePool(t, env, poolID, 3)
		waitErrors(t, a, outage.kind, failed, 2)
		if got, err := os.ReadFile(a.output); err != nil || string(got) != string(good) {
			t.Fatalf("file changed during the outage (err %v):\n%s\nwant\n%s", err, got, good)
		}
		if code, body := getTargets(t, a); code != http.StatusOK || string(body) != string(good) {
			t.Fatalf("HTTP SD changed during the outage: %d\n%s", code, body)
		}
		outage.end()
		if got := waitFollows(t, env, a, poolID, pool); len(got) != 3 {
			t.Fatalf("%d targets after the outage, want 3", len(got))
		}
		scalePool(t, env, poolID, 2)
		waitFollows(t, env, a, poolID, pool)
	}

	t.Log("wrong credentials")
	good, err := os.ReadFile(a.output)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := New(Config{
		Client: newTestClient(t, env.Endpoint, env.Key, "wrong-secret"),
		PoolID: string(poolID), Zone: env.Zone, Output: a.output,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Refresh(ctx)
	if kind := errorKind(err); kind != KindAuth {
		t.Errorf("wrong secret: error kind %q, want %q (err %v)", kind, KindAuth, err)
	}
	if got, err := os.ReadFile(a.output); err != nil || string(got) != string(good) {
		t.Errorf("file changed after a refresh with wrong credentials (err %v)", err)
	}
}

// TestPoolByNameAgainstLocalCloud selects the pool by name, through
// ListInstancePools, and checks an unknown name is an error, not an empty file.
func TestPoolByNameAgainstLocalCloud(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (local cloud with member processes)")
	}
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t)})
	poolID := env.CreatePool(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), itWait)
	defer cancel()
	p, err := env.Client.GetInstancePool(ctx, poolID)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		name, poolName, wantKind string
		wantTargets              int
	}{
		{"known name", p.Name, "", 1},
		{"unknown name", "no-such-pool", KindNotFound, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, tt.name+".json")
			a, err := New(Config{Client: newTestClient(t, env.Endpoint, env.Key, env.Secret),
				PoolName: tt.poolName, Zone: env.Zone, Output: out})
			if err != nil {
				t.Fatal(err)
			}
			err = a.Refresh(ctx)
			if got := errorKind(err); got != tt.wantKind {
				t.Fatalf("error kind %q, want %q (err %v)", got, tt.wantKind, err)
			}
			if tt.wantTargets < 0 {
				if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("file written for an unknown pool (stat err %v)", err)
				}
				return
			}
			got, err := fileMembers(t, out, Pool{ID: string(poolID), Name: p.Name, Zone: env.Zone})
			if err != nil || len(got) != tt.wantTargets {
				t.Errorf("targets %v (err %v), want %d", got, err, tt.wantTargets)
			}
		})
	}
}
