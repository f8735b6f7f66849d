package member

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// The test binary doubles as a small stand-in for `tidepool app` so that
// member behaviour the real app does not offer (ignoring SIGTERM, crashing on
// demand, leaving a child behind) can be tested. TestMain runs helperMain
// when helperEnv is "1".
const (
	helperEnv = "TIDEPOOL_MEMBER_TEST_HELPER"
	// helperIgnoreTerm=1 makes the helper ignore SIGTERM.
	helperIgnoreTerm = "TIDEPOOL_MEMBER_TEST_IGNORE_TERM"
	// helperBurn=1 makes the helper spin one CPU from the start.
	helperBurn = "TIDEPOOL_MEMBER_TEST_BURN"
	// helperExit=N makes the helper exit with status N at once.
	helperExit = "TIDEPOOL_MEMBER_TEST_EXIT"
	// helperChild=1 makes the helper start a `sleep` child in its process
	// group; GET /child answers its pid.
	helperChild = "TIDEPOOL_MEMBER_TEST_CHILD"
)

// helperCloud, when set (to a cgroup parent), makes the test binary act as a
// cloud: it starts one helper member (id and ip from helperCloudID and
// helperCloudIP), prints its pid and waits to be killed.
const (
	helperCloud   = "TIDEPOOL_MEMBER_TEST_CLOUD"
	helperCloudID = "TIDEPOOL_MEMBER_TEST_CLOUD_ID"
	helperCloudIP = "TIDEPOOL_MEMBER_TEST_CLOUD_IP"
)

func cloudMain() int {
	r, err := NewRunner(RunnerConfig{
		Command:      []string{os.Args[0], "app"},
		Env:          []string{helperEnv + "=1"},
		CgroupParent: os.Getenv(helperCloud),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloud:", err)
		return 1
	}
	ip, err := netip.ParseAddr(os.Getenv(helperCloudIP))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloud:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.Start(ctx, Spec{ID: os.Getenv(helperCloudID), IP: ip, CPUs: 0.5})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloud:", err)
		return 1
	}
	if err := m.Ready(ctx, "/health"); err != nil {
		fmt.Fprintln(os.Stderr, "cloud:", err)
		return 1
	}
	fmt.Println(m.PID())
	time.Sleep(time.Hour) // until the test kills this process
	return 0
}

var sink atomic.Uint64

// helperMain serves GET /health, GET / (JSON {"instance","addr"}),
// GET /exit?code=N (exits at once with N) and GET /child. It exits 0 on
// SIGTERM.
func helperMain(args []string) int {
	if len(args) > 0 && args[0] == "app" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("helper", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	id := fs.String("instance-id", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if v := os.Getenv(helperExit); v != "" {
		code, _ := strconv.Atoi(v)
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if os.Getenv(helperIgnoreTerm) == "1" {
		stop() // NotifyContext would otherwise catch SIGTERM
		signal.Ignore(syscall.SIGTERM)
		ctx = context.Background()
	}
	if os.Getenv(helperBurn) == "1" {
		go func() {
			for i := uint64(0); ; i++ {
				sink.Add(i)
			}
		}()
	}
	childPID := 0
	if os.Getenv(helperChild) == "1" {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "helper: child:", err)
			return 1
		}
		childPID = c.Process.Pid
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "OK") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"instance": *id, "addr": *listen})
	})
	mux.HandleFunc("GET /child", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, childPID) })
	mux.HandleFunc("GET /exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		os.Exit(code)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return 0
}
