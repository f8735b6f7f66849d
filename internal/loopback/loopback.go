// Package loopback owns how tidepool picks addresses in 127.0.0.0/8: random
// addresses and ranges high in the block (127.100.0.0 to 127.250.255.255),
// so that concurrent demos, benchmarks and test packages on one machine do
// not collide, and free ports on them. It must not import anything of
// tidepool; it listens only to probe and hands every listener it keeps to
// the caller.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
)

// attempts is how many random addresses a probing function tries before it
// gives up.
const attempts = 50

// Addr returns a random address 127.a.b.c with a in 100..250, b in 0..255
// and c in 1..254.
func Addr() netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(100 + rand.IntN(151)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
}

// Ranges returns two adjacent random /24 ranges, 127.a.b.0/24 and
// 127.a.(b+1).0/24 with a in 100..250 and b even: a local cloud's member
// and load balancer ranges. It does not check that they are unused.
func Ranges() (first, second netip.Prefix) {
	a, b := byte(100+rand.IntN(151)), byte(rand.IntN(128)*2)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, a, b, 0}), 24),
		netip.PrefixFrom(netip.AddrFrom4([4]byte{127, a, b + 1, 0}), 24)
}

// FreePort returns ip:port with a port that was free on ip a moment ago.
// Another process may take it before the caller binds it: a caller that
// hands the address to a child process retries on a bind failure.
func FreePort(ip netip.Addr) (netip.AddrPort, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("free port on %s: %w", ip, err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	if err := ln.Close(); err != nil {
		return netip.AddrPort{}, fmt.Errorf("free port on %s: %w", ip, err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// FreeAddrPort returns a random address (Addr) with a port that was free on
// it a moment ago (see FreePort).
func FreeAddrPort() (netip.AddrPort, error) {
	var last error
	for range attempts {
		ap, err := FreePort(Addr())
		if err == nil {
			return ap, nil
		}
		last = err
	}
	return netip.AddrPort{}, fmt.Errorf("no free loopback port: %w", last)
}

// Listen returns a TCP listener on a free port of a random address (Addr).
// The caller closes it.
func Listen() (net.Listener, error) {
	var last error
	for range attempts {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(Addr(), 0).String())
		if err == nil {
			return ln, nil
		}
		last = err
	}
	return nil, fmt.Errorf("no loopback address to listen on: %w", last)
}

// ListenSamePort returns n TCP listeners, on 127.a.b.1 to 127.a.b.n (random
// a and b) and one port free on all of them: the backends of a load
// balancer service share the target port. The caller closes them; on error
// none is left open.
func ListenSamePort(n int) ([]net.Listener, error) {
	if n < 1 || n > 254 {
		return nil, fmt.Errorf("listen on %d loopback addresses: want 1 to 254", n)
	}
	var last error
	for range attempts {
		base := Addr().As4()
		ip := func(i int) string { return netip.AddrFrom4([4]byte{127, base[1], base[2], byte(i + 1)}).String() }
		first, err := net.Listen("tcp", ip(0)+":0")
		if err != nil {
			last = err
			continue
		}
		port := strconv.Itoa(first.Addr().(*net.TCPAddr).Port)
		lns := []net.Listener{first}
		for i := 1; i < n; i++ {
			ln, err := net.Listen("tcp", ip(i)+":"+port)
			if err != nil {
				last = err
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == n {
			return lns, nil
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	return nil, fmt.Errorf("could not bind %d loopback addresses on one port: %w", n, last)
}
