package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// rawClient sends the run's one request to a plain http:// target over
// connections owned by the workers (one each, see workerConn), without
// net/http's Transport. The Transport hands every request and response
// between three goroutines (caller, writeLoop, readLoop) and, per new
// connection, starts those goroutines and allocates their buffers (per
// request 62 allocations kept alive, 130 with a connection per request,
// against 24 and 70 here, server included; see BenchmarkRun and
// docs/bench.md for the CPU time). Here the worker writes the
// pre-serialized request and parses the answer with http.ReadResponse
// itself. Semantics match the Transport setup it replaces: the same request
// bytes (Request.Write; no compression header), no redirects followed,
// informational (1xx) answers skipped, a kept-alive connection that the
// server closed while idle is redialled once, and Timeout bounds connect,
// request, answer and body together.
type rawClient struct {
	addr      string // host:port dialled
	req       *http.Request
	wire      []byte // req serialized, sent as is
	keepAlive bool
	timeout   time.Duration
	dialer    net.Dialer
}

// newRawClient prepares the request base for an http:// target.
func newRawClient(base *http.Request, timeout time.Duration, keepAlive bool) (*rawClient, error) {
	host, port := base.URL.Hostname(), base.URL.Port()
	if port == "" {
		port = "80"
	}
	req := base.Clone(context.Background())
	req.Close = !keepAlive // "Connection: close"
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	c := &rawClient{
		addr:      net.JoinHostPort(host, port),
		req:       req,
		wire:      buf.Bytes(),
		keepAlive: keepAlive,
		timeout:   timeout,
	}
	// TCP keep-alive probes are pointless on a connection used once.
	c.dialer.KeepAlive = 30 * time.Second
	if !keepAlive {
		c.dialer.KeepAlive = -1
	}
	return c, nil
}

// errAborted is returned for I/O attempted after the run was cancelled.
var errAborted = errors.New("request aborted: run cancelled")

// workerConn is one worker's connection. abort (run from context.AfterFunc
// when the run is cancelled) may be called from another goroutine; every
// other method is called by the worker only.
type workerConn struct {
	br *bufio.Reader

	mu      sync.Mutex
	conn    net.Conn // nil when closed
	aborted bool
}

func newWorkerConn() *workerConn {
	return &workerConn{br: bufio.NewReaderSize(nil, 4096)}
}

// abort makes the worker's current and future I/O fail at once.
func (w *workerConn) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aborted = true
	if w.conn != nil {
		_ = w.conn.SetDeadline(aLongTimeAgo) // unblocks reads and writes
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// arm installs c (if not nil) and sets the deadline of the current
// connection, unless the run was aborted.
func (w *workerConn) arm(c net.Conn, deadline time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c != nil {
		w.conn = c
	}
	if w.aborted {
		return errAborted
	}
	return w.conn.SetDeadline(deadline)
}

// close closes the current connection, if any.
func (w *workerConn) close() {
	w.mu.Lock()
	c := w.conn
	w.conn = nil
	w.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// do sends the request on w's connection (dialling one when there is none)
// and reads the whole answer. It returns the status (0 if no answer). The
// connection is kept for the next request only after a complete answer
// that allows keep-alive.
func (rc *rawClient) do(ctx context.Context, w *workerConn) (status int, err error) {
	deadline := time.Now().Add(rc.timeout)
	reused := w.conn != nil
	status, retry, err := rc.try(ctx, w, deadline)
	if retry && reused {
		// The server closed the idle connection before it saw the request:
		// try once on a fresh one (net/http does the same).
		status, _, err = rc.try(ctx, w, deadline)
	}
	return status, err
}

// try makes one attempt. retry reports that nothing was received on the
// connection, so that a request on a stale kept-alive connection may be
// repeated.
func (rc *rawClient) try(ctx context.Context, w *workerConn, deadline time.Time) (status int, retry bool, err error) {
	var fresh net.Conn
	if w.conn == nil {
		d := rc.dialer
		d.Deadline = deadline
		c, err := d.DialContext(ctx, "tcp", rc.addr)
		if err != nil {
			return 0, false, err
		}
		fresh = c
		w.br.Reset(c)
	}
	if err := w.arm(fresh, deadline); err != nil {
		w.close()
		return 0, false, err
	}
	conn := w.conn
	if _, err := conn.Write(rc.wire); err != nil {
		w.close()
		return 0, true, err
	}
	if _, err := w.br.Peek(1); err != nil {
		w.close()
		return 0, isClosedIdle(err), err
	}
	resp, err := rc.readResponse(w.br)
	if err != nil {
		w.close()
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil || !rc.keepAlive || resp.Close {
		w.close()
	}
	return resp.StatusCode, false, err
}

// readResponse reads the final answer, skipping up to 5 informational (1xx
// other than 101) ones, as net/http's Transport does.
func (rc *rawClient) readResponse(br *bufio.Reader) (*http.Response, error) {
	for range 5 {
		resp, err := http.ReadResponse(br, rc.req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
	return nil, errors.New("too many 1xx informational responses")
}

// isClosedIdle reports whether err, received before any byte of an answer,
// means the peer had closed the connection (EOF or reset), as a server does
// with a kept-alive connection that was idle too long.
func isClosedIdle(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
}

// isReset reports a connection reset or broken pipe.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
