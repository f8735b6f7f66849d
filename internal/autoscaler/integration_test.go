package autoscaler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/buildbin"
	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/exoclient"
	"tidepool/internal/promrun"
)

// Integration tests: the autoscaler drives the local cloud (internal/cloud,
// real `tidepool app` member processes and a real TCP load balancer) through
// the real egoscale v3 client.

// startAutoscaler runs an autoscaler for the cloudtest pool on a loopback
// port. Ticks are driven by the test calling a.Tick (the ticker channel never
// fires). It returns the base URL; Run is stopped at cleanup.
func startAutoscaler(t *testing.T, env *cloudtest.Env, poolID v3.UUID, edit func(*Config)) (*Autoscaler, string) {
	t.Helper()
	client, err := exoclient.New(exoclient.Config{Key: env.Key, Secret: env.Secret, Zone: env.Zone, Endpoint: env.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testLogger(t)
	cfg := Config{
		Cloud:     client,
		PoolID:    string(poolID),
		Policy:    policy.Webhook{Limits: policy.Limits{Min: 1, Max: 4}},
		Listener:  ln,
		Ticks:     make(chan time.Time), // never fires: the test ticks
		RetryBase: 100 * time.Millisecond,
		Logger:    log,
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return within 15s of cancel")
		}
	})
	return a, "http://" + ln.Addr().String()
}

// send makes one HTTP request and returns the status code.
func send(t *testing.T, method, url, body string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func tick(t *testing.T, a *Autoscaler) policy.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := a.Tick(ctx)
	if err != nil {
		t.Fatalf("Tick: %v (decision %+v)", err, d)
	}
	return d
}

// poolState returns the pool's size and member IDs from the cloud.
func poolState(t *testing.T, env *cloudtest.Env, id v3.UUID) (int, []string) {
	t.Helper()
	p, err := env.Client.GetInstancePool(context.Background(), id)
	if err != nil {
		t.Fatalf("GetInstancePool: %v", err)
	}
	var ids []string
	for _, in := range p.Instances {
		ids = append(ids, string(in.ID))
	}
	return int(p.Size), ids
}

func TestIntegrationSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	env := cloudtest.Start(t, cloudtest.Options{})
	poolID := env.CreatePool(t, 1)
	a, base := startAutoscaler(t, env, poolID, nil)

	steps := []struct {
		name       string
		method     string
		path       string
		body       string
		wantReason policy.Reason
		wantSize   int
	}{
		{"POST /down at size 1", http.MethodPost, "/down", "", policy.ReasonAtMin, 1},
		{"PUT /up", http.MethodPut, "/up", "", policy.ReasonUpSignal, 2},
		{"POST /up", http.MethodPost, "/up", "", policy.ReasonUpSignal, 3},
		{"Alertmanager payload", http.MethodPost, "/webhook", readTestdata(t, "alertmanager-v4-firing-up.json"), policy.ReasonUpSignal, 4},
		{"POST /up at max", http.MethodPost, "/up", "", policy.ReasonAtMax, 4},
		{"Grafana payload", http.MethodPost, "/webhook", readTestdata(t, "grafana-firing-down.json"), policy.ReasonDownSignal, 3},
		{"POST /down", http.MethodPost, "/down", "", policy.ReasonDownSignal, 2},
		{"resolved payload does nothing", http.MethodPost, "/up", readTestdata(t, "alertmanager-v4-resolved.json"), policy.ReasonNoSignal, 2},
	}
	for _, s := range steps {
		newest := newestMember(t, env, poolID)
		if code := send(t, s.method, base+s.path, s.body); code != http.StatusOK {
			t.Fatalf("%s: %s %s = %d, want 200", s.name, s.method, s.path, code)
		}
		d := tick(t, a)
		size, after := poolState(t, env, poolID)
		if d.Reason != s.wantReason || size != s.wantSize || len(after) != s.wantSize {
			t.Fatalf("%s: decision %q (%s), pool size %d with %d members; want %s and size %d",
				s.name, d.Message, d.Reason, size, len(after), s.wantReason, s.wantSize)
		}
		if d.Action == policy.ActionScaleDown {
			// The victim is the newest member, and it left.
			if !slices.Equal(d.Victims, []string{newest}) {
				t.Errorf("%s: victims %v, want the newest member %s", s.name, d.Victims, newest)
			}
			if slices.Contains(after, newest) {
				t.Errorf("%s: victim %s still in the pool", s.name, newest)
			}
		}
		t.Logf("%s: %s", s.name, d.Message)
	}
	if err := env.WaitPoolRunning(context.Background(), poolID); err != nil {
		t.Fatal(err)
	}
}

