package haproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRender(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    []string // lines that must appear, in this order
		notWant []string
		wantErr string
	}{
		{
			name: "checks on",
			cfg: Config{Listen: "127.1.2.3:8000", Backends: []string{"127.0.0.1:81", "127.0.0.2:81"},
				CheckInterval: 2 * time.Second, Threads: 2, MaxConn: 500},
			want: []string{"global", "  nbthread 2", "  maxconn 500", "defaults", "  mode tcp", "  balance roundrobin",
				"  option redispatch", "  timeout connect 5000ms", "  timeout client 60000ms", "  timeout server 60000ms",
				"  timeout check 5000ms", "listen bench", "  bind 127.1.2.3:8000",
				"  server s0 127.0.0.1:81 check inter 2000ms rise 1 fall 1",
				"  server s1 127.0.0.2:81 check inter 2000ms rise 1 fall 1"},
		},
		{
			name:    "checks off",
			cfg:     Config{Listen: "127.0.0.1:9", Backends: []string{"127.0.0.1:81"}, ConnectTimeout: time.Second, IdleTimeout: 2 * time.Second},
			want:    []string{"  timeout connect 1000ms", "  timeout client 2000ms", "  server s0 127.0.0.1:81"},
			notWant: []string{"check"},
		},
		{name: "no listen", cfg: Config{Backends: []string{"127.0.0.1:81"}}, wantErr: "listen address"},
		{name: "no backends", cfg: Config{Listen: "127.0.0.1:9"}, wantErr: "no backends"},
		{name: "bad backend", cfg: Config{Listen: "127.0.0.1:9", Backends: []string{"127.0.0.1"}}, wantErr: `backend "127.0.0.1"`},
		{name: "injection", cfg: Config{Listen: "127.0.0.1:9", Backends: []string{"127.0.0.1:81\n  bind :80"}}, wantErr: "want ip:port"},
		{name: "negative check", cfg: Config{Listen: "127.0.0.1:9", Backends: []string{"127.0.0.1:81"}, CheckInterval: -1}, wantErr: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Render err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			lines := strings.Split(got, "\n")
			i := 0
			for _, w := range tt.want {
				for i < len(lines) && lines[i] != w {
					i++
				}
				if i == len(lines) {
					t.Fatalf("config lacks line %q (in order); got:\n%s", w, got)
				}
			}
			for _, nw := range tt.notWant {
				for _, l := range lines {
					if strings.Contains(l, nw) && !strings.HasPrefix(l, "#") {
						t.Errorf("config line %q contains %q; got:\n%s", l, nw, got)
					}
				}
			}
			if bin, err := Find(); err == nil {
				// haproxy itself must accept the rendered config.
				path := filepath.Join(t.TempDir(), "haproxy.cfg")
				if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
					t.Errorf("haproxy -c rejects the config: %v\n%s\n%s", err, out, got)
				}
			}
		})
	}
}

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestStartStop(t *testing.T) {
	bin, err := Find()
	if err != nil {
		t.Skipf("haproxy not installed: %v", err)
	}
	backend := echoServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := Start(ctx, Config{Bin: bin, Backends: []string{backend}, CheckInterval: time.Second})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	pid, dir := p.PID(), p.Dir()

	c, err := net.DialTimeout("tcp", p.Addr(), 10*time.Second)
	if err != nil {
		t.Fatalf("dial haproxy: %v", err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through haproxy = %q, %v; want %q", buf, err, "ping")
	}
	c.Close()

	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("after Stop, kill(%d, 0) = %v; want ESRCH (process gone)", pid, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Stop, stat %s = %v; want not exist", dir, err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("after Stop, %s still accepts connections", p.Addr())
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartFailure(t *testing.T) {
	bin, err := Find()
	if err != nil {
		t.Skipf("haproxy not installed: %v", err)
	}
	// A fixed listen address that is not on this machine (TEST-NET-1):
	// haproxy cannot bind and exits; Start must report why and leave no
	// temporary directory behind.
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := Start(ctx, Config{Bin: bin, Listen: "192.0.2.1:80", Backends: []string{"127.0.0.1:1"}, TempDir: tmp})
	if err == nil {
		p.Stop()
		t.Fatalf("Start on a taken address succeeded; want an error")
	}
	if !errors.Is(err, errExited) {
		t.Errorf("Start err = %v; want it to wrap %v", err, errExited)
	}
	if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
		t.Errorf("temporary files left behind in %s: %v (err %v)", tmp, left, err)
	}
}
