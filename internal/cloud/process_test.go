package cloud_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
	"github.com/exoscale/egoscale/v3/credentials"

	"tidepool/internal/buildbin"
)

// cloudProcess is a `tidepool cloud` program started by startCloudProcess.
type cloudProcess struct {
	cmd      *exec.Cmd
	endpoint string        // http://127.0.0.1:PORT/v2
	logDone  chan struct{} // closed once its stderr is closed
}

// startCloudProcess runs the real `tidepool cloud` program with args and
// this process's environment plus env, and waits until it reports its
// endpoint. At cleanup a process still running is killed.
func startCloudProcess(t *testing.T, env []string, args ...string) *cloudProcess {
	t.Helper()
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"cloud", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
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
	p := &cloudProcess{cmd: cmd, logDone: make(chan struct{})}
	endpoint := make(chan string, 1)
	go func() {
		defer close(p.logDone)
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
	select {
	case p.endpoint = <-endpoint:
	case <-time.After(30 * time.Second):
		t.Fatal("tidepool cloud did not report its endpoint")
	}
	return p
}

// client returns an egoscale client of p signing with key and secret.
func (p *cloudProcess) client(t *testing.T, key, secret string) *v3.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := v3.NewClient(credentials.NewStaticCredentials(key, secret), v3.ClientOptWithEndpoint(v3.Endpoint(p.endpoint)),
		v3.ClientOptWithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
