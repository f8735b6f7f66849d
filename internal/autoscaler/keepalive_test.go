package autoscaler

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/cloud/cloudtest"
)

// scaleInUnderLoad runs a pool of 2 behind a load balancer and an
// autoscaler, starts a load on the balancer's address, and scales in by one
// member while it runs: once the load has served warm requests, and until
// it has served warm more after the change and at least settle has passed
// (the evicted member's own drain and shutdown). It stops the load, checks
// that the pool is 1 without the victim, and returns the victim.
func scaleInUnderLoad(t *testing.T, warm int64, settle time.Duration, start func(addr string, stop <-chan struct{}) (ok func() int64, wg *sync.WaitGroup)) string {
	t.Helper()
	env := cloudtest.Start(t, cloudtest.Options{})
	poolID := env.CreatePool(t, 2)
	nlbID, svcID, addr := env.CreateNLBService(t, poolID, 8000)
	waitHealthy(t, env, nlbID, svcID, 2)
	a, base := startAutoscaler(t, env, poolID, func(c *Config) {
		c.NLBID, c.NLBServiceID = string(nlbID), string(svcID)
		c.DrainGrace = time.Second
		c.DrainTimeout = 30 * time.Second
	})

	stop := make(chan struct{})
	ok, wg := start(addr, stop)
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)
	deadline := time.Now().Add(30 * time.Second)
	for ok() < warm && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if code := send(t, http.MethodPost, base+"/down", ""); code != http.StatusOK {
		t.Fatalf("POST /down = %d", code)
	}
	d := tick(t, a)
	if d.Action != policy.ActionScaleDown || len(d.Victims) != 1 {
		t.Fatalf("decision %+v, want a scale-in of one member", d)
	}
	victim := d.Victims[0]
	after := ok()
	time.Sleep(settle)
	deadline = time.Now().Add(30 * time.Second)
	for ok() < after+warm && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stopLoad()

	size, members := poolState(t, env, poolID)
	if size != 1 || slices.Contains(members, victim) {
		t.Errorf("pool size %d members %v, want 1 without the victim %s", size, members, victim)
	}
	return victim
}

// keepAliveLoad runs clients that keep one connection to addr alive as long
// as the server lets them and never retry: a request that fails is counted
// and lost, and the next one opens a new connection. A response with
// "Connection: close" ends the connection after it, as HTTP/1.1 says. Each
// client pauses between requests, so its connection is also idle at times.
type keepAliveLoad struct {
	loadResult
	conns int // connections opened; guarded by mu
}

func runKeepAliveLoad(addr string, clients int, pause time.Duration, stop <-chan struct{}) (*keepAliveLoad, *sync.WaitGroup) {
	l := &keepAliveLoad{loadResult: loadResult{byInstance: map[string]int{}}}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			tick := time.NewTicker(pause + time.Duration(i)*pause/time.Duration(clients))
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if conn == nil {
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						l.fail("dial: " + err.Error())
						continue
					}
					conn, br = c, bufio.NewReader(c)
					l.mu.Lock()
					l.conns++
					l.mu.Unlock()
				}
				instance, closeConn, err := getOnce(conn, br)
				if err != nil {
					l.fail(err.Error())
					conn.Close()
					conn = nil
					continue
				}
				l.ok.Add(1)
				l.mu.Lock()
				l.byInstance[instance]++
				l.mu.Unlock()
				if closeConn {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	return l, &wg
}

// getOnce sends GET /?work=1ms on conn and returns the serving instance and whether
// the server asked to close the connection.
func getOnce(conn net.Conn, br *bufio.Reader) (instance string, closeConn bool, err error) {
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// 1 ms of work: the member is never the bottleneck, so connections are
	// idle between requests most of the time.
	if _, err := io.WriteString(conn, "GET /?work=1ms HTTP/1.1\r\nHost: tidepool\r\n\r\n"); err != nil {
		return "", false, fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", false, fmt.Errorf("read: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Instance string `json:"instance"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return "", false, fmt.Errorf("status %d, body %v", resp.StatusCode, err)
	}
	io.Copy(io.Discard, resp.Body)
	return body.Instance, resp.Close, nil
}

// TestScaleInKeepAliveClientsLoseNothing is issue 17's item 8 end to end:
// clients that keep their connection through the load balancer alive and
// never retry lose no request while the autoscaler drains and evicts the
// member they are connected to. The drained member answers "Connection:
// close", so each client moves to a new connection (and a healthy member)
// with its next request, and no idle connection is closed under it.
func TestScaleInKeepAliveClientsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const clients = 16 // about 8 on the victim, each idle most of the time
	var load *keepAliveLoad
	victim := scaleInUnderLoad(t, 40, 3*time.Second, func(addr string, stop <-chan struct{}) (func() int64, *sync.WaitGroup) {
		var wg *sync.WaitGroup
		load, wg = runKeepAliveLoad(addr, clients, 300*time.Millisecond, stop)
		return load.ok.Load, wg
	})
	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("requests ok %d, failed %d, connections %d, by instance %v", load.ok.Load(), load.failed.Load(), load.conns, load.byInstance)
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the scale-in, want 0: %v", n, load.errs)
	}
	if load.byInstance[victim] == 0 {
		t.Errorf("the victim %s served no request: the load did not cover it", victim)
	}
	if load.conns <= clients {
		t.Errorf("%d connections for %d clients: no client moved off the drained member", load.conns, clients)
	}
}
