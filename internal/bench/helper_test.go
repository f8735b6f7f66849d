package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBackendServer(t *testing.T) {
	srv := httptest.NewServer(&backendServer{})
	t.Cleanup(srv.Close)
	do := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	arrivals := func() []int64 {
		t.Helper()
		code, body := do(http.MethodGet, "/_bench/arrivals")
		var out []int64
		if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil {
			t.Fatalf("arrivals: %d %q %v", code, body, err)
		}
		return out
	}

	if code, body := do(http.MethodGet, "/"); code != 200 || body != "ok\n" {
		t.Fatalf("GET / = %d %q; want 200 \"ok\\n\"", code, body)
	}
	if got := arrivals(); len(got) != 0 {
		t.Errorf("arrivals before recording = %v; want none", got)
	}
	if code, _ := do(http.MethodPost, "/_bench/record"); code != 200 {
		t.Fatalf("POST record = %d", code)
	}
	before := time.Now().UnixNano()
	for range 3 {
		do(http.MethodGet, "/")
	}
	do(http.MethodGet, "/health") // not a load request: not recorded
	got := arrivals()
	if len(got) != 3 || got[0] < before || got[2] > time.Now().UnixNano() {
		t.Errorf("recorded arrivals %v; want 3 between %d and now", got, before)
	}
	do(http.MethodGet, "/")
	if got := arrivals(); len(got) != 0 {
		t.Errorf("arrivals after they were taken = %v; want none (recording stops)", got)
	}

	for _, bad := range []string{"/_bench/stall", "/_bench/stall?for=x", "/_bench/stall?for=-1s", "/_bench/stall?for=2m"} {
		if code, _ := do(http.MethodPost, bad); code != http.StatusBadRequest {
			t.Errorf("POST %s = %d; want 400", bad, code)
		}
	}
	if code, _ := do(http.MethodGet, "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d; want 404", code)
	}
	if code, _ := do(http.MethodPost, "/_bench/stall?for=300ms"); code != 200 {
		t.Fatalf("POST stall = %d", code)
	}
	start := time.Now()
	do(http.MethodGet, "/") // held until the stall ends
	if held := time.Since(start); held < 200*time.Millisecond {
		t.Errorf("request during a 300ms stall answered after %s; want it held until the stall ends", held)
	}
}

func TestRunHelperBadArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, "unknown role"},
		{[]string{"_nope"}, `unknown role "_nope"`},
		{[]string{RoleBackends, "-n", "0"}, "out of range"},
		{[]string{RoleBackends, "-x"}, "flag provided but not defined"},
		{[]string{RoleNLB, "-backends", "127.0.0.1"}, `backend "127.0.0.1"`},
		{[]string{RoleNLB, "-backends", "127.0.0.1:80,127.0.0.2:81"}, "share one port"},
	}
	for _, tt := range tests {
		err := RunHelper(context.Background(), tt.args, strings.NewReader(""), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("RunHelper(%q) = %v; want an error containing %q", tt.args, err, tt.wantErr)
		}
	}
}

// TestRunHelperLifecycle runs both roles in process: each reports its
// addresses, serves, and returns nil once its stdin is closed.
func TestRunHelperLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type helper struct {
		stdin *io.PipeWriter
		ready string
		done  chan error
	}
	start := func(args ...string) *helper {
		t.Helper()
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		h := &helper{stdin: inW, done: make(chan error, 1)}
		go func() {
			err := RunHelper(ctx, args, inR, outW)
			outW.Close()
			h.done <- err
		}()
		line, err := bufio.NewReader(outR).ReadString('\n')
		if err != nil {
			t.Fatalf("%v: no ready line: %v (%v)", args, err, <-h.done)
		}
		go func() { _, _ = io.Copy(io.Discard, outR) }()
		h.ready = line
		return h
	}
	stop := func(h *helper) {
		t.Helper()
		h.stdin.Close()
		if err := <-h.done; err != nil {
			t.Errorf("RunHelper after stdin closed = %v; want nil", err)
		}
	}

	b := start(RoleBackends, "-n", "2")
	var br backendsReady
	if err := json.Unmarshal([]byte(b.ready), &br); err != nil || len(br.Addrs) != 2 {
		t.Fatalf("backends ready line %q (%v); want 2 addresses", b.ready, err)
	}
	n := start(RoleNLB, "-backends", strings.Join(br.Addrs, ","))
	var nr nlbReady
	if err := json.Unmarshal([]byte(n.ready), &nr); err != nil || nr.Addr == "" {
		t.Fatalf("nlb ready line %q (%v); want an address", n.ready, err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	for _, addr := range append(br.Addrs, nr.Addr) {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("GET via %s: %v", addr, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Errorf("GET via %s = %d %q; want 200 ok", addr, resp.StatusCode, body)
		}
	}
	stop(n)
	stop(b)
}
