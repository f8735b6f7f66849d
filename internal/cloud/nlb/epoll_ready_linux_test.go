//go:build linux

package nlb

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestDeferredReadsResume is the regression test of a lost wake-up: a
// socket that keeps filling the loop's buffer is deferred to the loop's
// ready list after readsPerTurn reads, its edge already taken. When its
// sender then has nothing more to send (here: the member wrote its whole
// answer and waits; under back-pressure: a sender stalled on a full
// window), no new event comes; the loop must still finish the deferred
// socket rather than park. With one read per turn every answer larger than
// the loop's buffer is deferred at least once.
func TestDeferredReadsResume(t *testing.T) {
	const size = 2 << 20
	lns := listenSamePort(t, 1)
	answer := make([]byte, size)
	for i := range answer {
		answer[i] = byte(i * 7)
	}
	var served sync.WaitGroup
	served.Go(func() {
		for {
			c, err := lns[0].Accept()
			if err != nil {
				return
			}
			served.Go(func() {
				defer c.Close()
				if _, err := c.Write(answer); err != nil {
					return
				}
				io.Copy(io.Discard, c) // hold the connection open until the client closes it
			})
		}
	})
	t.Cleanup(func() {
		lns[0].Close()
		served.Wait()
	})
	s := newService(t, Config{TargetPort: addrPort(lns[0].Addr()), Check: fastCheck("tcp", 0, ""), DataPath: DataPathEpoll})
	s.dp.(*epollPath).readsPerTurn = 1
	run(t, s)
	s.SetBackends([]Backend{{ID: "writer", IP: addrIP(lns[0].Addr())}})
	waitHealth(t, s, "writer", true)

	for i := range 20 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// A hang is what this test looks for; the deadline only bounds it.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, size)
		n, err := io.ReadFull(c, got)
		c.Close()
		if err != nil {
			t.Fatalf("connection %d: read %d of %d bytes: %v", i, n, size, err)
		}
		if string(got) != string(answer) {
			t.Fatalf("connection %d: answer corrupted", i)
		}
	}
}
