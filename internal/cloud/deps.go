package cloud

import (
	"context"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"tidepool/internal/cloud/member"
	"tidepool/internal/cloud/nlb"
)

// The cloud drives pool member processes (internal/cloud/member) and network load
// balancer listeners (internal/cloud/nlb) through these small interfaces, listing
// only the methods it uses; tests substitute fakes.

// memberStarter starts member processes.
type memberStarter interface {
	Start(ctx context.Context, spec member.Spec) (memberProc, error)
}

// memberProc is one member process (*member.Member).
type memberProc interface {
	// Done is closed when the process has exited.
	Done() <-chan struct{}
	// Stop sends SIGTERM, waits for exit (SIGKILL when ctx is done) and
	// releases the member's resources. Safe after the process exited.
	Stop(ctx context.Context) error
	// Kill sends SIGKILL and releases the member's resources.
	Kill() error
	// Ready blocks until GET path on the app answers 200, the process
	// exits or ctx is done.
	Ready(ctx context.Context, path string) error
	PID() int
	// ExitErr is the process's exit error once Done is closed.
	ExitErr() error
}

// balancer is one bound load balancer listener, one NLB service
// (*nlb.Service).
type balancer interface {
	// Run serves until ctx is cancelled, then drains and returns.
	Run(ctx context.Context) error
	SetBackends([]nlb.Backend)
	SetConfig(targetPort uint16, check nlb.HealthCheck)
	Status() []nlb.BackendStatus
	// Collect sends the balancer's Prometheus series.
	Collect(chan<- prometheus.Metric)
}

// balancerFactory binds a new balancer for service id on listen ("ip:port").
type balancerFactory func(id, listen string, targetPort uint16, check nlb.HealthCheck) (balancer, error)

var (
	_ memberProc = (*member.Member)(nil)
	_ balancer   = (*nlb.Service)(nil)
)

// runner adapts *member.Runner to memberStarter.
type runner struct{ r *member.Runner }

func (a runner) Start(ctx context.Context, spec member.Spec) (memberProc, error) {
	m, err := a.r.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// realDeps returns the member runner and the nlb factory for cfg (defaults
// applied), and the runner's warning ("" when members are CPU-limited).
func realDeps(cfg Config) (memberStarter, balancerFactory, string, error) {
	base, dropped := memberEnviron(os.Environ(), cfg.Key, cfg.Secret)
	extra, droppedExtra := memberEnviron(cfg.AppEnv, cfg.Key, cfg.Secret)
	if dropped = append(dropped, droppedExtra...); len(dropped) > 0 {
		cfg.Logger.Info("API credentials kept out of the members' environment", "variables", dropped)
	}
	r, err := member.NewRunner(member.RunnerConfig{
		Command:      cfg.AppCommand,
		BaseEnv:      base,
		Env:          extra,
		CgroupParent: cfg.CgroupParent,
		Logger:       cfg.Logger.With("component", "member"),
		Output:       cfg.AppOutput,
	})
	if err != nil {
		return nil, nil, "", err
	}
	log := cfg.Logger.With("component", "nlb")
	// At start, before members and load balancers hold descriptors.
	nlb.RaiseFileLimit(log)
	factory := func(id, listen string, targetPort uint16, check nlb.HealthCheck) (balancer, error) {
		return nlb.New(nlb.Config{
			Listen: listen, TargetPort: targetPort, Check: check, Logger: log,
			Name: id, DrainTimeout: cfg.ShutdownGrace, DataPath: cfg.NLBDataPath,
			IdleTimeout: cfg.NLBIdleTimeout, MaxConns: cfg.NLBMaxConns,
		})
	}
	return runner{r}, factory, r.Warning(), nil
}
