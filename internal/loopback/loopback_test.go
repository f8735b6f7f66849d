package loopback

import (
	"net"
	"testing"
)

func TestAddrAndRanges(t *testing.T) {
	for range 1000 {
		a := Addr()
		b := a.As4()
		if !a.IsLoopback() || b[1] < 100 || b[1] > 250 || b[3] == 0 || b[3] == 255 {
			t.Fatalf("Addr() = %s; want 127.100-250.x.1-254", a)
		}
		m, l := Ranges()
		mb, lb := m.Addr().As4(), l.Addr().As4()
		if m.Bits() != 24 || l.Bits() != 24 || mb[1] != lb[1] || lb[2] != mb[2]+1 || mb[2]%2 != 0 || mb[1] < 100 || mb[1] > 250 {
			t.Fatalf("Ranges() = %s, %s; want adjacent /24s in 127.100-250", m, l)
		}
	}
}

func TestFreePortAndListen(t *testing.T) {
	ap, err := FreeAddrPort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		t.Fatalf("listen on the free %s: %v", ap, err)
	}
	ln.Close()
	ln, err = Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ip := ln.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap(); !ip.IsLoopback() {
		t.Errorf("Listen() on %s; want loopback", ip)
	}
}

func TestListenSamePort(t *testing.T) {
	lns, err := ListenSamePort(3)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	for i, ln := range lns {
		a := ln.Addr().(*net.TCPAddr)
		if i == 0 {
			port = a.Port
		}
		if a.Port != port || a.IP.To4()[3] != byte(i+1) {
			t.Errorf("listener %d on %s; want .%d on port %d", i, a, i+1, port)
		}
		ln.Close()
	}
	if _, err := ListenSamePort(0); err == nil {
		t.Error("ListenSamePort(0): want an error")
	}
}
