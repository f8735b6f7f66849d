// Package promrun runs the real Prometheus and Alertmanager binaries (the
// Debian packages) as child processes on loopback, and queries Prometheus'
// HTTP API. The demo and integration tests use it; it owns the processes it
// starts and Stop ends them.
package promrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
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

// FreeAddr returns "host:port" with a port that was free on host a moment ago.
func FreeAddr(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("free port on %s: %w", host, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// Process is a running Prometheus or Alertmanager.
type Process struct {
	// URL is the base URL of the web listener, e.g. http://127.0.0.1:9090.
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
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
		var err error
		if listen, err = FreeAddr("127.0.0.1"); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, append(args(listen), cfg.Args...)...)
	cmd.Stdout, cmd.Stderr = cfg.Output, cfg.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Process{URL: "http://" + listen, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
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
		case <-p.done:
			return fmt.Errorf("exited: %v", p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM, waits up to 5 s, then SIGKILLs the process group. It
// is idempotent and safe to call concurrently.
func (p *Process) Stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// Sample is one element of an instant-query vector result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query against the Prometheus at baseURL and
// returns its vector (a scalar result is returned as one unlabelled sample).
func Query(ctx context.Context, baseURL, expr string) ([]Sample, error) {
	resultType, result, err := apiData(ctx, baseURL+"/api/v1/query?query="+url.QueryEscape(expr))
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch resultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: decode vector: %w", expr, err)
		}
		out := make([]Sample, 0, len(vec))
		for _, v := range vec {
			f, err := parseValue(v.Value[1])
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", expr, err)
			}
			out = append(out, Sample{Labels: v.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var sc [2]any
		if err := json.Unmarshal(result, &sc); err != nil {
			return nil, fmt.Errorf("query %q: decode scalar: %w", expr, err)
		}
		f, err := parseValue(sc[1])
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		return []Sample{{Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %q: unsupported result type %q", expr, resultType)
	}
}

func parseValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", s, err)
	}
	return f, nil
}

// apiData sends a GET to the Prometheus HTTP API endpoint u and returns the
// result type and result of a successful answer; an error answer is
// returned as its message.
func apiData(ctx context.Context, u string) (string, json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", nil, fmt.Errorf("decode: %w", err)
	}
	if body.Status != "success" {
		return "", nil, errors.New(body.Error)
	}
	return body.Data.ResultType, body.Data.Result, nil
}
