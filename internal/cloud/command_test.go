package cloud_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud"
	"tidepool/internal/loopback"
)

// TestCloudCommand runs the real `tidepool cloud` program: the egoscale
// client creates a pool through it, then SIGTERM stops it with exit status 0
// within a few seconds, leaving no member process and the state on disk.
func TestCloudCommand(t *testing.T) {
	t.Parallel()
	memberNet, nlbNet := loopback.Ranges()
	stateDir := t.TempDir()
	key, secret := "EXO"+randHex(8), randHex(16)
	proc := startCloudProcess(t, []string{"EXOSCALE_KEY=" + key, "EXOSCALE_SECRET=" + secret, "TIDEPOOL_APP_DRAIN=5s",
		"TF_VAR_exoscale_secret=" + secret}, // a copy under another name is kept from members too
		"--member-net", memberNet.String(), "--nlb-net", nlbNet.String(),
		"--state-dir", stateDir, "--boot-delay", "100ms", "--cgroup-parent", "tidepool-cloud-cmd-"+randHex(4))
	cmd, url := proc.cmd, proc.endpoint
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := proc.client(t, key, secret)
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
	pids := memberProcesses(memberNet)
	if n := len(pids); n != 2 {
		t.Fatalf("%d member processes running, want 2", n)
	}
	// Members trust only the cloud: the API key and secret are nowhere in
	// what a member process can read about itself.
	for _, pid := range pids {
		for _, f := range []string{"environ", "cmdline"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(key)) {
				t.Errorf("member %d: /proc/%d/%s holds the API key or secret", pid, pid, f)
			}
			if f == "environ" && !bytes.Contains(b, []byte("TIDEPOOL_APP_DRAIN=5s")) {
				t.Errorf("member %d lacks the cloud's TIDEPOOL_APP_DRAIN: the environment is not passed on", pid)
			}
		}
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
	<-proc.logDone
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
