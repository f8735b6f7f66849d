// Package haproxy runs HAProxy as a layer-4 (tcp mode) round-robin load
// balancer in front of a fixed set of backends: the yardstick the local NLB
// is compared with. Start renders a configuration into a temporary directory,
// starts haproxy in the foreground on a free loopback port and waits until it
// accepts connections; Stop kills that process by PID, reaps it and removes
// the directory. Nothing is left running or on disk once Stop returns.
//
// It owns HAProxy's configuration and process and must not import tidepool
// packages other than supervise and loopback.
package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"tidepool/internal/loopback"
	"tidepool/internal/supervise"
)

// DefaultBin is where the Debian package installs haproxy; Find falls back
// to it when haproxy is not on PATH (/usr/sbin is not on every user's PATH).
const DefaultBin = "/usr/sbin/haproxy"

// Defaults applied to zero Config fields.
const (
	DefaultMaxConn        = 5000 // haproxy needs ~2 fds per connection; 20000 is a common nofile limit
	DefaultConnectTimeout = 5 * time.Second
	DefaultIdleTimeout    = time.Minute
	DefaultCheckRise      = 1
	DefaultCheckFall      = 1
)

// Config describes one tcp-mode listener. Only Backends is required.
type Config struct {
	// Bin is the haproxy executable; "" means Find().
	Bin string
	// Listen is the "ip:port" to bind. Start fills it in when empty (a free
	// port on a random 127.x.y.z); Render requires it.
	Listen string
	// Backends are the servers ("ip:port"), used round-robin per connection
	// in the order given. Required.
	Backends []string
	// CheckInterval turns on TCP-connect health checks every interval
	// (rise 1, fall 1: one result flips a server's state, as the local NLB
	// with retries 1). Zero means no health checks.
	CheckInterval time.Duration
	// CheckTimeout bounds one health check; zero means ConnectTimeout.
	CheckTimeout time.Duration
	// Threads is nbthread; zero means runtime.NumCPU().
	Threads int
	// MaxConn is the global and frontend connection limit; zero means
	// DefaultMaxConn.
	MaxConn int
	// ConnectTimeout bounds a connect to a server; zero means 5s (the NLB's
	// default dial timeout).
	ConnectTimeout time.Duration
	// IdleTimeout is haproxy's client and server inactivity timeout; zero
	// means 1m.
	IdleTimeout time.Duration
	// TempDir is where Start creates the temporary directory holding the
	// config; "" means os.TempDir().
	TempDir string
}

func (cfg Config) withDefaults() Config {
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if cfg.MaxConn <= 0 {
		cfg.MaxConn = DefaultMaxConn
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = cfg.ConnectTimeout
	}
	return cfg
}

var configTemplate = template.Must(template.New("haproxy.cfg").Funcs(template.FuncMap{
	"ms": func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" },
}).Parse(`# Rendered by tidepool bench: layer-4 round-robin, equivalent to the local NLB.
global
  nbthread {{.Threads}}
  maxconn {{.MaxConn}}

defaults
  mode tcp
  balance roundrobin
  option redispatch
  retries 3
  maxconn {{.MaxConn}}
  timeout connect {{ms .ConnectTimeout}}
  timeout client {{ms .IdleTimeout}}
  timeout server {{ms .IdleTimeout}}
{{- if .CheckInterval}}
  timeout check {{ms .CheckTimeout}}
{{- end}}

listen bench
  bind {{.Listen}}
{{- range $i, $b := .Backends}}
  server s{{$i}} {{$b}}{{if $.CheckInterval}} check inter {{ms $.CheckInterval}} rise 1 fall 1{{end}}
{{- end}}
`))

// Render returns the haproxy.cfg text for cfg: one "listen" section in tcp
// mode binding cfg.Listen, balance roundrobin over cfg.Backends, failed
// connects retried on the next server (option redispatch, as the NLB fails
// over on connect), and optional TCP health checks. It fails on a missing or
// malformed listen address or backend.
func Render(cfg Config) (string, error) {
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return "", fmt.Errorf("haproxy: listen address %q: %w", cfg.Listen, err)
	}
	if len(cfg.Backends) == 0 {
		return "", errors.New("haproxy: no backends")
	}
	for _, b := range cfg.Backends {
		if _, _, err := net.SplitHostPort(b); err != nil || strings.ContainsAny(b, " \t\n#") {
			return "", fmt.Errorf("haproxy: backend %q: want ip:port", b)
		}
	}
	if cfg.CheckInterval < 0 {
		return "", fmt.Errorf("haproxy: check interval %v must not be negative", cfg.CheckInterval)
	}
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, cfg.withDefaults()); err != nil {
		return "", fmt.Errorf("haproxy: render config: %w", err)
	}
	return buf.String(), nil
}

