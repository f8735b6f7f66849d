package autoscaler

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestCheckAccess is issue 17's item 4: the webhooks are closed by default.
// Loopback without credentials is allowed; any address beyond loopback needs
// a token or basic auth, or the explicit open contract.
func TestCheckAccess(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for no error
	}{
		{"default address", Config{}, ""},
		{"loopback IPv4", Config{Addr: "127.0.0.1:8090"}, ""},
		{"loopback elsewhere in 127/8", Config{Addr: "127.77.0.9:8090"}, ""},
		{"loopback IPv6", Config{Addr: "[::1]:8090"}, ""},
		{"localhost", Config{Addr: "localhost:8090"}, ""},
		{"bare port is every interface", Config{Addr: ":8090"}, "beyond loopback"},
		{"0.0.0.0", Config{Addr: "0.0.0.0:8090"}, "beyond loopback"},
		{"[::]", Config{Addr: "[::]:8090"}, "beyond loopback"},
		{"a LAN address", Config{Addr: "10.0.0.5:8090"}, "beyond loopback"},
		{"a host name", Config{Addr: "monitoring.internal:8090"}, "beyond loopback"},
		{"every interface with a token", Config{Addr: ":8090", AuthToken: "t"}, ""},
		{"every interface with basic auth", Config{Addr: ":8090", BasicAuth: "am:pw"}, ""},
		{"every interface, open contract", Config{Addr: ":8090", OpenWebhooks: true}, ""},
		{"open contract and a token contradict", Config{OpenWebhooks: true, AuthToken: "t"}, "not both"},
		{"open contract and basic auth contradict", Config{OpenWebhooks: true, BasicAuth: "a:b"}, "not both"},
		{"basic auth without a colon", Config{BasicAuth: "nopassword"}, "user:password"},
		{"a listener is checked by Run, not here", Config{Addr: ":8090", Listener: fakeListener{addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5)}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.CheckAccess()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckAccess = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckAccess = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// fakeListener is a net.Listener with a chosen address that accepts nothing.
type fakeListener struct{ addr net.Addr }

func (l fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (l fakeListener) Close() error              { return nil }
func (l fakeListener) Addr() net.Addr            { return l.addr }

// TestRunChecksListenerExposure checks the rule on the listener Run is
// given (its address is only known then), and that the open contract is
// announced with a warning at start.
func TestRunChecksListenerExposure(t *testing.T) {
	tests := []struct {
		name     string
		ln       net.Listener
		edit     func(*Config)
		wantErr  string
		wantWarn bool
	}{
		{"LAN listener without credentials", fakeListener{addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8090}}, nil, "beyond loopback", false},
		{"unspecified listener without credentials", fakeListener{addr: &net.TCPAddr{IP: net.IPv6unspecified, Port: 8090}}, nil, "beyond loopback", false},
		{"LAN listener with a token", fakeListener{addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8090}}, func(c *Config) { c.AuthToken = "t" }, "", false},
		{"unix socket", fakeListener{addr: &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}}, nil, "", false},
		{"LAN listener, open contract", fakeListener{addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8090}}, func(c *Config) { c.OpenWebhooks = true }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := noCloud{t}
			a, _, logs := newTestAutoscaler(t, f, func(c *Config) {
				c.Listener = tt.ln
				c.Ticks = make(chan time.Time)
				if tt.edit != nil {
					tt.edit(c)
				}
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			var err error
			select {
			case err = <-done: // fakeListener's Accept fails at once when serving
			case <-time.After(10 * time.Second):
				cancel()
				t.Fatal("Run did not return")
			}
			cancel()
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Run = %v, want an error containing %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil && strings.Contains(err.Error(), "beyond loopback"):
				t.Errorf("Run = %v, want the listener accepted", err)
			}
			if got := strings.Contains(logs.String(), "webhooks are open"); got != tt.wantWarn {
				t.Errorf("open-contract warning logged = %v, want %v", got, tt.wantWarn)
			}
		})
	}
}
