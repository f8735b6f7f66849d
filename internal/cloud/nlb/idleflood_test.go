package nlb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// idleHelperEnv makes the test binary an idle-connection holder (see
// runIdleHelper) instead of running tests: "ADDR,COUNT".
const idleHelperEnv = "TIDEPOOL_NLB_IDLE_HELPER"

// runIdleHelper opens COUNT connections to ADDR (64 dials at a time), sends
// nothing on them, prints "held N failed M" and holds them until its stdin
// is closed. It runs in a process of its own: a process's descriptor limit
// (20,000 here, and not raisable without CAP_SYS_RESOURCE) could not hold
// both the connections and the balancer they go to.
func runIdleHelper(spec string) int {
	addr, n, ok := strings.Cut(spec, ",")
	count, err := strconv.Atoi(n)
	if !ok || err != nil {
		fmt.Fprintf(os.Stderr, "bad %s %q\n", idleHelperEnv, spec)
		return 2
	}
	var mu sync.Mutex
	var conns []net.Conn
	var failed atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			d := net.Dialer{Timeout: 30 * time.Second}
			for next.Add(1) <= int64(count) {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Printf("held %d failed %d\n", len(conns), failed.Load())
	io.Copy(io.Discard, os.Stdin) // until the parent closes it or exits
	for _, c := range conns {
		c.Close()
	}
	return 0
}

// idleHolder is a running runIdleHelper process.
type idleHolder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// holdIdle starts a helper process holding count idle connections to addr;
// it is stopped (stdin closed, killed if it lingers) at cleanup.
func holdIdle(t *testing.T, addr string, count int) *idleHolder {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), idleHelperEnv+"="+addr+","+strconv.Itoa(count))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() {
			cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() // our own child, by PID
			<-done
		}
	})
	return &idleHolder{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
}

// wait blocks until the helper holds its connections and returns how many
// it opened and how many dials failed.
func (h *idleHolder) wait(t *testing.T) (held, failed int) {
	t.Helper()
	line, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("idle connection helper: %v", err)
	}
	if _, err := fmt.Sscanf(line, "held %d failed %d", &held, &failed); err != nil {
		t.Fatalf("idle connection helper said %q: %v", line, err)
	}
	return held, failed
}

// TestIdleFlood holds 20,000 idle connections open to a service (two
// helper processes of 10,000) with the default limits, while other clients
// send HTTP requests through it on new connections and its members are
// health-checked twice a second: every other request must succeed and no
// member may be marked down. Before the cap, the idle connections took the
// process's descriptors and its health checks failed.
func TestIdleFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 20,000 connections")
	}
	for _, dp := range []DataPath{DataPathEpoll, DataPathPortable} {
		t.Run(string(dp), func(t *testing.T) { idleFlood(t, dp) })
	}
}

func idleFlood(t *testing.T, dp DataPath) {
	const holders, perHolder = 2, 10000
	lns := listenSamePort(t, 2)
	var backends []Backend
	for i, ln := range lns {
		backends = append(backends, startHTTPBackend(t, "m"+strconv.Itoa(i), ln).backend())
	}
	// Probes twice a second with Exoscale's default timeout (5s): a probe
	// fails when the member does not answer, not because this shared test
	// machine was slow for a second.
	check := HealthCheck{Mode: "http", URI: "/health", Interval: 500 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1}
	s := newService(t, Config{TargetPort: addrPort(lns[0].Addr()), Check: check, DataPath: dp, Logger: quietLogger(t)})
	run(t, s)
	s.SetBackends(backends)
	for _, b := range backends {
		waitHealth(t, s, b.ID, true)
	}

	// Watch health and the open-connection count all along.
	stop := make(chan struct{})
	var watch sync.WaitGroup
	var downs atomic.Int64
	var maxOpen atomic.Int64
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			for _, st := range s.Status() {
				if !st.Healthy {
					downs.Add(1)
				}
			}
			if n := s.open.Load(); n > maxOpen.Load() {
				maxOpen.Store(n)
			}
		}
	})
	defer func() {
		close(stop)
		watch.Wait()
	}()

	start := time.Now()
	var hs []*idleHolder
	for range holders {
		hs = append(hs, holdIdle(t, s.Addr().String(), perHolder))
	}
	held := 0
	for _, h := range hs {
		n, failed := h.wait(t)
		if failed > 0 {
			t.Errorf("%d idle connections could not even be opened", failed)
		}
		held += n
	}
	ramp := time.Since(start)
	time.Sleep(evictSilentAfter) // the attack's last connections are evictable too

	// Other clients: 400 requests on new connections, 8 at a time.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= 400 {
				resp, err := client.Get("http://" + s.Addr().String() + "/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	evicted, _ := labelledValue(t, s, "tidepool_nlb_evicted_connections_total", "", "")
	refused, _ := labelledValue(t, s, "tidepool_nlb_refused_connections_total", "", "")
	t.Logf("%s: %d idle connections held (opened in %v); other requests: %d ok, %d failed; members marked down: %d samples; open connections at most %d (cap %d); evicted %v, refused %v; descriptors in use %d of budget %d",
		dp, held, ramp.Round(time.Millisecond), ok.Load(), failed.Load(), downs.Load(), maxOpen.Load(), s.maxConns, evicted, refused, sockets.Load(), fdBudget())
	if held != holders*perHolder {
		t.Errorf("%d idle connections held, want %d", held, holders*perHolder)
	}
	if failed.Load() > 0 {
		t.Errorf("%d of 400 other requests failed with 20,000 idle connections held, first: %v", failed.Load(), firstErr.Load())
	}
	if downs.Load() > 0 {
		t.Errorf("a healthy member was seen marked down %d times", downs.Load())
	}
	if maxOpen.Load() > s.maxConns {
		t.Errorf("%d connections open at once, above the cap of %d", maxOpen.Load(), s.maxConns)
	}
	if evicted+refused == 0 {
		t.Errorf("the cap was never reached: the test did not test it")
	}
}
