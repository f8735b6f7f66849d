package autoscaler

import (
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud/cloudtest"
	"tidepool/internal/floodtest"
)

// TestAutoscalerUnderBodyFlood floods the real `tidepool autoscaler`
// program's webhook endpoint with 1,000 bodies of 1 MiB (the default
// --max-body; 100 at a time): half declared (read to the limit, then
// refused as malformed), half chunked and twice the limit (refused as too
// large at the limit). Bodies are read at most webhookBodies at once, so its
// peak RSS (VmHWM) stays under 64 MB; before, it reached 273 MB. A webhook
// sent meanwhile is still answered.
func TestAutoscalerUnderBodyFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods an autoscaler process with 1,000 large requests")
	}
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	env := cloudtest.Start(t, cloudtest.Options{})
	poolID := env.CreatePool(t, 1)
	var stderr syncBuffer
	cmd := exec.Command(bin, "autoscaler", "--listen", "127.0.0.1:0", "--tick", "1h", "--max", "3")
	cmd.Env = append(cmd.Environ(),
		"EXOSCALE_KEY="+env.Key, "EXOSCALE_SECRET="+env.Secret, "EXOSCALE_ZONE="+env.Zone,
		"EXOSCALE_API_ENDPOINT="+env.Endpoint, "EXOSCALE_INSTANCEPOOL_ID="+string(poolID))
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := waitFor(t, &stderr, `msg=listening addr=`, 30*time.Second)
	pid := cmd.Process.Pid
	before, err := floodtest.StatusKB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}

	const requests, workers, size = 1000, 100, 1 << 20
	head := "POST /webhook HTTP/1.1\r\nHost: autoscaler\r\nContent-Type: application/json\r\n"
	reqs := []floodtest.Req{
		{Head: head + "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n", Body: make([]byte, size)},
		{Head: head + "Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(2*size, 16) + "\r\n", Body: make([]byte, 2*size)},
	}
	start := time.Now()
	signalled := make(chan int, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // inside the flood
		signalled <- send(t, http.MethodPost, "http://"+addr+"/up", "")
	}()
	outcomes := floodtest.Flood(addr, requests, workers, reqs)
	took := time.Since(start)
	peak, err := floodtest.StatusKB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	code := <-signalled
	t.Logf("flood of %d × 1-2 MiB (%d at a time) over %v: outcomes %v; /up sent meanwhile: %d; autoscaler peak RSS %d kB before, %d kB after",
		requests, workers, took.Round(time.Millisecond), outcomes, code, before, peak)
	if n := floodtest.Accepted(outcomes); n > 0 {
		t.Errorf("%d malformed bodies were accepted", n)
	}
	if code != http.StatusOK {
		t.Errorf("POST /up during the flood = %d, want 200", code)
	}
	huge := "POST /up HTTP/1.1\r\nHost: autoscaler\r\nX-Padding: " + strings.Repeat("a", 4*webhookHeaderBytes) + "\r\n\r\n"
	if got := floodtest.Request(addr, huge, nil); got != "431" {
		t.Errorf("request with a %d-byte header: %s, want 431", 4*webhookHeaderBytes, got)
	}
	if peak >= 64<<10 {
		t.Errorf("autoscaler peak RSS %d kB under the flood, want under %d kB", peak, 64<<10)
	}
}
