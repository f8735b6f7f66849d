// Package httpbody reads HTTP request bodies within a fixed memory budget.
// Each body is bounded in size, and only a few are read at once, so a flood
// of large requests, authentic or not, cannot grow a server beyond
// Concurrent × Max bytes of request bodies: the rest wait for a slot (only
// their connection's small buffers are held meanwhile) or are turned away.
//
// Servers that authenticate requests whose signature covers the body (the
// cloud's EXO2-HMAC-SHA256) make every check that needs no body first and
// read it through a Reader only then.
package httpbody

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Defaults for zero Limits fields.
const (
	DefaultConcurrent  = 16
	DefaultWait        = 5 * time.Second
	DefaultReadTimeout = 10 * time.Second
)

// Errors returned by Reader.Read (wrapped); Status maps them to HTTP
// statuses.
var (
	// ErrTooLarge: the body is larger than Limits.Max (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrBusy: no read slot became free within Limits.Wait (503).
	ErrBusy = errors.New("too many request bodies being read at once")
)

// Limits bounds body reads. Only Max is required.
type Limits struct {
	// Max is the largest body accepted, in bytes; it must be positive.
	Max int64
	// Concurrent is how many bodies are read at once; 0 means
	// DefaultConcurrent.
	Concurrent int
	// Wait is the longest a request waits for a read slot before Read
	// fails with ErrBusy; 0 means DefaultWait.
	Wait time.Duration
	// ReadTimeout is the longest one body may take to arrive once its read
	// started (the connection's read deadline), so a client that trickles
	// its body cannot hold a slot; 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
}

// Reader reads request bodies within its Limits. It is safe for concurrent
// use; the zero value is not usable, call New.
//
// Each read slot owns a buffer of Max bytes, allocated on first use and
// reused. A body is read into its slot's buffer and handed out from there,
// without a copy: the caller holds the slot while it checks and uses the
// body (a signature check, JSON decoding) and releases it when done. So
// everything a flood of bodies can cost, the bodies and their decoding, is
// bounded by Concurrent, and a body refused (too large, forged) allocates
// nothing.
type Reader struct {
	lim   Limits
	slots chan []byte // a token per free slot: its buffer (nil until first used)
}

// New returns a Reader for l (defaults applied). It panics if l.Max is not
// positive: that is a programming error.
func New(l Limits) *Reader {
	if l.Max <= 0 {
		panic(fmt.Sprintf("httpbody: Max %d must be positive", l.Max))
	}
	if l.Concurrent <= 0 {
		l.Concurrent = DefaultConcurrent
	}
	if l.Wait <= 0 {
		l.Wait = DefaultWait
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	b := &Reader{lim: l, slots: make(chan []byte, l.Concurrent)}
	for range l.Concurrent {
		b.slots <- nil
	}
	return b
}

// Max returns the largest body the Reader accepts, in bytes.
func (b *Reader) Max() int64 { return b.lim.Max }

// noRelease is the release of a Read that holds no slot.
func noRelease() {}

// Read returns r's whole body, at most Max bytes, in a buffer of the
// Reader's: body is valid until release is called, and the caller must call
// release exactly once, when it no longer uses body (release is never nil,
// also on error: defer it). An empty body is returned at once (nil) without
// a slot. Otherwise Read takes a slot, blocking while Concurrent other
// bodies are held (at most Wait, or until r's context is done: ErrBusy),
// then reads the body (at most ReadTimeout). A declared Content-Length over
// Max fails with ErrTooLarge before anything is read. After any failure the
// response is marked Connection: close, so that the server does not read
// the rest of the body either. Read does not close r.Body; the server does.
func (b *Reader) Read(w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, noRelease, nil
	}
	body, release, err = b.read(w, r)
	if err != nil {
		w.Header().Set("Connection", "close")
		return nil, noRelease, err
	}
	return body, release, nil
}

func (b *Reader) read(w http.ResponseWriter, r *http.Request) ([]byte, func(), error) {
	if r.ContentLength > b.lim.Max {
		return nil, nil, fmt.Errorf("%w: %d bytes declared, at most %d accepted", ErrTooLarge, r.ContentLength, b.lim.Max)
	}
	var buf []byte
	wait := time.NewTimer(b.lim.Wait)
	select {
	case buf = <-b.slots:
		wait.Stop()
	case <-wait.C:
		return nil, nil, fmt.Errorf("%w: no slot within %v", ErrBusy, b.lim.Wait)
	case <-r.Context().Done():
		wait.Stop()
		return nil, nil, fmt.Errorf("%w: %w", ErrBusy, r.Context().Err())
	}
	if buf == nil {
		buf = make([]byte, b.lim.Max+1) // one more: a body that fills it is too large
	}
	var once sync.Once
	release := func() { once.Do(func() { b.slots <- buf }) }

	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(b.lim.ReadTimeout)) == nil
	n, err := readFull(r.Body, buf)
	if deadline {
		// Back to the server's own deadlines for the next request. (A
		// failure here leaves the connection's deadline at most
		// ReadTimeout away, which only shortens its life.)
		rc.SetReadDeadline(time.Time{})
	}
	switch {
	case err != nil:
		release()
		return nil, nil, fmt.Errorf("read request body: %w", err)
	case int64(n) > b.lim.Max:
		release()
		return nil, nil, fmt.Errorf("%w: more than %d bytes sent", ErrTooLarge, b.lim.Max)
	}
	return buf[:n:n], release, nil
}

// readFull reads src into buf until EOF or buf is full; it returns the bytes
// read and nil at EOF or when buf is full.
func readFull(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Status returns the HTTP status answering a Read error: 413 for
// ErrTooLarge, 503 for ErrBusy, 400 for a body that could not be read.
func Status(err error) int {
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}
