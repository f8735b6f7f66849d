package nlb

import "net"

// dataPath accepts client connections and moves their bytes to and from the
// members; Service owns one and drives it from Run. Two implementations
// exist: epollPath (Linux, the default), one event loop per CPU on raw
// sockets, and netPath (every platform), a goroutine per connection
// direction on net.TCPConn.
type dataPath interface {
	// name identifies the implementation in logs.
	name() string
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

// newDataPath binds listen ("ip:port") and returns the data path serving
// it: the portable one when portable is set or no other runs here.
func newDataPath(listen string, portable bool) (dataPath, error) {
	if !portable && epollSupported {
		return newEpollPath(listen)
	}
	return newNetPath(listen)
}
