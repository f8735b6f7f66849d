package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tidepool/internal/cloud/nlb"
	"tidepool/internal/loopback"
)

// Helper roles: the benchmark runs its backends and the local NLB in child
// processes (see Config.Helper), each started as `<Helper...> <role> <flags>`.
const (
	// RoleBackends serves instant HTTP answers on several loopback
	// addresses sharing one port; it also records arrival times and injects
	// stalls on request (control paths under /_bench/).
	RoleBackends = "_backends"
	// RoleNLB runs one nlb.Service in front of the given backends.
	RoleNLB = "_nlb"
)

// IsHelper reports whether arg names a helper role, i.e. whether a command
// line `tidepool bench <arg> ...` should be handed to RunHelper.
func IsHelper(arg string) bool { return arg == RoleBackends || arg == RoleNLB }

// backendsReady is the line RoleBackends prints once it serves.
type backendsReady struct {
	Addrs []string `json:"addrs"`
}

// nlbReady is the line RoleNLB prints once every backend is healthy.
type nlbReady struct {
	Addr string `json:"addr"`
}

// helperCheckInterval is the health check interval of both proxies (the NLB
// here, HAProxy in Run): health checks are on, as in production.
const helperCheckInterval = 2 * time.Second

// RunHelper runs the helper role args[0] with the flags args[1:]. Once it
// serves it writes one JSON line to stdout (the addresses it listens on),
// then it runs until stdin reaches EOF (the parent closed it or died) or ctx
// is done, and returns nil after a clean shutdown. It is the child side of
// Run; users do not call it.
func RunHelper(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || !IsHelper(args[0]) {
		return fmt.Errorf("bench helper: unknown role %q", strings.Join(args[:min(len(args), 1)], ""))
	}
	fs := flag.NewFlagSet("tidepool bench "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 3, "number of loopback addresses (backends)")
	backends := fs.String("backends", "", "comma-separated ip:port list, one port (nlb)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("bench helper %s: %w", args[0], err)
	}
	var members []nlb.Backend
	var port uint16
	if args[0] == RoleBackends {
		if *n < 1 || *n > 250 {
			return fmt.Errorf("bench helper: -n %d out of range 1..250", *n)
		}
	} else {
		for i, b := range strings.Split(*backends, ",") {
			ap, err := netip.ParseAddrPort(b)
			if err != nil {
				return fmt.Errorf("bench helper: backend %q: %w", b, err)
			}
			if i > 0 && ap.Port() != port {
				return fmt.Errorf("bench helper: backends must share one port, got %s", *backends)
			}
			port = ap.Port()
			members = append(members, nlb.Backend{ID: "b" + strconv.Itoa(i), IP: ap.Addr()})
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	if args[0] == RoleBackends {
		return serveBackends(ctx, *n, stdout)
	}
	return serveNLB(ctx, members, port, stdout)
}

// backendServer answers GET / at once with "ok". Control paths: POST
// /_bench/record starts recording arrival times of GET /, GET
// /_bench/arrivals stops and returns them (JSON array of Unix nanoseconds),
// POST /_bench/stall?for=DURATION holds every GET / that arrives in the next
// DURATION until its end.
type backendServer struct {
	recording  atomic.Bool
	stallUntil atomic.Int64 // Unix ns

	mu       sync.Mutex
	arrivals []int64
}

var okBody = []byte("ok\n")

func (s *backendServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" {
		now := time.Now().UnixNano()
		if s.recording.Load() {
			s.mu.Lock()
			s.arrivals = append(s.arrivals, now)
			s.mu.Unlock()
		}
		if until := s.stallUntil.Load(); now < until {
			t := time.NewTimer(time.Duration(until - now))
			select {
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
		}
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"3"}
		_, _ = w.Write(okBody)
		return
	}
	switch {
	case r.URL.Path == "/health":
		_, _ = w.Write(okBody)
	case r.URL.Path == "/_bench/record" && r.Method == http.MethodPost:
		s.mu.Lock()
		s.arrivals = s.arrivals[:0]
		s.mu.Unlock()
		s.recording.Store(true)
	case r.URL.Path == "/_bench/arrivals":
		s.recording.Store(false)
		s.mu.Lock()
		out := append([]int64(nil), s.arrivals...)
		s.arrivals = s.arrivals[:0]
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	case r.URL.Path == "/_bench/stall" && r.Method == http.MethodPost:
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d <= 0 || d > time.Minute {
			http.Error(w, "bad ?for= duration", http.StatusBadRequest)
			return
		}
		s.stallUntil.Store(time.Now().Add(d).UnixNano())
	default:
		http.NotFound(w, r)
	}
}

// serveBackends serves a backendServer on n addresses 127.a.b.1..n sharing
// one port (NLB members share the target port) until ctx is done.
func serveBackends(ctx context.Context, n int, stdout io.Writer) error {
	lns, err := loopback.ListenSamePort(n)
	if err != nil {
		return fmt.Errorf("bench helper: %w", err)
	}
	srv := &http.Server{
		Handler:           &backendServer{},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	var wg sync.WaitGroup
	ready := backendsReady{}
	for _, ln := range lns {
		ready.Addrs = append(ready.Addrs, ln.Addr().String())
		wg.Go(func() { _ = srv.Serve(ln) }) // returns ErrServerClosed after Close
	}
	err = writeReady(stdout, ready)
	if err == nil {
		<-ctx.Done()
	}
	if cerr := srv.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("bench helper: close server: %w", cerr)
	}
	wg.Wait()
	return err
}

// serveNLB runs the local NLB (tcp health checks every 2s, retries 1, as
// HAProxy is configured) in front of backends on a random loopback address,
// reports its address once every backend is healthy, and runs until ctx is
// done.
func serveNLB(ctx context.Context, members []nlb.Backend, port uint16, stdout io.Writer) error {
	var svc *nlb.Service
	var err error
	for range 20 {
		svc, err = nlb.New(nlb.Config{
			Listen:       netip.AddrPortFrom(loopback.Addr(), 0).String(),
			TargetPort:   port,
			Check:        nlb.HealthCheck{Mode: "tcp", Interval: helperCheckInterval, Timeout: 5 * time.Second, Retries: 1},
			Name:         "bench",
			DrainTimeout: time.Second,
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("bench helper: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	svc.SetBackends(members)

	err = waitHealthy(ctx, svc, len(members))
	if err == nil {
		err = writeReady(stdout, nlbReady{Addr: svc.Addr().String()})
	}
	if err == nil {
		<-ctx.Done()
	}
	stop()
	if rerr := <-done; rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// waitHealthy polls svc until n members are healthy, for up to 30s.
func waitHealthy(ctx context.Context, svc *nlb.Service, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		healthy := 0
		for _, st := range svc.Status() {
			if st.Healthy {
				healthy++
			}
		}
		if healthy == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench helper: %d of %d backends healthy: %w", healthy, n, ctx.Err())
		case <-tick.C:
		}
	}
}

func writeReady(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bench helper: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("bench helper: report address: %w", err)
	}
	return nil
}
