package discover

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/loopback"
	"tidepool/internal/promrun"
)

// startPrometheus runs the real Prometheus with config on a free port of a
// random loopback address and a temporary storage directory, waits until it
// is ready and returns its base URL. Cleanup stops it (SIGTERM, then SIGKILL)
// by PID.
func startPrometheus(t *testing.T, config string) string {
	t.Helper()
	prometheusBin, err := promrun.PrometheusBinary()
	if err != nil {
		t.Fatalf("this test needs the real Prometheus: %v", err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		// A free port on a random loopback address (there is a small race
		// between closing it and Prometheus binding it: hence the retries).
		ap, err := loopback.FreeAddrPort()
		if err != nil {
			lastErr = err
			continue
		}
		addr := ap.String()
		logPath := filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt))
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(prometheusBin,
			"--config.file="+cfgPath,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address="+addr,
			"--log.level=debug")
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatalf("start prometheus: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Logf("SIGTERM prometheus (pid %d): %v", cmd.Process.Pid, err)
			}
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				t.Errorf("prometheus (pid %d) ignored SIGTERM for 15s; killing it", cmd.Process.Pid)
				if err := cmd.Process.Kill(); err != nil {
					t.Errorf("kill prometheus: %v", err)
				}
				<-exited
			}
			logFile.Close()
		}
		base := "http://" + addr
		if err := waitReady(base, exited); err != nil {
			stop()
			out, _ := os.ReadFile(logPath)
			lastErr = fmt.Errorf("%w\nprometheus log:\n%s", err, out)
			continue
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				out, _ := os.ReadFile(logPath)
				t.Logf("prometheus log:\n%s", out)
			}
		})
		return base
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return ""
}

func waitReady(base string, exited <-chan error) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("prometheus exited: %v", err)
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("prometheus not ready within a minute")
}

type promTarget struct {
	Labels    map[string]string `json:"labels"`
	ScrapeURL string            `json:"scrapeUrl"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

func activeTargets(base string) ([]promTarget, error) {
	resp, err := http.Get(base + "/api/v1/targets?state=active")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ActiveTargets []promTarget `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("targets API status %q", r.Status)
	}
	return r.Data.ActiveTargets, nil
}

// upByJob returns, per job, the sorted "instance" labels of targets that are
// up, and a description of the ones that are not.
func upByJob(targets []promTarget) (up map[string][]string, notUp []string) {
	up = map[string][]string{}
	for _, tg := range targets {
		job := tg.Labels["job"]
		if tg.Health == "up" {
			up[job] = append(up[job], tg.Labels["instance"])
		} else {
			notUp = append(notUp, fmt.Sprintf("%s %s %s %s", job, tg.Labels["instance"], tg.Health, tg.LastError))
		}
	}
	for _, v := range up {
		slices.Sort(v)
	}
	return up, notUp
}

// waitPrometheusSees waits until both jobs have exactly want as up targets,
// each carrying the pool labels.
func waitPrometheusSees(t *testing.T, base string, want []string, pool Pool) {
	t.Helper()
	deadline := time.Now().Add(itWait)
	var last string
	for time.Now().Before(deadline) {
		targets, err := activeTargets(base)
		if err != nil {
			last = err.Error()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		up, notUp := upByJob(targets)
		if slices.Equal(up["file"], want) && slices.Equal(up["http"], want) && len(notUp) == 0 {
			for _, tg := range targets {
				l := tg.Labels
				if l[LabelPoolID] != pool.ID || l[LabelPoolName] != pool.Name || l[LabelZone] != pool.Zone || l[LabelInstanceID] == "" {
					t.Fatalf("target %s lacks the pool labels: %v", l["instance"], l)
				}
			}
			return
		}
		last = fmt.Sprintf("up: %v, not up: %v", up, notUp)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("prometheus does not see %v as up in both jobs within %v; last: %s", want, itWait, last)
}

// queryUp returns how many series `up{job=job, pool_id=pool} == 1` has.
func queryUp(t *testing.T, base, job, poolID string) int {
	t.Helper()
	q := fmt.Sprintf(`up{job=%q,pool_id=%q} == 1`, job, poolID)
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return len(r.Data.Result)
}

// TestPrometheusScrapesPoolMembers runs real Prometheus with file_sd_configs
// on the agent's file and http_sd_configs on its HTTP SD endpoint, and checks
// that it scrapes every pool member (node-exporter metrics on IP:9100) as up,
// before and after the pool grows.
func TestPrometheusScrapesPoolMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (local cloud and Prometheus)")
	}
	if _, err := promrun.PrometheusBinary(); err != nil {
		t.Fatalf("this test needs the real Prometheus: %v", err)
	}
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t)})
	poolID := env.CreatePool(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), itWait)
	defer cancel()
	p, err := env.Client.GetInstancePool(ctx, poolID)
	if err != nil {
		t.Fatal(err)
	}
	pool := Pool{ID: string(poolID), Name: p.Name, Zone: env.Zone}

	sdDir := filepath.Join(t.TempDir(), "sd")
	a, err := New(Config{
		Client: newTestClient(t, env.Endpoint, env.Key, env.Secret),
		PoolID: string(poolID), Zone: env.Zone, Port: DefaultPort,
		Output: filepath.Join(sdDir, "config.json"), Interval: itInterval,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	sd := httptest.NewServer(a.Handler())
	t.Cleanup(sd.Close)

	base := startPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: file
    file_sd_configs:
      - files: [%q]
        refresh_interval: 1s
  - job_name: http
    http_sd_configs:
      - url: %q
        refresh_interval: 1s
`, filepath.Join(sdDir, "*.json"), sd.URL+"/targets"))

	for _, size := range []int{2, 3} {
		if size != 2 {
			scalePool(t, env, poolID, size)
		}
		var want []string
		for _, m := range poolTruth(t, env, poolID, DefaultPort) {
			want = append(want, m.Target)
		}
		slices.Sort(want)
		if len(want) != size {
			t.Fatalf("pool of %d has %d members with an IP: %v", size, len(want), want)
		}
		waitPrometheusSees(t, base, want, pool)
		for _, job := range []string{"file", "http"} {
			if n := queryUp(t, base, job, pool.ID); n != size {
				t.Errorf("up{job=%q} == 1 has %d series, want %d", job, n, size)
			}
		}
		t.Logf("prometheus scrapes %v as up through file_sd and http_sd", want)
	}
}
