package nlb

import (
	"errors"
	"fmt"
	"net"
)

// DataPath names how a Service moves bytes; see Config.DataPath.
type DataPath string

// The data paths.
const (
	// DataPathAuto is DataPathEpoll where it runs (Linux), else
	// DataPathPortable.
	DataPathAuto DataPath = "auto"
	// DataPathEpoll is one epoll event loop per CPU on raw non-blocking
	// sockets; Linux only.
	DataPathEpoll DataPath = "epoll"
	// DataPathPortable is a goroutine per connection direction on
	// net.TCPConn; every platform. It is the way out where the event loop
	// is refused (a kernel or sandbox without epoll or SO_REUSEPORT).
	DataPathPortable DataPath = "portable"
)

// ParseDataPath returns the data path named s: "auto", "epoll" or
// "portable" ("" is "auto"). It fails for an unknown name and for "epoll"
// where the event loop does not run.
func ParseDataPath(s string) (DataPath, error) {
	switch d := DataPath(s); d {
	case "", DataPathAuto:
		return DataPathAuto, nil
	case DataPathPortable:
		return d, nil
	case DataPathEpoll:
		if !epollSupported {
			return "", errors.New("data path epoll: needs Linux")
		}
		return d, nil
	}
	return "", fmt.Errorf("data path %q: want auto, epoll or portable", s)
}

// dataPath accepts client connections and moves their bytes to and from the
// members; Service owns one and drives it from Run. Two implementations
// exist: epollPath (DataPathEpoll; Linux, the default), one event loop per
// CPU on raw sockets, and netPath (DataPathPortable; every platform), a
// goroutine per connection direction on net.TCPConn.
type dataPath interface {
	// name identifies the implementation (Service.DataPath, logs,
	// metrics): DataPathEpoll or DataPathPortable.
	name() DataPath
	// addr is the bound listener address.
	addr() net.Addr
	// start begins accepting and proxying; s supplies the member table,
	// the policy, the dial timeout, counters and the logger. Called at most
	// once; on error nothing was started.
	start(s *Service) error
	// stopAccepting closes the listener and returns once no new connection
	// will be accepted. Safe before start; idempotent (the first error is
	// returned again).
	stopAccepting() error
	// waitConns blocks until every accepted connection has been closed.
	waitConns()
	// forceClose closes every open connection, including ones still
	// connecting to a member.
	forceClose()
	// stop releases what start allocated and waits for its goroutines. It
	// is called after stopAccepting and waitConns have returned.
	stop()
}

// newDataPath binds listen ("ip:port") and returns the data path d (a
// ParseDataPath result) serving it.
func newDataPath(listen string, d DataPath) (dataPath, error) {
	if d == DataPathEpoll || d == DataPathAuto && epollSupported {
		return newEpollPath(listen)
	}
	return newNetPath(listen)
}
