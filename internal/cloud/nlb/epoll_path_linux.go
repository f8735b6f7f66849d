//go:build linux

// The epoll data path: its tuning constants and the dataPath methods that start, stop and drain its loops.

package nlb

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// epollSupported tells newDataPath that epollPath runs on this platform.
const epollSupported = true

const (
	loopBufSize     = 64 << 10 // one event loop's read buffer, shared by all its connections
	loopMaxEvents   = 256      // events taken per epoll_wait(2)
	acceptBatch     = 64       // connections accepted per listener event before other events get a turn
	maxScanEvery    = 100 * time.Millisecond
	listenBacklog   = 65535 // the kernel caps it at net.core.somaxconn
	maxSpare        = 32    // pending-write buffers a loop keeps for reuse
	maxReadsPerTurn = 16    // full reads from one socket before the loop's other sockets get a turn
)

// Event masks. Connection sockets are edge-triggered and registered once for
// everything, so no epoll_ctl(2) is needed after EPOLL_CTL_ADD; closing a
// socket removes it from the epoll set.
const (
	// A connected socket is watched for input only; EPOLLOUT is added
	// (EPOLL_CTL_MOD) the first time a write does not go through. Watching
	// it from the start would make every registration of a writable
	// socket an event, i.e. a wake-up of the loop for nothing.
	inEvents     = unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLRDHUP | unix.EPOLLET
	inOutEvents  = inEvents | unix.EPOLLOUT
	listenEvents = unix.EPOLLIN
)

// epollPath is the Linux data path: one event loop per GOMAXPROCS, each a
// goroutine with an epoll instance and a listening socket of its own (all
// bound to the same address with SO_REUSEPORT, so the kernel spreads new
// connections over the loops and wakes only the one that gets it). The
// loop that accepts a connection connects it to a member and moves its
// bytes until it ends, so a connection's state is only ever touched by one
// goroutine and needs no lock. A loop does not block in epoll_wait(2): its
// epoll descriptor is watched by the Go runtime's network poller, and the
// loop parks on it like a goroutine waiting on a net.Conn (see run).
//
// Compared with a goroutine per direction on net.TCPConn (netPath), a
// connection costs about 15 system calls instead of 26 (HAProxy 2.6: 17):
// accept4, socket, TCP_NODELAY on the member leg (the client leg inherits
// it from the listener), connect, two EPOLL_CTL_ADD, a read and a write per
// exchanged message, shutdown and two closes; no getsockname/getpeername, no
// read that ends in EAGAIN in the usual exchange (edge-triggered events and
// short reads tell when a socket is drained), no EPOLL_CTL_DEL, and one
// goroutine wake-up per batch of events instead of one per message and
// direction. The client's first bytes go out right after connect(2) (see
// sendEarly) and sockets are watched for writability only once a write
// stalls, so a short exchange wakes the loop for the accept, the answer and
// the ends of the connection only.
type epollPath struct {
	lfds  []int        // listening sockets, non-blocking; loop i accepts on lfds[i] if it has one
	laddr *net.TCPAddr // where lfds[0] is bound; the other loops' listeners bind there too
	s     *Service     // set by start

	loops   []*loop
	running sync.WaitGroup // loop goroutines
	conns   sync.WaitGroup // accepted connections not yet closed

	// Requests to the loops; each loop reads them when its eventfd is
	// written (wake).
	stopAccept atomic.Bool
	force      atomic.Bool
	quit       atomic.Bool
	acceptAck  sync.WaitGroup // one per loop still watching its listener

	// heldBack counts writes a socket did not take in full (the rest was
	// held back until it could): how often back-pressure set in.
	heldBack atomic.Uint64

	// readsPerTurn is maxReadsPerTurn; tests lower it before start to make
	// every transfer of more than one buffer go through the ready list.
	readsPerTurn int
	// loopCount is how many event loops start runs; 0 means GOMAXPROCS.
	// Tests set 1 where they need one loop to see every connection (each
	// loop evicts among its own connections).
	loopCount int

	mu            sync.Mutex // guards started, acceptStopped, closeErr
	started       bool
	acceptStopped bool
	closeErr      error
}

var _ dataPath = (*epollPath)(nil)

func (p *epollPath) name() DataPath { return DataPathEpoll }
func (p *epollPath) addr() net.Addr { return p.laddr }

func (p *epollPath) start(s *Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.s = s
	p.started = true
	if p.acceptStopped {
		return nil // closed before Run: nothing will ever arrive
	}
	var errs []error
	n := p.loopCount
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	for i := range n {
		lfd := p.lfds[0]
		if i > 0 {
			fd, err := listenSocket(p.laddr)
			if err != nil {
				errs = append(errs, fmt.Errorf("listener of loop %d: %w", i, err))
				continue
			}
			lfd = fd
		}
		l, err := newLoop(p, lfd)
		if err != nil {
			if i == 0 {
				return fmt.Errorf("starting event loop: %w", err)
			}
			// A listener nobody accepts on would hold the connections
			// the kernel gives it: close it.
			unix.Close(lfd)
			errs = append(errs, err)
			continue
		}
		if i > 0 {
			p.lfds = append(p.lfds, lfd)
		}
		p.loops = append(p.loops, l)
	}
	if len(errs) > 0 {
		s.log.Warn("fewer event loops than CPUs", "loops", len(p.loops), "err", errors.Join(errs...))
	}
	p.acceptAck.Add(len(p.loops))
	for _, l := range p.loops {
		p.running.Go(l.run)
	}
	return nil
}

func (p *epollPath) stopAccepting() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.acceptStopped {
		return p.closeErr
	}
	p.acceptStopped = true
	if p.started {
		p.stopAccept.Store(true)
		p.wakeAll()
		p.acceptAck.Wait()
	}
	for _, fd := range p.lfds {
		if err := unix.Close(fd); err != nil && p.closeErr == nil {
			p.closeErr = os.NewSyscallError("close", err)
		}
	}
	return p.closeErr
}

func (p *epollPath) waitConns() { p.conns.Wait() }

func (p *epollPath) forceClose() {
	p.force.Store(true)
	p.wakeAll()
}

func (p *epollPath) stop() {
	p.quit.Store(true)
	p.wakeAll()
	p.running.Wait()
	// Only now: wakeAll may write to a loop's eventfd until here, also
	// after that loop ended on an error.
	for _, l := range p.loops {
		l.close()
	}
}

func (p *epollPath) wakeAll() {
	one := [8]byte{1}
	for _, l := range p.loops {
		unix.Write(l.evfd, one[:]) // only fails when the counter is about to overflow: already woken
	}
}
