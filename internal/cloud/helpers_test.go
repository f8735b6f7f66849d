package cloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v3 "github.com/exoscale/egoscale/v3"
)

// testLogger logs to stderr when TIDEPOOL_TEST_LOG is set, else discards.
func testLogger(testing.TB) *slog.Logger {
	if os.Getenv("TIDEPOOL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// waitFor polls cond every 50ms until it reports true; it fails t with the
// last explanation after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pidOf returns the PID of the live member process of instance id, or 0.
func pidOf(id string) int {
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
		args := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--instance-id" && args[i+1] == id && alive(pid) {
				return pid
			}
		}
	}
	return 0
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// poolInstances returns the instance IDs the pool lists.
func poolInstances(ctx context.Context, c *v3.Client, id v3.UUID) (*v3.InstancePool, []v3.UUID, error) {
	p, err := c.GetInstancePool(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]v3.UUID, len(p.Instances))
	for i, inst := range p.Instances {
		ids[i] = inst.ID
	}
	return p, ids, nil
}

// appAnswer is the JSON body of the app's GET /.
type appAnswer struct {
	Instance string `json:"instance"`
}

// getInstance sends GET / to addr on a fresh connection and returns the
// instance that answered.
func getInstance(ctx context.Context, addr string) (string, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/?work=1ms", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET / via %s: %s: %s", addr, resp.Status, b)
	}
	var a appAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return "", fmt.Errorf("GET / via %s: %w: %s", addr, err, b)
	}
	return a.Instance, nil
}

func contains(ids []v3.UUID, id v3.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