// newestMember returns the pool member with the latest creation time
// according to the cloud (ties broken by the larger ID, as policy.Victims).
func newestMember(t *testing.T, env *cloudtest.Env, poolID v3.UUID) string {
	t.Helper()
	list, err := env.Client.ListInstances(context.Background(), v3.ListInstancesWithManagerID(poolID))
	if err != nil {
		t.Fatal(err)
	}
	var newest string
	var at time.Time
	for _, in := range list.Instances {
		id := string(in.ID)
		if newest == "" || in.CreatedAT.After(at) || (in.CreatedAT.Equal(at) && id > newest) {
			newest, at = id, in.CreatedAT
		}
	}
	return newest
}

// loadResult counts the outcome of requests through the NLB.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	byInstance map[string]int
}

// runLoad sends GET / through addr from workers goroutines, one new TCP
// connection per request (so every request is balanced), until stop is
// closed.
func runLoad(addr string, workers int, stop <-chan struct{}) (*loadResult, *sync.WaitGroup) {
	res := &loadResult{byInstance: map[string]int{}}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + addr + "/")
				if err != nil {
					res.fail(err.Error())
					continue
				}
				var body struct {
					Instance string `json:"instance"`
				}
				derr := json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || derr != nil {
					res.fail(fmt.Sprintf("status %d, decode %v", resp.StatusCode, derr))
					continue
				}
				res.ok.Add(1)
				res.mu.Lock()
				res.byInstance[body.Instance]++
				res.mu.Unlock()
			}
		}()
	}
	return res, &wg
}

func (r *loadResult) fail(msg string) {
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 10 {
		r.errs = append(r.errs, msg)
	}
}

func (r *loadResult) served(instance string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byInstance[instance]
}

// waitHealthy waits until the NLB service reports n members passing.
func waitHealthy(t *testing.T, env *cloudtest.Env, nlbID, svcID v3.UUID, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		svc, err := env.Client.GetLoadBalancerService(context.Background(), nlbID, svcID)
		healthy := 0
		if err == nil {
			for _, st := range svc.HealthcheckStatus {
				if st.Status == v3.LoadBalancerServerStatusStatusSuccess {
					healthy++
				}
			}
		}
		if healthy == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NLB service has %d healthy members (err %v), want %d", healthy, err, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestIntegrationScaleInUnderLoadFailsNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	// Load before, during and after the scale-in.
	var res *loadResult
	victim := scaleInUnderLoad(t, 20, 0, func(addr string, stop <-chan struct{}) (func() int64, *sync.WaitGroup) {
		var wg *sync.WaitGroup
		res, wg = runLoad(addr, 4, stop)
		return res.ok.Load, wg
	})
	t.Logf("requests ok %d, failed %d, by instance %v", res.ok.Load(), res.failed.Load(), res.byInstance)
	if n := res.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the scale-in, want 0: %v", n, res.errs)
	}
	if res.served(victim) == 0 {
		t.Errorf("the victim %s served no request: the load did not cover it", victim)
	}
	if res.ok.Load() < 40 {
		t.Errorf("only %d requests succeeded: not a steady load", res.ok.Load())
	}
}

// TestIntegrationBinary runs the real `tidepool autoscaler` configured by the
// course's environment variables (with the explicit opt-in to the course's
// open contract) against the local cloud, scales up through GET /up, then
// checks that SIGTERM during a scale-in exits 0 within 10s.
func TestIntegrationBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	env := cloudtest.Start(t, cloudtest.Options{})
	poolID := env.CreatePool(t, 1)
	nlbID, svcID, _ := env.CreateNLBService(t, poolID, 8000)

	var stderr syncBuffer
	cmd := exec.Command(bin, "autoscaler", "--listen", "127.0.0.1:0", "--tick", "300ms", "--max", "3",
		"--drain-grace", "30s", "--retry-base", "100ms", "--state-file", t.TempDir()+"/state.json")
	cmd.Env = append(cmd.Environ(),
		"EXOSCALE_KEY="+env.Key, "EXOSCALE_SECRET="+env.Secret, "EXOSCALE_ZONE="+env.Zone,
		"EXOSCALE_API_ENDPOINT="+env.Endpoint, "EXOSCALE_INSTANCEPOOL_ID="+string(poolID),
		"TIDEPOOL_AUTOSCALER_NLB_ID="+string(nlbID), "TIDEPOOL_AUTOSCALER_NLB_SERVICE_ID="+string(svcID),
		"TIDEPOOL_AUTOSCALER_OPEN_WEBHOOKS=true",
		"LISTEN_PORT=") // empty: ignored, --listen wins anyway
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("autoscaler stderr:\n%s", stderr.String())
		}
	})

	base := "http://" + waitFor(t, &stderr, `msg=listening addr=`, 30*time.Second)
	waitFor(t, &stderr, "webhooks are open", time.Second)
	if code := send(t, http.MethodGet, base+"/up", ""); code != http.StatusOK {
		t.Fatalf("GET /up = %d", code)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if size, ids := poolState(t, env, poolID); size == 2 && len(ids) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pool did not grow to 2 after GET /up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "from 1 to 2 because a scale-up signal arrived") {
		t.Errorf("log lacks the decision message")
	}
	if err := env.WaitPoolRunning(context.Background(), poolID); err != nil {
		t.Fatal(err)
	}

	// SIGTERM while the scale-in waits for in-flight requests (30s grace).
	if code := send(t, http.MethodGet, base+"/down", ""); code != http.StatusOK {
		t.Fatalf("GET /down = %d", code)
	}
	waitFor(t, &stderr, "waiting for in-flight requests", 60*time.Second)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("autoscaler exited with %v, want 0", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("autoscaler took %s to exit after SIGTERM, want < 10s", took)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("autoscaler did not exit within 20s of SIGTERM")
	}
	// The drained member was evicted, not left drained in the pool.
	if size, ids := poolState(t, env, poolID); size != 1 || len(ids) != 1 {
		t.Errorf("after shutdown mid scale-in: pool size %d with %d members, want 1", size, len(ids))
	}
}

