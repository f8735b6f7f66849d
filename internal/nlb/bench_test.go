package nlb

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// BenchmarkPick measures backend selection as the data path does it: load
// the published table and ask the policy. It must not allocate.
func BenchmarkPick(b *testing.B) {
	members := make(map[string]*member)
	for i, id := range []string{"a", "b", "c", "d"} {
		members[id] = &member{id: id, ip: netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}), healthy: true}
	}
	s := &Service{policy: &roundRobin{}}
	s.table.Store(buildTable(members, 8080))
	pick := func() *target {
		pool := s.table.Load().healthy
		return &pool[s.policy.Select(pool)]
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if pick().addr == "" {
				b.Fatal("empty address")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if pick().addr == "" {
					b.Fatal("empty address")
				}
			}
		})
	})
}

// echoBackend echoes every connection on ln. At cleanup it closes ln and
// waits until every connection was closed by its peer.
func echoBackend(b *testing.B, ln net.Listener) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// BenchmarkProxyRoundTrip sends a 64-byte request and reads the 64-byte echo,
// straight to the backend and through the load balancer, on a kept-open
// connection ("reuse") and on a new connection per round trip ("dial").
// The difference between "direct" and "nlb" is the latency the balancer adds;
// when haproxy is installed, "haproxy" gives the yardstick (same backend,
// tcp mode).
func BenchmarkProxyRoundTrip(b *testing.B) {
	lns := listenSamePort(b, 1)
	echoBackend(b, lns[0])
	backendAddr := lns[0].Addr().String()

	s := newService(b, Config{TargetPort: addrPort(lns[0].Addr()), Check: fastCheck("tcp", 0, ""), Logger: slog.New(slog.DiscardHandler)})
	run(b, s)
	s.SetBackends([]Backend{{ID: "echo", IP: addrIP(lns[0].Addr())}})
	waitHealth(b, s, "echo", true)

	req := make([]byte, 64)
	for i := range req {
		req[i] = byte('a' + i%26)
	}
	roundTrip := func(b *testing.B, c net.Conn, resp []byte) {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
	}
	targets := []struct{ name, addr string }{
		{"direct", backendAddr},
		{"nlb", s.Addr().String()},
	}
	if addr, ok := startHAProxy(b, backendAddr); ok {
		targets = append(targets, struct{ name, addr string }{"haproxy", addr})
	}
	for _, target := range targets {
		b.Run(target.name+"/reuse", func(b *testing.B) {
			c, err := net.Dial("tcp", target.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			resp := make([]byte, len(req))
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			for b.Loop() {
				roundTrip(b, c, resp)
			}
		})
		b.Run(target.name+"/dial", func(b *testing.B) {
			resp := make([]byte, len(req))
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			for b.Loop() {
				c, err := net.Dial("tcp", target.addr)
				if err != nil {
					b.Fatal(err)
				}
				roundTrip(b, c, resp)
				c.Close()
			}
		})
	}
}

// startHAProxy runs haproxy in tcp mode in front of backend for the rest of
// the benchmark and returns its listen address; ok is false when haproxy is
// not installed.
func startHAProxy(b *testing.B, backend string) (addr string, ok bool) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		b.Logf("haproxy not installed, comparison skipped: %v", err)
		return "", false
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close() // haproxy binds it next; a collision fails the wait below
	cfg := filepath.Join(b.TempDir(), "haproxy.cfg")
	conf := fmt.Sprintf(`global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1m
  timeout server 1m
listen nlb
  bind %s
  server echo %s
`, addr, backend)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	b.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	waitFor(b, "haproxy listening on "+addr, func() bool {
		select {
		case <-exited:
			b.Fatalf("haproxy exited: %s", out.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return addr, true
}