// Find returns the haproxy executable: "haproxy" on PATH, else DefaultBin.
func Find() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat(DefaultBin); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return DefaultBin, nil
	}
	return "", errors.New("haproxy: not installed (not on PATH, no " + DefaultBin + "); run scripts/install-deps.sh --bench or apt-get install haproxy")
}

// Version returns the first line of `bin -v`, e.g. "HAProxy version 2.6.12-1 ...".
func Version(ctx context.Context, bin string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, "-v").Output()
	if err != nil {
		return "", fmt.Errorf("haproxy -v: %w", err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}

// Proxy is a running haproxy process. Stop it with Stop.
type Proxy struct {
	addr string
	dir  string
	proc *supervise.Process
	out  *supervise.OutputHead // the start of its output: warnings, alerts

	stopOnce sync.Once
	stopErr  error
}

// startAttempts is how often Start tries a new port when haproxy exits
// before it listens (another process took the port in between).
const startAttempts = 5

// Start writes cfg's configuration into a new temporary directory and runs
// `haproxy -db -f` on it (foreground, no master process: the PID is the
// proxy). When cfg.Listen is empty it picks a free port on a random
// 127.x.y.z, retrying with another one if haproxy cannot bind it. It blocks
// until haproxy accepts connections, ctx is done or haproxy exits; on failure
// everything it started is stopped and removed. ctx only bounds the startup.
func Start(ctx context.Context, cfg Config) (*Proxy, error) {
	if cfg.Bin == "" {
		bin, err := Find()
		if err != nil {
			return nil, err
		}
		cfg.Bin = bin
	}
	var errs []error
	for range startAttempts {
		try := cfg
		if try.Listen == "" {
			addr, err := loopback.FreeAddrPort()
			if err != nil {
				return nil, fmt.Errorf("haproxy: %w", err)
			}
			try.Listen = addr.String()
		}
		p, err := start(ctx, try)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || cfg.Listen != "" || !errors.Is(err, errExited) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errExited = errors.New("haproxy exited before it accepted connections")

func start(ctx context.Context, cfg Config) (*Proxy, error) {
	text, err := Render(cfg)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "tidepool-haproxy-")
	if err != nil {
		return nil, fmt.Errorf("haproxy: temp dir: %w", err)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("haproxy: write config: %w", err)
	}
	p := &Proxy{addr: cfg.Listen, dir: dir, out: &supervise.OutputHead{}}
	// If this process dies without calling Stop, the kernel kills haproxy.
	p.proc, err = supervise.Start(supervise.Config{Args: []string{cfg.Bin, "-db", "-f", path}, Dir: dir, Stdout: p.out, Stderr: p.out})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("haproxy: %w", err), os.RemoveAll(dir))
	}
	if err := p.waitListening(ctx); err != nil {
		return nil, errors.Join(err, p.Stop())
	}
	return p, nil
}

// waitListening polls the listen address until a connect succeeds.
func (p *Proxy) waitListening(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		select {
		case <-p.proc.Done():
			return fmt.Errorf("haproxy on %s: %w (%s): %s", p.addr, errExited, supervise.ExitStatus(p.proc.Err()), strings.TrimSpace(p.out.String()))
		default:
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", p.addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxy on %s: waiting for it to listen: %w", p.addr, ctx.Err())
		case <-tick.C:
		}
	}
}

// Addr is the "ip:port" haproxy listens on.
func (p *Proxy) Addr() string { return p.addr }

// PID is the process id of haproxy.
func (p *Proxy) PID() int { return p.proc.PID() }

// Dir is the temporary directory holding the configuration; Stop removes it.
func (p *Proxy) Dir() string { return p.dir }

// Output returns what haproxy has printed so far (warnings, alerts).
func (p *Proxy) Output() string { return p.out.String() }

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Stop sends SIGTERM to the haproxy process (by PID), waits up to 5s for it
// to exit, then sends SIGKILL, reaps it and removes its temporary directory.
// It blocks until all that is done and is safe to call more than once; the
// error reports a process that survived SIGKILL (supervise.KillWait) or a
// directory that could not be removed.
func (p *Proxy) Stop() error {
	p.stopOnce.Do(func() {
		p.stopErr = p.proc.StopWithin(stopGrace)
		if err := os.RemoveAll(p.dir); err != nil {
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("haproxy: remove %s: %w", p.dir, err))
		}
	})
	return p.stopErr
}
