package nlb

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"tidepool/internal/bench/haproxy"
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

// echoBackend echoes every connection on ln until its peer closes or
// half-closes it, then closes it. At cleanup it closes ln and waits until
// every connection was closed. (A plain loop: io.Copy between TCP
// connections would splice(2) through pipes that stay open in a pool,
// which TestNoDescriptorLeak would see.)
func echoBackend(b testing.TB, ln net.Listener) {
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
// straight to the backend and through the load balancer (event loop "nlb";
// on Linux also the portable data path, "nlb-portable"), on a kept-open
// connection ("reuse") and on a new connection per round trip ("dial");
// "bulk" streams 1 MiB per op to the echo backend (and back). cpu-ns/op is this process's CPU time:
// client, backend and the in-process balancer (HAProxy's is not in it).
// The difference between "direct" and "nlb" is the latency the balancer adds;
// when haproxy is installed, "haproxy" gives the yardstick (same backend,
// tcp mode).
func BenchmarkProxyRoundTrip(b *testing.B) {
	lns := listenSamePort(b, 1)
	echoBackend(b, lns[0])
	backendAddr := lns[0].Addr().String()

	balancer := func(dp DataPath) *Service {
		s := newService(b, Config{TargetPort: addrPort(lns[0].Addr()), Check: fastCheck("tcp", 0, ""),
			Logger: slog.New(slog.DiscardHandler), DataPath: dp})
		run(b, s)
		s.SetBackends([]Backend{{ID: "echo", IP: addrIP(lns[0].Addr())}})
		waitHealth(b, s, "echo", true)
		return s
	}

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
		{"nlb", balancer(DataPathAuto).Addr().String()},
	}
	if epollSupported {
		targets = append(targets, struct{ name, addr string }{"nlb-portable", balancer(DataPathPortable).Addr().String()})
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
			cpu := startCPU(b)
			for b.Loop() {
				roundTrip(b, c, resp)
			}
			cpu.report(b)
		})
		b.Run(target.name+"/dial", func(b *testing.B) {
			resp := make([]byte, len(req))
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			cpu := startCPU(b)
			for b.Loop() {
				c, err := net.Dial("tcp", target.addr)
				if err != nil {
					b.Fatal(err)
				}
				roundTrip(b, c, resp)
				c.Close()
			}
			cpu.report(b)
		})
		b.Run(target.name+"/bulk", func(b *testing.B) {
			// 1 MiB one way per op to the echo backend, its echo read back
			// concurrently (discarded).
			c, err := net.Dial("tcp", target.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			const total = 1 << 20
			chunk := make([]byte, 64<<10)
			echoed := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, c)
				echoed <- n
			}()
			b.ReportAllocs()
			b.SetBytes(total)
			cpu := startCPU(b)
			for b.Loop() {
				for sent := 0; sent < total; sent += len(chunk) {
					if _, err := c.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu.report(b)
			c.(*net.TCPConn).CloseWrite()
			if n := <-echoed; n != int64(b.N)*total {
				b.Fatalf("echoed %d bytes, want %d", n, int64(b.N)*total)
			}
		})
	}
}

// startHAProxy runs haproxy in tcp mode in front of backend for the rest of
// the benchmark (internal/bench/haproxy, the runner `tidepool bench` uses) and
// returns its listen address; ok is false when haproxy is not installed.
func startHAProxy(b *testing.B, backend string) (addr string, ok bool) {
	bin, err := haproxy.Find()
	if err != nil {
		b.Logf("haproxy comparison skipped: %v", err)
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	p, err := haproxy.Start(ctx, haproxy.Config{Bin: bin, Backends: []string{backend}, TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := p.Stop(); err != nil {
			b.Error(err)
		}
	})
	return p.Addr(), true
}

// cpuClock measures this process's CPU time (user+system, all threads),
// which other work on a shared machine disturbs less than wall time.
type cpuClock struct{ start time.Duration }

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) cpuClock { return cpuClock{processCPU(b)} }

// report adds the metric cpu-ns/op: CPU time of the whole process (both
// ends of the benchmark included) per operation.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU(b)-c.start)/float64(b.N), "cpu-ns/op")
}

// tcpPair returns the two ends of a fresh loopback TCP connection.
func tcpPair(b *testing.B, ln *net.TCPListener) (dialed, accepted *net.TCPConn) {
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		b.Fatal(err)
	}
	a, err := ln.AcceptTCP()
	if err != nil {
		b.Fatal(err)
	}
	return c, a
}

// BenchmarkPump measures the connection pump between a client connection
// and a backend connection, without accept, backend choice or dial:
// "roundtrip" is one 64-byte request and 64-byte answer over an open pumped
// pair; "conn" is a whole short connection (pump start, one round trip,
// half-close both ways, pump end) on fresh TCP pairs, the connect and
// accept included; "bulk" streams 1 MiB from client to backend.
func BenchmarkPump(b *testing.B) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	msg := make([]byte, 64)
	resp := make([]byte, 64)
	// pumped starts a pump between two fresh pairs and returns the client
	// end, the backend end and a channel closed when the pump returns.
	pumped := func(b *testing.B) (client, backend *net.TCPConn, done chan struct{}) {
		client, proxyIn := tcpPair(b, l)
		proxyOut, backend := tcpPair(b, l)
		done = make(chan struct{})
		go func() {
			defer close(done)
			defer proxyIn.Close()
			defer proxyOut.Close()
			pump(&netConn{client: proxyIn, backend: proxyOut}, 0)
		}()
		return client, backend, done
	}
	roundTrip := func(b *testing.B, client, backend *net.TCPConn) {
		if _, err := client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(backend, resp); err != nil {
			b.Fatal(err)
		}
		if _, err := backend.Write(resp); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, resp); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("roundtrip", func(b *testing.B) {
		client, backend, done := pumped(b)
		b.ReportAllocs()
		b.SetBytes(2 * int64(len(msg)))
		cpu := startCPU(b)
		for b.Loop() {
			roundTrip(b, client, backend)
		}
		b.StopTimer()
		cpu.report(b)
		client.Close()
		backend.Close()
		<-done
	})
	b.Run("conn", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			client, backend, done := pumped(b)
			roundTrip(b, client, backend)
			client.CloseWrite()
			if _, err := io.ReadAll(backend); err != nil { // the FIN passed on
				b.Fatal(err)
			}
			backend.Close()
			<-done
			client.Close()
		}
		b.StopTimer()
		cpu.report(b)
	})
	b.Run("bulk", func(b *testing.B) {
		client, backend, done := pumped(b)
		chunk := make([]byte, 64<<10)
		const total = 1 << 20
		b.ReportAllocs()
		b.SetBytes(total)
		drained := make(chan error, 1)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := backend.Read(buf); err != nil {
					if errors.Is(err, io.EOF) {
						err = nil
					}
					drained <- err
					return
				}
			}
		}()
		cpu := startCPU(b)
		for b.Loop() {
			for sent := 0; sent < total; sent += len(chunk) {
				if _, err := client.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		cpu.report(b)
		client.CloseWrite()
		if err := <-drained; err != nil {
			b.Fatal(err)
		}
		client.Close()
		backend.Close()
		<-done
	})
}
