package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tidepool/internal/cloud"
	"tidepool/internal/cloud/nlb"
	"tidepool/internal/outpath"
)

// cloudEnv maps cloud's flags to the environment variables that set them.
var cloudEnv = map[string][]string{
	"listen":           {"TIDEPOOL_CLOUD_LISTEN"},
	"key":              {"TIDEPOOL_CLOUD_KEY", "EXOSCALE_KEY", "EXOSCALE_API_KEY"},
	"secret":           {"TIDEPOOL_CLOUD_SECRET", "EXOSCALE_SECRET", "EXOSCALE_API_SECRET"},
	"zone":             {"TIDEPOOL_CLOUD_ZONE", "EXOSCALE_ZONE"},
	"state-dir":        {"TIDEPOOL_CLOUD_STATE_DIR"},
	"member-net":       {"TIDEPOOL_CLOUD_MEMBER_NET"},
	"nlb-net":          {"TIDEPOOL_CLOUD_NLB_NET"},
	"nlb-datapath":     {"TIDEPOOL_CLOUD_NLB_DATAPATH"},
	"nlb-idle-timeout": {"TIDEPOOL_CLOUD_NLB_IDLE_TIMEOUT"},
	"nlb-max-conns":    {"TIDEPOOL_CLOUD_NLB_MAX_CONNS"},
	"app-port":         {"TIDEPOOL_CLOUD_APP_PORT"},
	"metrics-port":     {"TIDEPOOL_CLOUD_METRICS_PORT"},
	"boot-delay":       {"TIDEPOOL_CLOUD_BOOT_DELAY"},
	"cpu-per-vcpu":     {"TIDEPOOL_CLOUD_CPU_PER_VCPU"},
	"max-pool-size":    {"TIDEPOOL_CLOUD_MAX_POOL_SIZE"},
	"app-binary":       {"TIDEPOOL_CLOUD_APP_BINARY"},
	"evict-grace":      {"TIDEPOOL_CLOUD_EVICT_GRACE"},
	"shutdown-grace":   {"TIDEPOOL_CLOUD_SHUTDOWN_GRACE"},
	"cgroup-parent":    {"TIDEPOOL_CLOUD_CGROUP_PARENT"},
	"member-logs":      {"TIDEPOOL_CLOUD_MEMBER_LOGS"},
	"log-level":        {"TIDEPOOL_LOG_LEVEL"},
	"https-proxy":      {"TIDEPOOL_CLOUD_HTTPS_PROXY"},
}

// cloudHTTPShutdown bounds closing the API server after SIGTERM.
const cloudHTTPShutdown = 3 * time.Second

