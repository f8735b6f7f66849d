package cloud_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud"
	"tidepool/internal/loopback"
)

// TestCloudCommand runs the real `tidepool cloud` program: the egoscale
// client creates a pool through it, then SIGTERM stops it with exit status 0
// within a few seconds, leaving no member process and the state on disk.
func TestCloudCommand(t *testing.T) {
	t.Parallel()
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	memberNet, nlbNet := loopback.Ranges()
	stateDir := t.TempDir()
	key, secret := "EXO"+randHex(8), randHex(16)
	cmd := exec.Command(bin, "cloud", "--listen", "127.0.0.1:0", "--member-net", memberNet.String(), "--nlb-net", nlbNet.String(),
		"--state-dir", stateDir, "--boot-delay", "100ms", "--cgroup-parent", "tidepool-cloud-cmd-"+randHex(4))
	cmd.Env = append(os.Environ(), "EXOSCALE_KEY="+key, "EXOSCALE_SECRET="+secret, "TIDEPOOL_APP_DRAIN=5s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	endpoint := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		re := regexp.MustCompile(`endpoint=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
				endpoint <- m[1]
			}
			if os.Getenv("TIDEPOOL_TEST_LOG") != "" {
				os.Stderr.WriteString(sc.Text() + "\n")
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var url string
	select {
	case url = <-endpoint:
	case <-time.After(30 * time.Second):
		t.Fatal("tidepool cloud did not report its endpoint")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c, err := v3.NewClient(credentials.NewStaticCredentials(key, secret), v3.ClientOptWithEndpoint(v3.Endpoint(url)),
		v3.ClientOptWithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetZoneAPIEndpoint(ctx, cloud.DefaultZone); err != nil || string(got) != url {
		t.Errorf("zone endpoint = %q, %v; want %q", got, err, url)
	}
	op, err := c.CreateInstancePool(ctx, v3.CreateInstancePoolRequest{
		Name: "cmd", Size: 2, DiskSize: 10,
		InstanceType: &v3.InstanceType{ID: microID(t, c)}, Template: &v3.Template{ID: ubuntuID(t, c)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, v3.OperationStateSuccess); err != nil {
		t.Fatal(err)
	}
	if n := len(memberProcesses(memberNet)); n != 2 {
		t.Fatalf("%d member processes running, want 2", n)
	}
	metrics := strings.TrimSuffix(url, "/v2") + "/metrics"
	resp, err := http.Get(metrics)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	poolID := string(op.Reference.ID)
	for _, want := range []string{
		`tidepool_cloud_instance_pool_size{pool_id="` + poolID + `",pool_name="cmd"} 2`,
		`tidepool_cloud_instance_pool_instances{pool_id="` + poolID + `",pool_name="cmd",state="running"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET %s lacks %q:\n%s", metrics, want, body)
		}
	}

	// The members drain for 5s on SIGTERM; the cloud's shutdown grace (3s)
	// bounds that, so the whole shutdown stays within a few seconds.
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(cmd, 15*time.Second); err != nil {
		t.Fatalf("tidepool cloud after SIGTERM: %v, want exit status 0", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("shutdown took %v, want a few seconds", d)
	}
	<-logDone
	if left := memberProcesses(memberNet); len(left) > 0 {
		t.Errorf("member processes left: %v", left)
	}
	b, err := os.ReadFile(filepath.Join(stateDir, cloud.StateFile))
	if err != nil || !strings.Contains(string(b), `"name": "cmd"`) {
		t.Errorf("state file: %v, %s", err, b)
	}
}

// TestCloudCommandUsage checks that bad flags exit with status 2.
func TestCloudCommandUsage(t *testing.T) {
	t.Parallel()
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--member-net", "nonsense"},
		{"--app-port", "70000"},
		{"--cpu-per-vcpu", "-1"},
		{"--zone", "xx-nowhere-1"},
		{"--boot-delay", "-1s"},
		{"--member-net", "127.78.0.0/24"}, // overlaps the load balancers' range
		{"--listen", "127.0.0.1:99999"},
		{"--boot-delay", "3"}, // no unit
		{"unexpected"},
	} {
		cmd := exec.Command(bin, append([]string{"cloud"}, args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("tidepool cloud %v: %v (%s), want exit status 2", args, err, out)
		}
	}
}
