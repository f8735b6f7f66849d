// Who may reach the control endpoints: loopback unless told otherwise,
// credentials beyond it.

package autoscaler

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// CheckAccess reports a configuration that would let anyone who reaches the
// autoscaler scale the pool: webhooks without AuthToken or BasicAuth on an
// address beyond loopback (an unspecified host such as ":8090" or
// "0.0.0.0:8090" is every interface; a host name other than "localhost"
// counts as beyond loopback), unless OpenWebhooks says so explicitly. It
// also rejects OpenWebhooks together with credentials, and basic auth
// without a colon. Addr is checked when Listener is nil; Run checks the
// listener's own address. It does no I/O.
func (c Config) CheckAccess() error {
	if c.BasicAuth != "" && !strings.Contains(c.BasicAuth, ":") {
		return errors.New("basic auth must be user:password")
	}
	if c.OpenWebhooks && (c.AuthToken != "" || c.BasicAuth != "") {
		return errors.New("open webhooks need no credentials: set the open contract or a token / basic auth, not both")
	}
	if c.Listener != nil {
		return nil
	}
	addr := c.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	return c.checkExposure(addr, hostIsLoopback(addr))
}

// checkExposure is CheckAccess's rule for a listener on addr.
func (c Config) checkExposure(addr string, loopback bool) error {
	if loopback || c.OpenWebhooks || c.AuthToken != "" || c.BasicAuth != "" {
		return nil
	}
	return fmt.Errorf("listening on %s, beyond loopback, without webhook credentials: set an auth token or basic auth (or the open contract, knowingly)", addr)
}

// hostIsLoopback reports whether the host of addr ("host:port") is a
// loopback IP address or "localhost".
func hostIsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// listenerIsLoopback reports whether ln accepts connections from this host
// only: a TCP listener on a loopback address, or a Unix socket.
func listenerIsLoopback(ln net.Listener) bool {
	switch a := ln.Addr().(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
