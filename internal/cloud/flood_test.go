package cloud_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/cloud"
	"tidepool/internal/floodtest"
	"tidepool/internal/loopback"
)

// floodRSSLimitKB is the peak resident set the cloud must stay under while
// it is flooded with large unauthenticated bodies.
const floodRSSLimitKB = 64 << 10

// TestCloudUnderBodyFlood floods the real `tidepool cloud` program with
// 3,000 requests of 1 MiB bodies it must not buffer (200 at a time): a third
// unsigned, a third with a known key but a forged signature and a declared
// Content-Length, a third forged and chunked (no declared length: the body
// must be read to be checked, within the bounded reader). Meanwhile a
// signed client keeps reading and updating a load balancer. The cloud must
// refuse every forged request, answer every signed one, and its peak RSS
// (VmHWM, measured by the kernel: no sampling) must stay under 64 MB.
// Before bodies were bounded it reached 324 MB.
func TestCloudUnderBodyFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a cloud process with 3,000 large requests")
	}
	t.Parallel()
	memberNet, nlbNet := loopback.Ranges()
	key, secret := "EXO"+randHex(8), randHex(16)
	proc := startCloudProcess(t, []string{"EXOSCALE_KEY=" + key, "EXOSCALE_SECRET=" + secret},
		"--member-net", memberNet.String(), "--nlb-net", nlbNet.String(), "--cgroup-parent", "tidepool-cloud-flood-"+randHex(4))
	pid := proc.cmd.Process.Pid
	c := proc.client(t, key, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	op, err := c.CreateLoadBalancer(ctx, v3.CreateLoadBalancerRequest{Name: "flood"})
	if err != nil {
		t.Fatal(err)
	}
	lb := op.Reference.ID
	before := peakRSS(t, pid)

	// Signed traffic, all through the flood.
	var signedOK, signedDuring atomic.Int64
	var flooding atomic.Bool
	var signedErrs []error
	var mu sync.Mutex
	stop := make(chan struct{})
	signedDone := make(chan struct{})
	go func() {
		defer close(signedDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if i%2 == 0 {
				_, err = c.ListLoadBalancers(ctx)
			} else {
				_, err = c.UpdateLoadBalancer(ctx, lb, v3.UpdateLoadBalancerRequest{Description: "update " + strconv.Itoa(i)})
			}
			if err != nil {
				mu.Lock()
				signedErrs = append(signedErrs, err)
				mu.Unlock()
				continue
			}
			signedOK.Add(1)
			if flooding.Load() {
				signedDuring.Add(1)
			}
		}
	}()

	u, err := url.Parse(proc.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	const requests, workers, size = 3000, 200, 1 << 20
	body := make([]byte, size)
	forged := "Authorization: EXO2-HMAC-SHA256 credential=" + key + ",expires=" +
		strconv.FormatInt(time.Now().Add(5*time.Minute).Unix(), 10) + ",signature=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
	lengthHead := "POST /v2/load-balancer HTTP/1.1\r\nHost: cloud\r\nContent-Type: application/json\r\n"
	reqs := []floodtest.Req{
		{Head: lengthHead + "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n", Body: body},
		{Head: lengthHead + forged + "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n", Body: body},
		{Head: lengthHead + forged + "Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(size, 16) + "\r\n", Body: body},
	}
	flooding.Store(true)
	start := time.Now()
	statuses := floodtest.Flood(u.Host, requests, workers, reqs)
	flooding.Store(false)
	floodTime := time.Since(start)
	close(stop)
	<-signedDone
	peak := peakRSS(t, pid)
	t.Logf("flood of %d × 1 MiB (%d at a time) over %v: outcomes %v; signed requests answered %d (%d during the flood), failed %d; cloud peak RSS %d kB before, %d kB after (limit %d kB)",
		requests, workers, floodTime.Round(time.Millisecond), statuses, signedOK.Load(), signedDuring.Load(), len(signedErrs), before, peak, floodRSSLimitKB)

	if n := floodtest.Accepted(statuses); n > 0 {
		t.Errorf("%d forged or unsigned requests were accepted", n)
	}
	if len(signedErrs) > 0 {
		t.Errorf("%d signed requests failed during the flood, first: %v", len(signedErrs), signedErrs[0])
	}
	if signedDuring.Load() == 0 {
		t.Errorf("no signed request was answered during the flood")
	}
	if peak >= floodRSSLimitKB {
		t.Errorf("cloud peak RSS %d kB under the flood, want under %d kB", peak, floodRSSLimitKB)
	}
	// Headers are read before any check too: they are bounded.
	huge := "GET /v2/load-balancer HTTP/1.1\r\nHost: cloud\r\nX-Padding: " + strings.Repeat("a", 4*cloud.MaxHeaderBytes) + "\r\n\r\n"
	if got := floodtest.Request(u.Host, huge, nil); got != "431" {
		t.Errorf("request with a %d-byte header: %s, want 431", 4*cloud.MaxHeaderBytes, got)
	}
	if got, err := c.GetLoadBalancer(ctx, lb); err != nil || got.Name != "flood" {
		t.Errorf("load balancer after the flood: %+v, %v", got, err)
	}
	lbs, err := c.ListLoadBalancers(ctx)
	if err != nil || len(lbs.LoadBalancers) != 1 {
		t.Errorf("load balancers after the flood: %d, %v; want only the signed one", len(lbs.LoadBalancers), err)
	}
}

// peakRSS returns the peak resident set of process pid in kB (VmHWM).
func peakRSS(t *testing.T, pid int) int {
	t.Helper()
	kb, err := floodtest.StatusKB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	return kb
}
