package nlb

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestCopyHalfSizes sends payloads around the pump buffer size (read/write
// below it, splice(2) after a full buffer) through copyHalf between two
// real TCP connections and checks that every byte arrives in order and the
// EOF is passed on as a half-close.
func TestCopyHalfSizes(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pair := func(t *testing.T) (dialed, accepted *net.TCPConn) {
		t.Helper()
		c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.Close()
			a.Close()
		})
		deadline := time.Now().Add(waitTimeout)
		c.SetDeadline(deadline)
		a.SetDeadline(deadline)
		return c, a
	}
	for _, size := range []int{0, 1, 100, pumpBufSize - 1, pumpBufSize, pumpBufSize + 1, 3*pumpBufSize + 7, 1 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = byte(rand.IntN(256))
			}
			writer, src := pair(t)
			dst, reader := pair(t)
			done := make(chan struct{})
			go func() {
				defer close(done)
				var ended atomic.Bool // the other direction is still open
				copyHalf(dst, src, &ended, &netConn{client: src, backend: dst}, 0)
			}()
			go func() {
				// Uneven chunks, so reads see partial and full buffers.
				for rest := payload; len(rest) > 0; {
					n := min(len(rest), 1+rand.IntN(3*pumpBufSize))
					if _, err := writer.Write(rest[:n]); err != nil {
						return
					}
					rest = rest[n:]
				}
				writer.CloseWrite()
			}()
			got, err := io.ReadAll(reader) // ends only at the passed-on FIN
			if err != nil {
				t.Fatalf("size %d: read: %v", size, err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("size %d: received %d bytes, not equal to the %d sent", size, len(got), len(payload))
			}
			<-done
		})
	}
}
