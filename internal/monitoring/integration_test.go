package monitoring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tidepool/internal/app"
	"tidepool/internal/loopback"
	"tidepool/internal/promrun"
)

// TestIntegrationFastProfile runs the fast rendering in real Prometheus and
// Alertmanager against one pool member whose fake node-exporter reports 95%
// busy CPUs and whose app is the real tidepool app. It checks that the
// scale-up webhook reaches the autoscaler's /up, is re-sent every tick while
// firing, and that every dashboard and Grafana alert query returns data.
func TestIntegrationFastProfile(t *testing.T) {
	promBin := requireTool(t, promrun.PrometheusBinary)
	amBin := requireTool(t, promrun.AlertmanagerBinary)
	profile := Fast()
	ip := loopback.Addr().String()
	tmp := t.TempDir()
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	// The pool member: node-exporter and app on one address, as on a real VM.
	nodeURL := serveOn(t, ip, fakeNodeExporter(time.Now, 0.95))
	appURL := startApp(t, ip)
	autoscaler := newFakeAutoscaler()
	autoscalerURL := serveOn(t, ip, autoscaler)

	// discover's file lists the member on the standard node-exporter port;
	// the rendered relabeling moves node and app jobs to the test's ports.
	sdPath := filepath.Join(tmp, "config.json")
	sd := fmt.Sprintf(`[{"targets": [%q], "labels": {"pool_id": "pool-1", "pool_name": "web", "zone": "ch-gva-2", "instance_id": "i-1", "instance_name": "web-1"}}]`,
		net.JoinHostPort(ip, "9100"))
	if err := os.WriteFile(sdPath, []byte(sd), 0o644); err != nil {
		t.Fatal(err)
	}
	// The autoscaler's token, sent with every webhook (closed by default).
	const token = "integration-token-4711"
	tokenPath := filepath.Join(tmp, "autoscaler-token")
	if err := os.WriteFile(tokenPath, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	promAddr, amAddr := freeAddr(t, ip), freeAddr(t, ip)
	params := Params{
		AutoscalerTokenFile: tokenPath,
		FileSDPath:          sdPath,
		NodePort:            urlPort(t, nodeURL),
		AppPort:             urlPort(t, appURL),
		AutoscalerURL:       autoscalerURL,
		AlertmanagerAddr:    amAddr,
		PrometheusURL:       "http://" + promAddr,
	}
	dir := renderTo(t, profile, params)

	am := startProcess(t, "alertmanager", amBin,
		"--config.file="+filepath.Join(dir, FileAlertmanager),
		"--storage.path="+filepath.Join(tmp, "alertmanager"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=")
	prom := startProcess(t, "prometheus", promBin,
		"--config.file="+filepath.Join(dir, FilePrometheus),
		"--storage.tsdb.path="+filepath.Join(tmp, "prometheus"),
		"--web.listen-address="+promAddr)
	procs := []*process{am, prom}

	// Steady traffic so the app's request and latency series move.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { driveTraffic(ctx, client, appURL) })

	// The scale-up webhook reaches /up, re-sent every tick while firing.
	posts := autoscaler.waitPosts(t, "/up", 4, 3*time.Minute, procs)
	first := posts[0]
	for i, p := range posts {
		if p.auth != "Bearer "+token {
			t.Errorf("webhook %d: Authorization %q, want the bearer token of %s", i, p.auth, tokenPath)
		}
	}
	if first.Version != "4" || first.Status != "firing" || first.Receiver != "autoscaler-up" ||
		first.CommonLabels["scale"] != "up" || first.CommonLabels["alertname"] != "TidepoolPoolCPUHigh" {
		t.Errorf("first /up webhook = %+v, want version 4, firing, receiver autoscaler-up, alertname TidepoolPoolCPUHigh, scale up", first)
	}
	tick := profile.AutoscalerTick
	minGap := time.Duration(1<<63 - 1)
	for i := 1; i < len(posts); i++ {
		if posts[i].Status != "firing" {
			t.Errorf("webhook %d status %q, want firing (send_resolved is false)", i, posts[i].Status)
		}
		minGap = min(minGap, posts[i].at.Sub(posts[i-1].at))
	}
	// Delays only lengthen gaps: had Alertmanager skipped every other flush,
	// no gap could be shorter than two ticks.
	if minGap >= 18*tick/10 {
		t.Errorf("shortest gap between re-sent webhooks %v, want about one tick (%v)", minGap, tick)
	}
	t.Logf("scale-up webhook re-sent %d times; shortest gap %v (tick %v)", len(posts)-1, minGap, tick)
	if n := autoscaler.count("/down"); n != 0 {
		t.Errorf("%d scale-down webhooks while CPU is 95%%, want 0", n)
	}

	// Every query of the dashboard and the Grafana alert rules returns data.
	queries, err := Queries(dir)
	if err != nil {
		t.Fatal(err)
	}
	promBase := "http://" + promAddr
	for _, q := range queries {
		samples := waitQuery(t, client, promBase, q.Expr, time.Minute)
		t.Logf("%s: %s -> %d series, first %v", q.Where, q.Expr, len(samples), samples[0].Value)
		if strings.HasPrefix(q.Where, `panel "Alerts"`) {
			// 2 firing, 1 pending, 0 inactive: at 95 % CPU the high alert
			// fires and the low one is inactive.
			states := map[string]any{}
			for _, s := range samples {
				states[s.Metric["alertname"]] = s.Value[1]
			}
			if want := map[string]any{"TidepoolPoolCPUHigh": "2", "TidepoolPoolCPULow": "0"}; fmt.Sprint(states) != fmt.Sprint(want) {
				t.Errorf("alert states %v, want %v", states, want)
			}
		}
	}

	// Values and labels, not just presence: the pool is 95% busy; both jobs
	// scrape the member at their own port with discover's labels.
	for _, c := range []struct {
		expr   string
		lo, hi float64
	}{
		{"pool:node_cpu_utilisation:avg", 0.9, 1.0},
		{fmt.Sprintf(`instance:node_cpu_utilisation:ratio{instance=%q}`, urlHost(t, nodeURL)), 0.9, 1.0},
		{fmt.Sprintf(`up{job="node",instance=%q,pool_id="pool-1",instance_name="web-1"}`, urlHost(t, nodeURL)), 1, 1},
		{fmt.Sprintf(`up{job="app",instance=%q,pool_id="pool-1",zone="ch-gva-2"}`, urlHost(t, appURL)), 1, 1},
		{"sum(rate(tidepool_app_requests_total[5s]))", 1, 1e6},
	} {
		samples := waitQuery(t, client, promBase, c.expr, time.Minute)
		v, err := strconv.ParseFloat(samples[0].Value[1].(string), 64)
		if err != nil || v < c.lo || v > c.hi {
			t.Errorf("%s = %v (%v), want in [%v, %v]", c.expr, samples[0].Value[1], err, c.lo, c.hi)
		}
	}
}

// freeAddr returns ip:port with a port that was free a moment ago.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ap, err := loopback.FreePort(netip.MustParseAddr(ip))
	if err != nil {
		t.Fatal(err)
	}
	return ap.String()
}

// serveOn serves h on ip with a random port until the test ends and returns
// its base URL.
func serveOn(t *testing.T, ip string, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// startApp runs the real tidepool app on ip until the test ends.
func startApp(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := app.New(app.Config{InstanceID: "i-1", Work: time.Millisecond, Drain: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func urlHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func urlPort(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeNodeExporter serves node_cpu_seconds_total for two CPUs that are busy
// (user+system) for the share busy of the time since the handler was made,
// as read from now.
func fakeNodeExporter(now func() time.Time, busy float64) http.Handler {
	start := now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		elapsed := now().Sub(start).Seconds()
		modes := []struct {
			mode  string
			share float64
		}{
			{"idle", 1 - busy}, {"iowait", 0}, {"system", busy * 0.2}, {"user", busy * 0.8},
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.")
		fmt.Fprintln(w, "# TYPE node_cpu_seconds_total counter")
		for cpu := range 2 {
			for _, m := range modes {
				fmt.Fprintf(w, "node_cpu_seconds_total{cpu=\"%d\",mode=%q} %g\n", cpu, m.mode, 1000+m.share*elapsed)
			}
		}
	})
}

// webhookPost is one Alertmanager webhook (payload version 4) received.
type webhookPost struct {
	at           time.Time
	auth         string            // the Authorization header
	Version      string            `json:"version"`
	Status       string            `json:"status"`
	Receiver     string            `json:"receiver"`
	CommonLabels map[string]string `json:"commonLabels"`
	Alerts       []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// fakeAutoscaler records webhook posts to /up, /down and /webhook and serves
// the autoscaler's metrics.
type fakeAutoscaler struct {
	mu      sync.Mutex
	posts   map[string][]webhookPost
	changed chan struct{} // receives (without blocking) after each post
}

func newFakeAutoscaler() *fakeAutoscaler {
	return &fakeAutoscaler{posts: map[string][]webhookPost{}, changed: make(chan struct{}, 1)}
}

func (f *fakeAutoscaler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "# TYPE tidepool_autoscaler_pool_size gauge\ntidepool_autoscaler_pool_size 1\n"+
			"# TYPE tidepool_autoscaler_decisions_total counter\n"+
			"tidepool_autoscaler_decisions_total{direction=\"up\",result=\"scaled\"} "+strconv.Itoa(f.count("/up"))+"\n")
	case "/up", "/down", "/webhook":
		var p webhookPost
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = json.Unmarshal(body, &p)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.at, p.auth = time.Now(), r.Header.Get("Authorization")
		f.mu.Lock()
		f.posts[r.URL.Path] = append(f.posts[r.URL.Path], p)
		f.mu.Unlock()
		select {
		case f.changed <- struct{}{}:
		default:
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAutoscaler) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.posts[path])
}

// waitPosts waits until path has received n posts and returns them; it fails
// the test at the deadline or as soon as one of procs exits.
func (f *fakeAutoscaler) waitPosts(t *testing.T, path string, n int, timeout time.Duration, procs []*process) []webhookPost {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		got := append([]webhookPost(nil), f.posts[path]...)
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-f.changed:
		case <-deadline.C:
			t.Fatalf("got %d webhook posts to %s within %v, want %d", len(got), path, timeout, n)
		case <-procs[0].done:
			t.Fatalf("%s exited early: %v", procs[0].name, procs[0].err)
		case <-procs[1].done:
			t.Fatalf("%s exited early: %v", procs[1].name, procs[1].err)
		}
	}
}

// driveTraffic sends GET / to the app every 20ms until ctx is done.
func driveTraffic(ctx context.Context, client *http.Client, appURL string) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, appURL+"/", nil)
		if err != nil {
			return
		}
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// process is a child process started by startProcess.
type process struct {
	name string
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// startProcess starts bin with args, logging to a file in a temporary
// directory. At test end it sends SIGTERM, kills after 15s, waits, and prints
// the log if the test failed.
func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("stop %s: %v", name, err)
		}
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log:\n%s", name, tail(string(b), 40))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// promSample is one series of an instant query result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

// promQuery runs an instant query through Prometheus's HTTP API.
func promQuery(client *http.Client, base, expr string) ([]promSample, error) {
	resp, err := client.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", expr, resp.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %q, want vector", expr, r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// waitQuery polls expr until it returns at least one series whose value is a
// number, failing the test at the deadline.
func waitQuery(t *testing.T, client *http.Client, base, expr string, timeout time.Duration) []promSample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		samples, err := promQuery(client, base, expr)
		if err == nil && len(samples) > 0 && !isNaN(samples[0]) {
			return samples
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s: no data within %v (last: %v, err %v)", expr, timeout, samples, err)
		}
		time.Sleep(250 * time.Millisecond) // polling Prometheus: nothing to await
	}
}

func isNaN(s promSample) bool {
	v, _ := s.Value[1].(string)
	return v == "NaN"
}
