package cloud_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud"
	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/loopback"
)

// harnessOptions configures a cloud run by startHarness; zero fields get
// fresh random values (nets, credentials) or the tidepool binary.
type harnessOptions struct {
	appCommand        []string
	stateDir          string
	memberNet, nlbNet netip.Prefix
	cgroupParent      string
	key, secret       string
	appDrain          string        // TIDEPOOL_APP_DRAIN of members; "" means 500ms
	bootDelay         time.Duration // 0 means 100ms
}

// harness is one Run of a cloud served by httptest, for tests that need
// control over the configuration or over restarts (cloudtest covers the
// common case).
type harness struct {
	opts     harnessOptions
	cloud    *cloud.Cloud
	client   *v3.Client
	endpoint string
	stopOnce sync.Once
	stopFn   func()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func startHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	if o.appCommand == nil {
		bin, err := buildbin.Tidepool()
		if err != nil {
			t.Fatal(err)
		}
		o.appCommand = []string{bin, "app"}
	}
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	if !o.memberNet.IsValid() {
		o.memberNet, o.nlbNet = loopback.Ranges()
	}
	if o.cgroupParent == "" {
		o.cgroupParent = "tidepool-cloud-test-" + randHex(4)
	}
	if o.appDrain == "" {
		o.appDrain = "500ms"
	}
	drain, err := time.ParseDuration(o.appDrain)
	if err != nil {
		t.Fatalf("app drain: %v", err)
	}
	if o.bootDelay == 0 {
		o.bootDelay = 100 * time.Millisecond
	}
	if o.key == "" {
		o.key, o.secret = "EXO"+randHex(8), randHex(16)
	}
	c, err := cloud.New(cloud.Config{
		Key: o.key, Secret: o.secret, StateDir: o.stateDir,
		MemberNet: o.memberNet, NLBNet: o.nlbNet,
		BootDelay: new(o.bootDelay), AppCommand: o.appCommand,
		AppEnv: []string{"TIDEPOOL_APP_DRAIN=" + o.appDrain}, CgroupParent: o.cgroupParent,
		ShutdownGrace: drain + 3*time.Second, Logger: testLogger(t), // members finish their drain
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cloudtest.Validated(t, c.Handler()))
	tr := &http.Transport{}
	client, err := v3.NewClient(credentials.NewStaticCredentials(o.key, o.secret),
		v3.ClientOptWithEndpoint(v3.Endpoint(srv.URL+"/v2")),
		v3.ClientOptWithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	h := &harness{opts: o, cloud: c, client: client, endpoint: srv.URL + "/v2"}
	h.stopFn = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return within 30s of cancel")
		}
		tr.CloseIdleConnections()
		srv.Close()
		if left := memberProcesses(o.memberNet); len(left) > 0 {
			t.Errorf("member processes left after shutdown: %v", left)
		}
	}
	t.Cleanup(h.stop)
	return h
}

// stop shuts the cloud down and checks that no member process is left.
func (h *harness) stop() { h.stopOnce.Do(h.stopFn) }

// memberProcesses returns live processes whose --listen address is in net.
func memberProcesses(net netip.Prefix) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || !alive(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] != "--listen" {
				continue
			}
			if ap, err := netip.ParseAddrPort(args[i+1]); err == nil && net.Contains(ap.Addr()) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	return a
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
