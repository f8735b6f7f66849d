// Package cloudtest runs the local cloud for tests: an httptest server on
// 127.0.0.1 serving the Exoscale API v2 subset of internal/cloud, with real
// `tidepool app` member processes (from buildbin.Tidepool) on random loopback
// ranges, and an egoscale v3 client configured for it.
//
// Every exchange with the cloud is checked against Exoscale's OpenAPI spec
// (see Validated); a mismatch fails the test.
//
// Packages using it should call buildbin.Cleanup() in TestMain after m.Run
// (the member binary is built once per test process).
//
// It owns the test cloud; only tests may import it, and it must not import the
// agents (autoscaler, discover, demo).
package cloudtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud"
	"tidepool/internal/cloud/apispec"
	"tidepool/internal/cloud/nlb"
	"tidepool/internal/exoclient"
	"tidepool/internal/loopback"
	"tidepool/internal/provision"
)

// Options tunes Start. The zero value gives fast defaults for tests.
type Options struct {
	// BootDelay is how long new members stay "starting" before their process
	// starts; 0 means 200ms.
	BootDelay time.Duration
	// CPUs is the CPU quota in cores of each vCPU of a member (CreatePool
	// uses a 1-vCPU type, so it is each member's quota); 0 means 0.25.
	CPUs float64
	// Logger receives the cloud's logs; nil discards them.
	Logger *slog.Logger
	// NLBDataPath is the load balancers' data path; "" means
	// nlb.DataPathAuto.
	NLBDataPath nlb.DataPath
	// Fault, when not nil, is asked about every API request, concurrently
	// and before the cloud sees it; for ok true the request meets the
	// returned Fault (delayed, failed, garbled, or answered after taking
	// effect) instead of a plain answer. It must not read the body. Tests
	// also record the requests they see here.
	Fault func(r *http.Request) (f Fault, ok bool)
}

// Env is a running test cloud.
type Env struct {
	Cloud    *cloud.Cloud
	Endpoint string // http://127.0.0.1:PORT/v2
	Key      string
	Secret   string
	Zone     string
	Client   *v3.Client

	// MemberNet and NLBNet are the loopback ranges of members and load
	// balancers (random per Env, so parallel test packages do not collide).
	MemberNet, NLBNet netip.Prefix
	// StateDir holds the cloud's state file.
	StateDir string

	bin       string
	cgroup    string
	transport *http.Transport
}

// memberDrain is the app drain period of test members: long enough for the
// load balancer to stop sending new connections, short enough for quick
// evictions.
const memberDrain = "1s"

// Start starts a cloud for t and registers its shutdown with t.Cleanup: the
// cloud is stopped (members and load balancers too) and the cleanup fails t
// if a member process or cgroup is left behind.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatalf("cloudtest: build tidepool: %v", err)
	}
	if opts.BootDelay <= 0 {
		opts.BootDelay = 200 * time.Millisecond
	}
	if opts.CPUs <= 0 {
		opts.CPUs = 0.25
	}
	memberNet, nlbNet := loopback.Ranges()
	e := &Env{
		Key:       "EXO" + randomHex(12),
		Secret:    randomHex(20),
		Zone:      cloud.DefaultZone,
		MemberNet: memberNet,
		NLBNet:    nlbNet,
		StateDir:  t.TempDir(),
		bin:       bin,
		cgroup:    "tidepool-cloudtest-" + randomHex(4),
	}
	c, err := cloud.New(e.config(opts))
	if err != nil {
		t.Fatalf("cloudtest: %v", err)
	}
	e.Cloud = c
	// Faults sit outside the spec check: what they inject is not the cloud's answer.
	srv := httptest.NewServer(withFaults(Validated(t, c.Handler()), opts.Fault))
	e.Endpoint = srv.URL + "/v2"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	e.transport = &http.Transport{}
	e.Client, err = exoclient.New(exoclient.Config{
		Key: e.Key, Secret: e.Secret, Endpoint: e.Endpoint, Transport: e.transport, UserAgent: "tidepool-cloudtest",
	})
	if err != nil {
		t.Fatalf("cloudtest: egoscale client: %v", err)
	}

	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("cloudtest: cloud Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("cloudtest: cloud did not stop within 60s")
		}
		e.transport.CloseIdleConnections()
		srv.Close()
		if left := e.MemberProcesses(); len(left) > 0 {
			t.Errorf("cloudtest: member processes left after shutdown: %v", left)
		}
		if left := e.leftCgroups(); len(left) > 0 {
			t.Errorf("cloudtest: cgroups left after shutdown: %v", left)
		}
	})
	return e
}

