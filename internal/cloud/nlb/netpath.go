package nlb

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
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

	liveMu        sync.Mutex           // guards the fields below
	live          int                  // connections being proxied (connected to a member)
	evictable     evictQueue[*netConn] // those connections, oldest first
	noEvictBefore time.Time            // as loop.noEvictBefore
}

// netConn is one proxied connection of the portable path.
type netConn struct {
	client, backend *net.TCPConn
	last            atomic.Int64 // when bytes last moved either way, Unix nanoseconds
	moved           atomic.Bool  // bytes have moved through it (see evictable)
	ended           atomic.Bool  // its pump has returned
	closing         atomic.Bool  // closed by the idle timeout or evicted (counted once)
	admission       atomic.Int32 // who releases its admission: admissionHeld, then handed over or released
}

// The states of netConn.admission: the connection holds its admission
// (admit) until either its goroutine releases it at the end, or an
// eviction hands it over to the connection that replaces it; whichever
// comes first wins.
const (
	admissionHeld int32 = iota
	admissionHandedOver
	admissionReleased
)

func (c *netConn) touch() { c.last.Store(time.Now().UnixNano()) }

// lastActive returns when bytes last moved through c.
func (c *netConn) lastActive() time.Time { return time.Unix(0, c.last.Load()) }

// close closes both connections (the pump's goroutines then end), once; it
// reports whether this call closed them.
func (c *netConn) close() bool {
	if !c.closing.CompareAndSwap(false, true) {
		return false
	}
	c.client.Close()
	c.backend.Close()
	return true
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
			p.s.warnAccept(err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		// At the cap, an evicted connection's admission passes to this one
		// (its goroutines may still be ending: they do not release it); an
		// eviction that lost the race with the connection's own end leaves
		// room to admit anew.
		if !p.s.admit() && !p.evictIdle() && !p.s.admit() {
			p.s.refuse()
			c.Close()
			continue
		}
		p.conns.Add(1)
		go func() {
			defer p.conns.Done()
			if nc := p.serve(c); nc == nil || nc.admission.CompareAndSwap(admissionHeld, admissionReleased) {
				p.s.release()
			}
		}()
	}
}

// serve proxies client to a healthy member and closes client when done. When
// no member can be reached the client is closed at once (nil is returned);
// else it returns the proxied connection once it has ended.
func (p *netPath) serve(client *net.TCPConn) *netConn {
	defer client.Close()
	backend, m := p.dial()
	if backend == nil {
		p.s.rejected.Add(1)
		return nil
	}
	defer backend.Close()
	m.total.Add(1)
	m.active.Add(1)
	defer m.active.Add(-1)
	c := &netConn{client: client, backend: backend}
	c.touch()
	p.track(c, true)
	defer p.track(c, false)
	stop := context.AfterFunc(p.hard, func() {
		client.Close()
		backend.Close()
	})
	defer stop()
	if pump(c, p.s.idle) {
		p.s.idled.Add(1)
	}
	return c
}

// track adds c to, or removes it from, the connections eviction chooses
// from.
func (p *netPath) track(c *netConn, add bool) {
	p.liveMu.Lock()
	defer p.liveMu.Unlock()
	if add {
		p.live++
		p.evictable.push(c, p.live, (*netConn).gone)
	} else {
		p.live--
		c.ended.Store(true)
	}
}

// gone reports whether c's pump has ended or c is being closed.
func (c *netConn) gone() bool { return c.ended.Load() || c.closing.Load() }