func runCloud(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tidepool cloud", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg cloud.Config
	listen := fs.String("listen", "127.0.0.1:8580", "address of the API (under /v2) and of /metrics")
	fs.StringVar(&cfg.Key, "key", "", "API key clients sign requests with (default "+cloud.DefaultKey+")")
	fs.StringVar(&cfg.Secret, "secret", "", "API secret (default "+cloud.DefaultSecret+")")
	fs.StringVar(&cfg.Zone, "zone", cloud.DefaultZone, "zone name served")
	fs.StringVar(&cfg.StateDir, "state-dir", "", "directory of the state file; empty keeps state in memory only")
	memberNet := fs.String("member-net", cloud.DefaultMemberNet.String(), "loopback range of member IPs (.2 upward)")
	nlbNet := fs.String("nlb-net", cloud.DefaultNLBNet.String(), "loopback range of load balancer IPs")
	nlbDataPath := fs.String("nlb-datapath", string(nlb.DataPathAuto), "how load balancers move bytes: auto (epoll on Linux), epoll or portable (a goroutine per connection direction)")
	fs.DurationVar(&cfg.NLBIdleTimeout, "nlb-idle-timeout", nlb.DefaultIdleTimeout, "load balancers close a connection through which nothing moved for this long (negative: never)")
	fs.IntVar(&cfg.NLBMaxConns, "nlb-max-conns", nlb.DefaultMaxConns, "most open client connections per load balancer service; at the cap a new one closes the longest-idle one or is refused (negative: no cap)")
	appPort := fs.Uint("app-port", cloud.DefaultAppPort, "port of the app on every member")
	metricsPort := fs.Uint("metrics-port", cloud.DefaultMetricsPort, "port of the node exporter on every member")
	bootDelay := fs.Duration("boot-delay", cloud.DefaultBootDelay, "how long a new member is \"starting\" before its process starts (0: none)")
	fs.Float64Var(&cfg.CPUPerVCPU, "cpu-per-vcpu", cloud.DefaultCPUPerVCPU, "CPU quota in cores per vCPU of a member's instance type")
	fs.IntVar(&cfg.MaxPoolSize, "max-pool-size", cloud.DefaultMaxPoolSize, "largest instance pool size accepted")
	appBinary := fs.String("app-binary", "", "program run as `BINARY app` on every member (default: this executable)")
	fs.DurationVar(&cfg.EvictGrace, "evict-grace", cloud.DefaultEvictGrace, "SIGTERM-to-SIGKILL grace of an evicted or scaled-down member")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", cloud.DefaultShutdownGrace, "SIGTERM-to-SIGKILL grace of members when the cloud stops")
	fs.StringVar(&cfg.CgroupParent, "cgroup-parent", "", "cgroup under which member groups are created (default \"tidepool\")")
	memberLogs := fs.Bool("member-logs", false, "copy the members' output to stderr")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	httpsProxy := fs.String("https-proxy", "", "loopback address of an HTTPS front (CONNECT proxy for *.exoscale.com:443 with its own CA in --state-dir) for clients with a fixed host; empty: none")
	if code, ok := parseFlags(fs, args, cloudEnv); !ok {
		return code
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return usageError(fs, err)
	}
	if cfg.MemberNet, err = netip.ParsePrefix(*memberNet); err != nil {
		return usageError(fs, fmt.Errorf("-member-net: %w", err))
	}
	if cfg.NLBNet, err = netip.ParsePrefix(*nlbNet); err != nil {
		return usageError(fs, fmt.Errorf("-nlb-net: %w", err))
	}
	if cfg.NLBDataPath, err = nlb.ParseDataPath(*nlbDataPath); err != nil {
		return usageError(fs, fmt.Errorf("-nlb-datapath: %w", err))
	}
	for name, p := range map[string]uint{"app-port": *appPort, "metrics-port": *metricsPort} {
		if p < 1 || p > 65535 {
			return usageError(fs, fmt.Errorf("-%s %d out of range 1-65535", name, p))
		}
	}
	cfg.AppPort, cfg.MetricsPort = uint16(*appPort), uint16(*metricsPort)
	if !slices.Contains(cloud.Zones, cfg.Zone) {
		return usageError(fs, fmt.Errorf("-zone %q: want one of %s", cfg.Zone, strings.Join(cloud.Zones, ", ")))
	}
	if *bootDelay < 0 {
		return usageError(fs, fmt.Errorf("-boot-delay %v must not be negative", *bootDelay))
	}
	cfg.BootDelay = bootDelay
	switch {
	case cfg.CPUPerVCPU <= 0:
		return usageError(fs, fmt.Errorf("-cpu-per-vcpu %v must be positive", cfg.CPUPerVCPU))
	case cfg.MaxPoolSize < 1:
		return usageError(fs, fmt.Errorf("-max-pool-size %d must be at least 1", cfg.MaxPoolSize))
	case cfg.NLBIdleTimeout == 0 || cfg.NLBMaxConns == 0:
		return usageError(fs, errors.New("-nlb-idle-timeout and -nlb-max-conns must not be 0 (negative: no limit)"))
	case cfg.EvictGrace <= 0 || cfg.ShutdownGrace <= 0:
		return usageError(fs, errors.New("-evict-grace and -shutdown-grace must be positive"))
	}
	if err := checkListen("listen", *listen); err != nil {
		return usageError(fs, err)
	}
	if *httpsProxy != "" {
		if err := checkListen("https-proxy", *httpsProxy); err != nil {
			return usageError(fs, err)
		}
		if err := loopbackAddr(*httpsProxy); err != nil {
			return usageError(fs, fmt.Errorf("-https-proxy: %w", err))
		}
		if cfg.StateDir == "" {
			return usageError(fs, errors.New("-https-proxy needs -state-dir (the front's CA is kept there)"))
		}
	}
	if *appBinary != "" {
		bin := *appBinary
		if strings.ContainsRune(bin, '/') { // a path, not a name looked up in PATH
			if bin, err = filepath.Abs(bin); err != nil {
				return usageError(fs, fmt.Errorf("-app-binary: %w", err))
			}
		}
		cfg.AppCommand = []string{bin, "app"}
	}
	if cfg.StateDir != "" {
		if cfg.StateDir, err = outpath.Dir(cfg.StateDir); err != nil {
			return usageError(fs, fmt.Errorf("-state-dir: %w", err))
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageError(fs, err)
	}
	if cfg.StateDir != "" {
		if err := outpath.Create(cfg.StateDir); err != nil {
			return usageError(fs, fmt.Errorf("-state-dir: %w", err))
		}
	}
	if *memberLogs {
		cfg.AppOutput = os.Stderr
	}
	if cfg.Key == "" || cfg.Secret == "" {
		logger.Warn("no API credentials configured, using the defaults", "key", cloud.DefaultKey, "secret", cloud.DefaultSecret)
	}
	cfg.Logger = logger

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("cannot listen", "addr", *listen, "err", err)
		return 1
	}
	cfg.PublicEndpoint = "http://" + ln.Addr().String() + "/v2"
	c, err := cloud.New(cfg)
	if err != nil {
		ln.Close()
		logger.Error("cannot start the cloud", "err", err)
		return 1
	}
	if w := c.Warning(); w != "" {
		logger.Warn("member CPU limits unavailable", "warning", w)
	}

	var front *cloud.HTTPSFront
	var frontLn net.Listener
	if *httpsProxy != "" {
		if front, err = cloud.NewHTTPSFront(cloud.HTTPSFrontConfig{Handler: c.Handler(), Dir: cfg.StateDir, Logger: logger}); err != nil {
			ln.Close()
			logger.Error("cannot start the https front", "err", err)
			return 1
		}
		if frontLn, err = net.Listen("tcp", *httpsProxy); err != nil {
			ln.Close()
			logger.Error("cannot listen", "addr", *httpsProxy, "err", err)
			return 1
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", c.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: cloud.MaxHeaderBytes}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()
	logger.Info("cloud API listening", "endpoint", cfg.PublicEndpoint)
	frontErr := make(chan error, 1)
	if front != nil {
		go func() { frontErr <- front.Serve(runCtx, frontLn) }()
		logger.Info("https front listening", "addr", frontLn.Addr().String(), "ca", front.CAFile(),
			"client_env", "HTTPS_PROXY=http://"+frontLn.Addr().String()+" SSL_CERT_FILE="+front.CAFile())
	} else {
		frontErr <- nil
	}

	code := 0
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cloudHTTPShutdown)
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		cancel()
		<-serveErr
	case err := <-serveErr:
		logger.Error("API server failed", "err", err)
		code = 1
	}
	stopRun()
	if err := <-frontErr; err != nil {
		logger.Error("https front failed", "err", err)
		code = 1
	}
	if err := <-runErr; err != nil {
		logger.Error("cloud failed", "err", err)
		code = 1
	}
	return code
}

// loopbackAddr checks that addr is HOST:PORT with a loopback IP or
// localhost as host: the HTTPS front serves this machine only.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", addr)
	}
	return nil
}