func (e *Env) config(opts Options) cloud.Config {
	return cloud.Config{
		Key: e.Key, Secret: e.Secret, Zone: e.Zone,
		StateDir:  e.StateDir,
		MemberNet: e.MemberNet, NLBNet: e.NLBNet,
		BootDelay:     new(opts.BootDelay),
		CPUPerVCPU:    opts.CPUs,
		AppCommand:    []string{e.bin, "app"},
		AppEnv:        []string{"TIDEPOOL_APP_DRAIN=" + memberDrain},
		CgroupParent:  e.cgroup,
		ShutdownGrace: 3 * time.Second,
		Logger:        opts.Logger,
		NLBDataPath:   opts.NLBDataPath,
	}
}

// MemberProcesses returns the PIDs of live member processes of this Env:
// processes of the test binary whose --listen address is in MemberNet.
func (e *Env) MemberProcesses() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 2 || args[0] != e.bin || isZombie(pid) {
			continue
		}
		for i, a := range args[:len(args)-1] {
			if a != "--listen" {
				continue
			}
			if ap, err := netip.ParseAddrPort(args[i+1]); err == nil && e.MemberNet.Contains(ap.Addr()) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// leftCgroups returns the member cgroup parent of this Env in every
// hierarchy where it still exists (it is removed with its last member).
func (e *Env) leftCgroups() []string {
	var left []string
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct"} {
		dir := filepath.Join(root, e.cgroup)
		if _, err := os.Stat(dir); err == nil {
			left = append(left, dir)
		}
	}
	return left
}

// CreatePool creates an instance pool of size standard.micro members through
// the egoscale client and waits until it is running.
func (e *Env) CreatePool(t testing.TB, size int) v3.UUID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := provision.CreatePool(ctx, e.Client, provision.PoolSpec{Name: "cloudtest-" + randomHex(3), Size: size})
	if err != nil {
		t.Fatalf("cloudtest: %v", err)
	}
	return id
}

// WaitPoolRunning polls the pool until its state is running with as many
// instances as its size.
func (e *Env) WaitPoolRunning(ctx context.Context, id v3.UUID) error {
	return provision.WaitPoolRunning(ctx, e.Client, id)
}

// CreateNLBService creates a network load balancer with one TCP service on
// port, in front of pool's members on the app port (8080), with an HTTP
// health check on /health every second. It waits until the service listens
// and returns the IDs and its "ip:port" address.
func (e *Env) CreateNLBService(t testing.TB, pool v3.UUID, port uint16) (nlbID, serviceID v3.UUID, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, err := provision.CreateNLBService(ctx, e.Client, provision.ServiceSpec{
		Name: "cloudtest-" + randomHex(3), Pool: pool, Port: port, TargetPort: cloud.DefaultAppPort,
		Interval: 1, Timeout: 1, Retries: 1,
	})
	if err != nil {
		t.Fatalf("cloudtest: %v", err)
	}
	return svc.NLBID, svc.ServiceID, svc.Addr
}

// coverage collects the spec operations exercised by Validated handlers in
// this test process.
var coverage apispec.Coverage

var (
	specOnce sync.Once
	spec     *apispec.Spec
	specErr  error
)

// Validated returns h checked against Exoscale's OpenAPI spec
// (apispec.RelPath from the repository root, found from the test's working
// directory): every request h accepts and every response it returns must
// conform, else t fails with the mismatch (see package apispec). Without the
// spec file, h is returned unchanged and t logs why; an unreadable spec
// fails t.
func Validated(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	specOnce.Do(func() {
		var path string
		if path, specErr = apispec.Locate("."); specErr == nil {
			spec, specErr = apispec.Load(path)
		}
	})
	switch {
	case errors.Is(specErr, apispec.ErrNotFound):
		t.Logf("cloudtest: API responses not checked against the OpenAPI spec: %v", specErr)
		return h
	case specErr != nil:
		t.Fatalf("cloudtest: %v", specErr)
	}
	return spec.Handler(h, &coverage, func(m apispec.Mismatch) {
		t.Errorf("cloudtest: does not conform to the Exoscale OpenAPI spec: %s", m)
	})
}

// Exercised returns the spec operations that conforming, successful
// exchanges through Validated handlers exercised so far in this process.
func Exercised() []apispec.Operation { return coverage.Operations() }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.Join(errors.New("crypto/rand"), err))
	}
	return hex.EncodeToString(b)
}
