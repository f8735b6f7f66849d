package discover

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud/cloudtest"
)

// End-to-end tests of the real `tidepool discover` program.

// cleanEnv is this process's environment without the variables discover
// reads, so the host's settings cannot leak into a test.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := map[string]bool{"TARGET_PORT": true, "TIDEPOOL_LOG_LEVEL": true}[name]; ok ||
			strings.HasPrefix(name, "EXOSCALE_") || strings.HasPrefix(name, "TIDEPOOL_DISCOVER_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func tidepoolBin(t *testing.T) string {
	t.Helper()
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatalf("build tidepool: %v", err)
	}
	return bin
}

func TestCommandRejectsBadUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tidepool binary")
	}
	bin := tidepoolBin(t)
	const id = "2f3c1b5e-0a5d-4c1e-9b0e-1d2c3b4a5f60"
	creds := []string{"EXOSCALE_KEY=EXOk", "EXOSCALE_SECRET=s"}
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantErr  string
	}{
		{"no credentials", []string{"--pool-id", id}, nil, 2, "EXOSCALE_KEY and EXOSCALE_SECRET"},
		{"no pool", nil, creds, 2, "no instance pool"},
		{"pool id and name", []string{"--pool-name", "web"}, append(creds, "EXOSCALE_INSTANCEPOOL_ID="+id), 2, "give one"},
		{"pool id not a UUID", []string{"--pool-id", "nope"}, creds, 2, "not a UUID"},
		{"bad TARGET_PORT", []string{"--pool-id", id}, append(creds, "TARGET_PORT=http"), 2, "TARGET_PORT"},
		{"port out of range", []string{"--pool-id", id, "--port", "0"}, creds, 2, "out of range"},
		{"bad interval", []string{"--pool-id", id, "--interval", "-1s"}, creds, 2, "must be positive"},
		{"unknown flag", []string{"--frobnicate"}, creds, 2, "frobnicate"},
		{"stray argument", []string{"--pool-id", id, "extra"}, creds, 2, "unexpected arguments"},
		{"help", []string{"-h"}, nil, 0, "EXOSCALE_INSTANCEPOOL_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"discover"}, tt.args...)...)
			cmd.Env = cleanEnv(tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestCommandFollowsPoolAndStopsOnSIGTERM runs `tidepool discover`
// configured only by the course's environment variables against the local
// cloud, checks the file, HTTP SD, /health and /metrics, then sends SIGTERM:
// it must exit 0 within 10s.
func TestCommandFollowsPoolAndStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (local cloud, real binary)")
	}
	bin := tidepoolBin(t)
	env := cloudtest.Start(t, cloudtest.Options{Logger: testLogger(t)})
	poolID := env.CreatePool(t, 2)
	output := filepath.Join(t.TempDir(), "service-discovery", "config.json")

	cmd := exec.Command(bin, "discover", "--http-sd-listen", "127.0.0.1:0", "--output", output, "--interval", "500ms")
	cmd.Env = cleanEnv(
		"EXOSCALE_KEY="+env.Key, "EXOSCALE_SECRET="+env.Secret, "EXOSCALE_ZONE="+env.Zone,
		"EXOSCALE_API_ENDPOINT="+env.Endpoint, "EXOSCALE_INSTANCEPOOL_ID="+string(poolID), "TARGET_PORT=9100")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		logMu   sync.Mutex
		logs    bytes.Buffer
		addrc   = make(chan string, 1)
		logDone = make(chan struct{})
	)
	addrRE := regexp.MustCompile(`msg="discover started" http_addr=(\S+)`)
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		io.Copy(io.Discard, stderr) //nolint:errcheck // draining after a scanner error
	}()
	exited := make(chan error, 1)
	go func() {
		<-logDone // Wait closes the pipe: read everything first
		exited <- cmd.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if err := cmd.Process.Kill(); err != nil {
				t.Logf("kill discover (pid %d): %v", cmd.Process.Pid, err)
			}
			<-exited
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("discover log:\n%s", logs.String())
			logMu.Unlock()
		}
	})

	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		stopped = true
		t.Fatalf("discover exited early: %v", err)
	case <-time.After(itWait):
		t.Fatal("discover did not log its address")
	}

	want := poolTruth(t, env, poolID, 9100)
	deadline := time.Now().Add(itWait)
	for {
		p, err := env.Client.GetInstancePool(t.Context(), poolID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fileMembers(t, output, Pool{ID: string(poolID), Name: p.Name, Zone: env.Zone})
		if err == nil && len(got) == len(want) && len(got) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file %s: %v (err %v), want %v", output, got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	file, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{"/targets", string(file)},
		{"/health", "OK\n"},
		{"/metrics", "tidepool_discover_targets 2\n"},
	} {
		resp, err := http.Get("http://" + addr + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), c.want) {
			t.Errorf("GET %s = %d:\n%s\nwant 200 containing %q", c.path, resp.StatusCode, body, c.want)
		}
	}
	fi, err := os.Stat(output)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != FileMode {
		t.Errorf("file mode %v, want %v", fi.Mode().Perm(), os.FileMode(FileMode))
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("discover after SIGTERM: %v, want exit 0", err)
		}
		t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("discover did not exit within 10s of SIGTERM")
	}
}
