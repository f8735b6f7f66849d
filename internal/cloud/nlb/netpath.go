package nlb

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// noKeepAlive leaves TCP keep-alive probes off on both legs of every proxied
// connection, as HAProxy does by default. Every member and client of the
// local cloud is on this machine, where a peer that goes away has its
// sockets closed by the kernel (FIN or RST), so probes find nothing; Go's
// default (15s idle, 15s interval, 9 probes) costs four setsockopt(2) calls
// per socket.
const noKeepAlive = -1

// netPath is the portable data path: an accept loop and, per connection,
// one goroutine per direction copying between net.TCPConns.
type netPath struct {
	ln     *net.TCPListener
	dialer net.Dialer
	s      *Service

	// hard ends dials and open connections (forceClose).
	hard       context.Context
	cancelHard context.CancelFunc

	conns      sync.WaitGroup
	acceptDone chan struct{} // closed when the accept loop returned; nil before start
	mu         sync.Mutex    // guards acceptDone against a concurrent stopAccepting
	closeOnce  sync.Once
	closeErr   error
}

var _ dataPath = (*netPath)(nil)

func newNetPath(listen string) (*netPath, error) {
	lc := net.ListenConfig{KeepAlive: noKeepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &netPath{ln: ln.(*net.TCPListener)}
	p.hard, p.cancelHard = context.WithCancel(context.Background())
	return p, nil
}

func (p *netPath) name() DataPath { return DataPathPortable }
func (p *netPath) addr() net.Addr { return p.ln.Addr() }

func (p *netPath) start(s *Service) error {
	p.s = s
	p.dialer = net.Dialer{Timeout: s.dial, KeepAlive: noKeepAlive}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acceptDone = make(chan struct{})
	go func() {
		defer close(p.acceptDone)
		p.acceptLoop()
	}()
	return nil
}

func (p *netPath) stopAccepting() error {
	p.closeOnce.Do(func() { p.closeErr = p.ln.Close() })
	p.mu.Lock()
	done := p.acceptDone
	p.mu.Unlock()
	if done != nil {
		<-done
	}
	return p.closeErr
}

func (p *netPath) waitConns()  { p.conns.Wait() }
func (p *netPath) forceClose() { p.cancelHard() }
func (p *netPath) stop()       { p.cancelHard() }

// acceptLoop serves each accepted connection in its own goroutine, counted
// in conns, until the listener is closed.
func (p *netPath) acceptLoop() {
	var delay time.Duration
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE, ECONNABORTED and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.s.log.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		p.conns.Add(1)
		go func() {
			defer p.conns.Done()
			p.serve(c)
		}()
	}
}

// serve proxies client to a healthy member and closes client when done. When
// no member can be reached the client is closed at once.
func (p *netPath) serve(client *net.TCPConn) {
	defer client.Close()
	backend, m := p.dial()
	if backend == nil {
		p.s.rejected.Add(1)
		return
	}
	defer backend.Close()
	m.total.Add(1)
	m.active.Add(1)
	defer m.active.Add(-1)
	stop := context.AfterFunc(p.hard, func() {
		client.Close()
		backend.Close()
	})
	defer stop()
	pump(client, backend)
}

// dial connects to the member chosen by the policy and, if that fails, to the
// following healthy members in turn. It returns nil when none answered.
func (p *netPath) dial() (*net.TCPConn, *member) {
	s := p.s
	pool := s.table.Load().healthy
	first := s.policy.Select(pool)
	if first < 0 {
		return nil, nil
	}
	for i := range pool {
		t := pool[(first+i)%len(pool)]
		c, err := p.dialer.DialContext(p.hard, "tcp", t.addr)
		if err == nil {
			return c.(*net.TCPConn), t.m
		}
		t.m.dialErrors.Add(1)
		if p.hard.Err() != nil {
			return nil, nil
		}
		s.log.Warn("backend dial failed", "backend", t.m.id, "addr", t.addr, "err", err)
	}
	return nil, nil
}

// pump copies bytes both ways until both directions are done. A clean EOF
// from one side is passed on as a half-close (FIN) to the other; an error in
// either direction closes both connections. See copyAdaptive for how bytes
// are moved. The caller closes both connections when pump returns.
func pump(client, backend *net.TCPConn) {
	var ended atomic.Bool // one direction has reached a clean EOF
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyHalf(backend, client, &ended)
	}()
	copyHalf(client, backend, &ended)
	<-done
}

// copyHalf copies src to dst and passes src's EOF on as a half-close of dst,
// except in the direction that ends last: both connections are closed right
// after it, which sends the same FIN (every byte received has been read, so
// the close cannot turn into a reset) and saves a shutdown(2).
func copyHalf(dst, src *net.TCPConn, ended *atomic.Bool) {
	if err := copyAdaptive(dst, src); err != nil {
		// Reset, timeout or forced close: tear down both directions.
		src.Close()
		dst.Close()
		return
	}
	if ended.Swap(true) {
		return
	}
	if err := dst.CloseWrite(); err != nil {
		src.Close()
		dst.Close()
	}
}

// pumpBufSize is the read/write buffer of one direction of a connection;
// a read that fills it switches that direction to splice(2).
const pumpBufSize = 8 << 10

var pumpBufs = sync.Pool{New: func() any { b := make([]byte, pumpBufSize); return &b }}

// copyAdaptive copies src to dst until EOF (nil) or an error. Small
// exchanges, the usual request/response traffic, go through a pooled 8 KiB
// buffer with read(2) and write(2); once a read fills the buffer, the rest of
// that direction is a bulk transfer and goes to io.Copy, which uses
// splice(2) between TCP connections (no copy to user space). splice costs
// the same number of system calls per transfer as read and write, but every
// copy in flight holds a pipe (two more file descriptors per direction, so
// six instead of two per proxied connection) taken from a pool that every
// garbage collection empties, after which new pipes cost pipe2(2) and
// fcntl(2). The buffer is held while the connection is open.
func copyAdaptive(dst, src *net.TCPConn) error {
	bp := pumpBufs.Get().(*[]byte)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				pumpBufs.Put(bp)
				return werr
			}
		}
		if rerr != nil {
			pumpBufs.Put(bp)
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
		if n == len(buf) {
			pumpBufs.Put(bp)
			_, err := io.Copy(dst, src)
			return err
		}
	}
}