// evictIdle closes the oldest proxied connection that may be closed to make
// room for a new one (see evictable) and hands its admission over to the
// new one; it reports whether it did. Like loop.evictIdle it does not look
// again for evictBackoff after finding none.
func (p *netPath) evictIdle() bool {
	now := time.Now()
	p.liveMu.Lock()
	if now.Before(p.noEvictBefore) {
		p.liveMu.Unlock()
		return false
	}
	victim, ok := p.evictable.pick(func(c *netConn) evictState {
		switch {
		case c.gone():
			return evictGone
		case p.s.evictable(now, c.lastActive(), c.moved.Load()):
			return evictTake
		}
		return evictKeep
	})
	if !ok {
		p.noEvictBefore = now.Add(evictBackoff)
	}
	p.liveMu.Unlock()
	if !ok {
		return false
	}
	if !victim.admission.CompareAndSwap(admissionHeld, admissionHandedOver) {
		return false // it ended meanwhile and released its admission: admit anew
	}
	if victim.close() {
		p.s.evicted.Add(1)
	} // else the idle timeout is closing it: its admission is ours all the same
	return true
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

// errIdle ends a direction of a connection through which nothing moved,
// either way, for the idle timeout.
var errIdle = errors.New("idle timeout")

// pump copies bytes both ways between c's connections until both
// directions are done. A clean EOF from one side is passed on as a
// half-close (FIN) to the other; an error in either direction closes both
// connections. With idle > 0 the connection is closed once no byte has moved
// either way for idle (then pump reports true). See copyAdaptive for how
// bytes are moved. The caller closes both connections when pump returns.
func pump(c *netConn, idle time.Duration) (idleClosed bool) {
	var ended atomic.Bool // one direction has reached a clean EOF
	done := make(chan error, 1)
	go func() { done <- copyHalf(c.backend, c.client, &ended, c, idle) }()
	err := copyHalf(c.client, c.backend, &ended, c, idle)
	other := <-done
	return (errors.Is(err, errIdle) || errors.Is(other, errIdle)) && c.close()
}

// copyHalf copies src to dst and passes src's EOF on as a half-close of dst,
// except in the direction that ends last: both connections are closed right
// after it, which sends the same FIN (every byte received has been read, so
// the close cannot turn into a reset) and saves a shutdown(2). It returns
// the error that ended the copy (errIdle for the idle timeout), nil at EOF.
func copyHalf(dst, src *net.TCPConn, ended *atomic.Bool, c *netConn, idle time.Duration) error {
	if err := copyIdle(dst, src, c, idle); err != nil {
		// Reset, timeout or forced close: tear down both directions.
		src.Close()
		dst.Close()
		return err
	}
	if ended.Swap(true) {
		return nil
	}
	if err := dst.CloseWrite(); err != nil {
		src.Close()
		dst.Close()
		return err
	}
	return nil
}

// copyIdle is copyAdaptive under the idle timeout (idle > 0): src's read
// deadline is the moment c will have been idle for idle. When it passes and
// c has indeed been idle that long (the other direction may have moved bytes
// meanwhile, or this one bytes the deadline interrupted), it returns
// errIdle; otherwise the copy goes on with a later deadline. Only reads have
// a deadline: a write stalled on a peer that does not read leaves the
// connection idle, and the other direction's deadline ends it.
func copyIdle(dst, src *net.TCPConn, c *netConn, idle time.Duration) error {
	for {
		if idle > 0 {
			src.SetReadDeadline(c.lastActive().Add(idle))
		}
		err := copyAdaptive(dst, src, c)
		if idle <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if time.Since(c.lastActive()) >= idle {
			return errIdle
		}
	}
}

// pumpBufSize is the read/write buffer of one direction of a connection;
// a read that fills it switches that direction to splice(2).
const pumpBufSize = 8 << 10

// bulkChunk is how much a bulk transfer moves between two updates of the
// connection's activity time.
const bulkChunk = 1 << 20

var pumpBufs = sync.Pool{New: func() any { b := make([]byte, pumpBufSize); return &b }}

// copyAdaptive copies src to dst until EOF (nil) or an error, marking c
// active (touch) as bytes move. Small exchanges, the usual request/response
// traffic, go through a pooled 8 KiB buffer with read(2) and write(2); once
// a read fills the buffer, the rest of that direction is a bulk transfer
// and goes to io.CopyN in chunks of bulkChunk, which uses splice(2) between
// TCP connections (no copy to user space). splice costs the same number of
// system calls per transfer as read and write, but every copy in flight
// holds a pipe (two more file descriptors per direction, so six instead of
// two per proxied connection) taken from a pool that every garbage
// collection empties, after which new pipes cost pipe2(2) and fcntl(2).
// The buffer is held while the connection is open.
func copyAdaptive(dst, src *net.TCPConn, c *netConn) error {
	bp := pumpBufs.Get().(*[]byte)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			c.touch()
			c.moved.Store(true)
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
			for {
				n, err := io.CopyN(dst, src, bulkChunk)
				if n > 0 {
					c.touch()
				}
				switch {
				case err == io.EOF:
					return nil
				case err != nil:
					return err
				}
			}
		}
	}
}
