// Package promrun runs the real Prometheus and Alertmanager binaries (the
// Debian packages) as child processes on loopback: it finds them, starts
// them, waits until they are ready and stops them. The demo and integration
// tests use it; it owns the processes it starts and Stop ends them. Querying
// is promquery's job; the autoscaler and other agents must not import it.
//
// It owns finding, starting and stopping Prometheus and Alertmanager, and
// must not import tidepool packages other than supervise and loopback.
package promrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"tidepool/internal/loopback"
	"tidepool/internal/supervise"
)

// ErrNotInstalled reports that a binary is missing; the message says which
// Debian package provides it.
var ErrNotInstalled = errors.New("not installed")

// FindBinary returns the path of the first name found in PATH or /usr/bin,
// or an error wrapping ErrNotInstalled that names pkg.
func FindBinary(pkg string, names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
			p := dir + "/" + n
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s: %w (install the Debian package %q, e.g. `make deps` or `apt-get install -y --no-install-recommends %s`)", names[0], ErrNotInstalled, pkg, pkg)
}

// PrometheusBinary finds the prometheus server binary.
func PrometheusBinary() (string, error) { return FindBinary("prometheus", "prometheus") }

// PromtoolBinary finds promtool.
func PromtoolBinary() (string, error) { return FindBinary("prometheus", "promtool") }

// AlertmanagerBinary finds the alertmanager binary (Debian names it prometheus-alertmanager).
func AlertmanagerBinary() (string, error) {
	return FindBinary("prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
}

// AmtoolBinary finds amtool.
func AmtoolBinary() (string, error) { return FindBinary("prometheus-alertmanager", "amtool") }

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Process is a running Prometheus or Alertmanager.
type Process struct {
	// URL is the base URL of the web listener, e.g. http://127.0.0.1:9090.
	URL  string
	proc *supervise.Process
}

// Config describes one process to start.
type Config struct {
	// ConfigFile is the path of the prometheus.yml / alertmanager.yml.
	ConfigFile string
	// DataDir holds the TSDB or Alertmanager storage; it must exist.
	DataDir string
	// Listen is the web listen address; "" picks a free 127.0.0.1 port.
	Listen string
	// Args are extra flags.
	Args []string
	// Output receives the process' stdout and stderr; nil discards them.
	Output io.Writer
	// Logger receives the process's start, exit and stop escalation; nil
	// discards them.
	Logger *slog.Logger
}

// StartPrometheus starts Prometheus and blocks until it is ready or ctx ends.
// The caller must call Stop.
func StartPrometheus(ctx context.Context, cfg Config) (*Process, error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return nil, err
	}
	return start(ctx, bin, cfg, func(listen string) []string {
		return []string{
			"--config.file=" + cfg.ConfigFile,
			"--storage.tsdb.path=" + cfg.DataDir,
			"--storage.tsdb.retention.time=1d",
			"--web.listen-address=" + listen,
			"--web.enable-lifecycle",
		}
	})
}

// StartAlertmanager starts Alertmanager (clustering off) and blocks until it
// is ready or ctx ends. The caller must call Stop.
func StartAlertmanager(ctx context.Context, cfg Config) (*Process, error) {
	bin, err := AlertmanagerBinary()
	if err != nil {
		return nil, err
	}
	return start(ctx, bin, cfg, func(listen string) []string {
		return []string{
			"--config.file=" + cfg.ConfigFile,
			"--storage.path=" + cfg.DataDir,
			"--web.listen-address=" + listen,
			"--cluster.listen-address=",
		}
	})
}

func start(ctx context.Context, bin string, cfg Config, args func(listen string) []string) (*Process, error) {
	listen := cfg.Listen
	if listen == "" {
		ap, err := loopback.FreePort(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
		if err != nil {
			return nil, err
		}
		listen = ap.String()
	}
	proc, err := supervise.Start(supervise.Config{
		Args:   append([]string{bin}, append(args(listen), cfg.Args...)...),
		Stdout: cfg.Output,
		Stderr: cfg.Output,
		Group:  true,
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	p := &Process{URL: "http://" + listen, proc: proc}
	if err := p.waitReady(ctx); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s not ready: %w", bin, err)
	}
	return p, nil
}

func (p *Process) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.proc.Done():
			return fmt.Errorf("exited: %s", supervise.ExitStatus(p.proc.Err()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PID returns the process id.
func (p *Process) PID() int { return p.proc.PID() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.proc.Done() }

// Stop sends SIGTERM, waits up to 5 s, then SIGKILLs the process group, and
// returns once the process is reaped (or has survived SIGKILL for
// supervise.KillWait, which Config.Logger hears of). It is idempotent and
// safe to call concurrently.
func (p *Process) Stop() {
	// A process that survives SIGKILL is logged by the supervisor and left
	// to the kernel, which ends it with us (PDEATHSIG): the caller could do
	// nothing more.
	p.proc.StopWithin(stopGrace)
}
