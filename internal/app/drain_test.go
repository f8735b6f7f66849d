package app

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tidepool/internal/buildbin"
)

// TestSIGTERMDrainsWithoutFailures runs the real binary, keeps concurrent
// clients sending requests, sends SIGTERM, and checks that /health turns 503
// while requests keep succeeding, that not one request fails, and that the
// process exits 0.
func TestSIGTERMDrainsWithoutFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.%d.%d.%d:18080", 100+os.Getpid()%150, os.Getpid()/150%250, 2+time.Now().Nanosecond()%200)
	cmd := exec.Command(bin, "app", "--listen", addr, "--instance-id", "drain-test", "--work", "2ms", "--drain", "3s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default:
			}
		}
	}()
	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("app never became healthy: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(base + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Health must flip to 503 well before the drain period ends.
	for {
		resp, err := client.Get(base + "/health")
		if err != nil {
			t.Fatalf("health during drain: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Since(sent) > time.Second {
			t.Fatalf("health still %d %s after SIGTERM", resp.StatusCode, time.Since(sent))
		}
	}
	okAt503 := ok.Load()
	// Clients, like a load balancer, stop sending once the health check fails;
	// they keep sending for a third of the drain period after SIGTERM (health
	// may take up to 1s of it to turn), well before the listener closes.
	time.Sleep(time.Until(sent.Add(time.Second + 200*time.Millisecond)))
	close(stop)
	wg.Wait()
	if ok.Load() <= okAt503 {
		t.Errorf("no request served after health turned 503; want serving to continue during the drain")
	}

	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("exit: %v, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}
	if elapsed := time.Since(sent); elapsed > 10*time.Second {
		t.Errorf("exit took %s after SIGTERM, want < 10s", elapsed)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during drain (first: %v)", n, n+ok.Load(), firstErr.Load())
	}
	var all []string
	for len(logs) > 0 {
		all = append(all, <-logs)
	}
	if !strings.Contains(strings.Join(all, "\n"), "draining") {
		t.Errorf("logs do not mention draining:\n%s", strings.Join(all, "\n"))
	}
}