// waitFor waits until buf contains marker and returns the rest of that line
// (up to the next space).
func waitFor(t *testing.T, buf *syncBuffer, marker string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := buf.String()
		if i := strings.Index(s, marker); i >= 0 {
			rest := s[i+len(marker):]
			if j := strings.IndexAny(rest, " \n"); j >= 0 {
				rest = rest[:j]
			}
			return rest
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged within %s", marker, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRealAlertmanagerWebhook has the real Alertmanager deliver its version 4
// webhook (with bearer authorization) for a firing and then a resolved alert.
func TestRealAlertmanagerWebhook(t *testing.T) {
	amBin, err := promrun.AlertmanagerBinary()
	if err != nil {
		t.Fatalf("this test needs the real Alertmanager: %v", err)
	}
	f := newLocalCloud(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.Listener = ln; c.Ticks = make(chan time.Time); c.AuthToken = "am-token" })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	dir := t.TempDir()
	conf := fmt.Sprintf(`route:
  receiver: autoscaler
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: autoscaler
    webhook_configs:
      - url: http://%s/webhook
        send_resolved: true
        http_config:
          authorization:
            credentials: am-token
`, ln.Addr())
	if err := writeFile(dir+"/am.yml", conf); err != nil {
		t.Fatal(err)
	}
	amLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	amAddr := amLn.Addr().String()
	amLn.Close()
	var amOut syncBuffer
	am := exec.Command(amBin, "--config.file="+dir+"/am.yml", "--storage.path="+dir+"/data",
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	am.Stdout, am.Stderr = &amOut, &amOut
	if err := am.Start(); err != nil {
		t.Fatal(err)
	}
	amDone := make(chan struct{})
	go func() { am.Wait(); close(amDone) }()
	t.Cleanup(func() {
		am.Process.Signal(syscall.SIGTERM)
		select {
		case <-amDone:
		case <-time.After(10 * time.Second):
			am.Process.Kill()
			<-amDone
		}
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", amOut.String())
		}
	})

	post := func(endsAt time.Time) {
		t.Helper()
		alerts := []map[string]any{{
			"labels":      map[string]string{"alertname": "TidepoolHighCPU", "scale": "up"},
			"annotations": map[string]string{"summary": "high CPU"},
			"startsAt":    time.Now().Add(-time.Minute).Format(time.RFC3339),
			"endsAt":      endsAt.Format(time.RFC3339),
		}}
		body, _ := json.Marshal(alerts)
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Post("http://"+amAddr+"/api/v2/alerts", "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("cannot post alerts to Alertmanager: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitWebhooks := func(result string, n float64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for counterValue(t, a.metrics.webhooks.WithLabelValues("/webhook", result)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q webhook from Alertmanager within 60s", result)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	post(time.Now().Add(time.Hour))
	waitWebhooks(hookRecorded, 1)
	if got := a.Status().Pending; got.Up < 1 || got.Down != 0 {
		t.Errorf("pending = %+v after the firing alert, want up", got)
	}
	d, err := a.Tick(context.Background())
	if err != nil || d.To != 2 {
		t.Fatalf("Tick = %+v, %v; want from 1 to 2", d, err)
	}

	post(time.Now().Add(-time.Second)) // resolve it
	waitWebhooks(hookIgnored, 1)
	if got := a.Status().Pending; got != (policy.Pending{}) {
		t.Errorf("pending = %+v after the resolved alert, want none", got)
	}
	if n := counterValue(t, a.metrics.webhooks.WithLabelValues("/webhook", hookUnauthorized)); n != 0 {
		t.Errorf("%v unauthorized webhooks: Alertmanager's bearer token was refused", n)
	}
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o644)
}
