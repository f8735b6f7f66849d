package app

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// rawClient is a keep-alive HTTP/1.1 client that never retries: one TCP
// connection, requests sent one after the other, any error is a failed
// request (as a simple load balancer health checker or a script would see).
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{conn: c, br: bufio.NewReader(c)}
}

// get sends GET path on the connection and reads the whole response.
func (c *rawClient) get(path string) (*http.Response, error) {
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, "GET "+path+" HTTP/1.1\r\nHost: member\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, err
}

// closedByPeer reports whether the server closed the connection, waiting at
// most wait for it.
func (c *rawClient) closedByPeer(wait time.Duration) bool {
	c.conn.SetReadDeadline(time.Now().Add(wait))
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && !errors.Is(err, os.ErrDeadlineExceeded))
}

// TestShutdownKeepsIdleConnectionsUntilDrainEnds is issue 17's item 8: at
// SIGTERM the app closed idle keep-alive connections at once, so a client
// that does not retry lost the request it sent on one. Now a request sent on
// an idle connection during the drain period is served (with "Connection:
// close", after which the server closes that connection), and an idle
// connection nobody uses is closed only when the drain period is over.
func TestShutdownKeepsIdleConnectionsUntilDrainEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const drain = 800 * time.Millisecond
	s := New(Config{Work: time.Millisecond, Drain: drain, ShutdownTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	busy, idle := dialRaw(t, ln.Addr().String()), dialRaw(t, ln.Addr().String())
	for name, c := range map[string]*rawClient{"busy": busy, "idle": idle} {
		resp, err := c.get("/")
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("%s connection before shutdown: %v, %+v; want 200 kept alive", name, err, resp)
		}
	}

	cancel() // SIGTERM
	start := time.Now()
	waitFor(t, s.Draining)
	time.Sleep(drain / 4) // inside the drain period, as a load balancer still sending would be

	resp, err := busy.get("/")
	if err != nil {
		t.Fatalf("request on a kept-alive connection during the drain failed: %v", err)
	}
	if resp.StatusCode != 200 || !resp.Close { // Close: the response said Connection: close
		t.Errorf("response during the drain: %d, close %v; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if !busy.closedByPeer(time.Second) {
		t.Errorf("the server kept the connection open after answering Connection: close")
	}
	if idle.closedByPeer(drain / 4) {
		t.Errorf("idle connection closed %s after SIGTERM, before the drain period (%s) ended", time.Since(start).Round(time.Millisecond), drain)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
		done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
	if took := time.Since(start); took < drain {
		t.Errorf("Run returned %s after SIGTERM, before the drain period %s", took, drain)
	}
	if !idle.closedByPeer(time.Second) {
		t.Errorf("idle connection still open after Run returned")
	}
}
