// Package autoscaler scales an Exoscale instance pool from alert webhooks.
//
// HTTP endpoints record scaling signals (/up, /down, /webhook for
// Alertmanager and Grafana payloads); every tick the control loop observes
// the pool, asks a policy.Policy for a decision and carries it out: a
// scale-up sets the pool size and waits for the operation; a scale-in names
// its victims, drains each one (health check made to fail, in-flight requests
// finished) and evicts it. The signals are cleared at every tick. A
// metric-driven policy (policy.TargetTracking, policy.Predictive) also gets
// the pool's CPU (and for the predictive policy its arrival history) from
// Config.Metrics (PrometheusMetrics) at every tick, and its recommendation
// history is kept from tick to tick.
//
// Control loop states:
//
//	        tick: observe, decide          change decided
//	idle ─────────────────────────▶ decide ──────────────▶ scaling
//	 ▲  ◀──── no-op / held / dry run ──┘                      │ done (or failed)
//	 │                                                         ▼
//	 └──────────── cooldown elapsed (policy holds) ◀──── cooldown
//
// A no-op is not an error; the cooldown starts only after a real change.
// Before it decides, a tick reconciles what an interrupted change left (see
// intent.go): a change is recorded before it is acted on, so one signal
// causes at most one change whatever crashes. Ticks come Interval after the
// end of the previous tick, so two changes are always at least Interval
// apart, however long a change takes.
//
// It owns the control loop, its webhooks and its state file, and must not
// import the local cloud (internal/cloud: it talks to any cloud through
// egoscale), the demo, or anything that starts processes (promrun, supervise).
package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/httpbody"
)

// ReasonObserveFailed is the reason recorded for a tick that could not read
// the pool (From and To are then the last known size).
const ReasonObserveFailed policy.Reason = "observe-failed"

// Record is one tick's decision and what came of it.
type Record struct {
	// Time is when the decision was made: the tick's now, when it began
	// (a change it made finished later).
	Time time.Time `json:"time"`
	policy.Decision
	// Result is scaled, noop, held, dry_run, error or aborted.
	Result string `json:"result"`
	// Error is the failure of an "error" or "aborted" result.
	Error string `json:"error,omitempty"`
}

// Status is the autoscaler's state as /status reports it.
type Status struct {
	// PoolID is the pool being scaled.
	PoolID string `json:"pool_id"`
	// Pool is the pool as last observed.
	Pool policy.Pool `json:"pool"`
	// ObservedAt is when Pool was read; zero before the first observation.
	ObservedAt time.Time `json:"observed_at,omitzero"`
	// Pending are the signals received since the last tick.
	Pending policy.Pending `json:"pending"`
	// LastScale is when the pool size was last changed; zero if never.
	LastScale time.Time `json:"last_scale,omitzero"`
	// Intent is the change being carried out (or left unfinished by a
	// crash, until the next tick reconciles it); nil when none.
	Intent *Intent `json:"intent,omitempty"`
	// DryRun reports that decisions are only logged.
	DryRun bool `json:"dry_run"`
	// Interval is the tick period, e.g. "1m0s".
	Interval string `json:"interval"`
	// Decisions are the latest decisions, newest first.
	Decisions []Record `json:"decisions"`
}

// Autoscaler is the webhook receiver and control loop. Create it with New,
// then call Run.
type Autoscaler struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	cloud   *cloudPool
	drainer *drainer
	signals signals
	state   stateFile
	bodies  *httpbody.Reader // webhook bodies: at most webhookBodies at once, each at most cfg.MaxBody

	tickMu sync.Mutex              // one tick at a time
	recs   []policy.Recommendation // the policy's state (Decision.Recommendations); guarded by tickMu
	tickAt time.Time               // the running tick's now, the Time of its records; guarded by tickMu

	mu         sync.Mutex // guards the fields below
	pool       policy.Pool
	observedAt time.Time
	lastScale  time.Time
	intent     *Intent  // the change in progress; persisted
	history    []Record // newest last
}

// New checks cfg and returns an Autoscaler, restoring the state file if one
// is configured. It makes no network calls.
func New(cfg Config) (*Autoscaler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	a := &Autoscaler{cfg: cfg, log: cfg.Logger, metrics: newMetrics(), state: stateFile{path: cfg.StateFile},
		bodies: httpbody.New(httpbody.Limits{Max: cfg.MaxBody, Concurrent: webhookBodies})}
	a.cloud = &cloudPool{
		api:       cfg.Cloud,
		id:        v3.UUID(cfg.PoolID),
		backoff:   retries{attempts: cfg.RetryAttempts, base: cfg.RetryBase, max: 16 * cfg.RetryBase},
		opTimeout: cfg.OperationTimeout,
		poll:      min(cfg.RetryBase, 250*time.Millisecond),
		metrics:   a.metrics,
		log:       cfg.Logger,
	}
	a.drainer = &drainer{
		cloud:   a.cloud,
		client:  cfg.HTTPClient,
		nlbID:   v3.UUID(cfg.NLBID),
		svcID:   v3.UUID(cfg.NLBServiceID),
		token:   cfg.DrainToken,
		timeout: cfg.DrainTimeout,
		grace:   cfg.DrainGrace,
		poll:    min(cfg.RetryBase, 500*time.Millisecond),
		log:     cfg.Logger,
		port:    cfg.AppPort,
	}
	st, err := a.state.load()
	if err != nil {
		return nil, fmt.Errorf("autoscaler: %w", err)
	}
	a.lastScale, a.intent = st.LastScale, st.Intent
	if !st.LastScale.IsZero() {
		a.metrics.lastScale.Set(float64(st.LastScale.UnixMilli()) / 1000)
	}
	a.metrics.setPending(a.signals.restore(st.Pending))
	return a, nil
}

// Run serves the HTTP endpoints and runs the control loop until ctx is
// cancelled, then stops within about ShutdownTimeout plus a few seconds and
// returns nil. It observes the pool once at start: a permanent cloud error
// there (wrong credentials, unknown pool) is returned, as is a failure to
// listen or serve.
func (a *Autoscaler) Run(ctx context.Context) error {
	ln := a.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", a.cfg.Addr); err != nil {
			return fmt.Errorf("autoscaler: listen: %w", err)
		}
	}
	if err := a.cfg.checkExposure(ln.Addr().String(), listenerIsLoopback(ln)); err != nil {
		ln.Close()
		return fmt.Errorf("autoscaler: %w", err)
	}
	if a.cfg.OpenWebhooks {
		a.log.Warn("webhooks are open: /up and /down count GET as a signal and no webhook needs credentials; anyone who reaches this address can scale the pool",
			"addr", ln.Addr().String())
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    webhookHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("listening", "addr", ln.Addr().String(), "pool", a.cfg.PoolID, "interval", a.cfg.Interval, "dry_run", a.cfg.DryRun)

	err := a.loop(ctx, served)

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	if err == nil {
		err = <-served
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	if serr := a.saveState(); serr != nil {
		a.log.Error("cannot save state", "err", serr)
	}
	a.log.Info("stopped")
	return err
}

func (a *Autoscaler) loop(ctx context.Context, served <-chan error) error {
	pool, ms, err := a.cloud.observe(ctx)
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil && isPermanent(err):
		return fmt.Errorf("autoscaler: observe pool %s: %w", a.cfg.PoolID, err)
	case err != nil:
		a.log.Warn("cannot observe the pool, will retry at the next tick", "err", err)
	default:
		a.setPool(pool)
		a.log.Info("pool observed", "size", pool.Size, "state", pool.State, "members", len(pool.Members))
		if draining, in := ms.draining(pool), a.getIntent(); len(draining) > 0 || in != nil {
			a.log.Warn("an interrupted change was found; the first tick reconciles it",
				"members_marked_draining", len(draining), "recorded_intent", in != nil)
		}
	}
	// The next tick comes Interval after the previous one ended (not on a
	// fixed beat): a change that outlasts the interval is never followed at
	// once by another.
	ticks, timer := a.cfg.Ticks, (*time.Timer)(nil)
	if ticks == nil {
		timer = time.NewTimer(a.cfg.Interval)
		defer timer.Stop()
		ticks = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return fmt.Errorf("autoscaler: serve: %w", err)
		case _, ok := <-ticks:
			if !ok {
				ticks = nil
				continue
			}
			a.Tick(ctx) // logged and recorded; the loop goes on
			if timer != nil {
				timer.Reset(a.cfg.Interval)
			}
		}
	}
}

// Tick runs one control loop step: it observes the pool, reconciles what
// an interrupted change left (a member marked as draining, an intent in the
// state file; that work is then the tick's change), else takes the pending
// signals, decides, records the intent, carries the decision out (unless
// DryRun) and records the outcome. It blocks until the change is done; when
// ctx is cancelled mid-change, drain waits end at once and a change already
// sent is waited for at most ShutdownTimeout (the intent then stays recorded
// for the next start). If the pool cannot be observed the signals are kept
// for the next tick; otherwise they are consumed, whatever the outcome, so
// one signal never causes two changes. Safe for concurrent use (ticks are
// serialised).
func (a *Autoscaler) Tick(ctx context.Context) (policy.Decision, error) {
	a.tickMu.Lock()
	defer a.tickMu.Unlock()
	a.tickAt = a.cfg.Now()

	pool, ms, err := a.cloud.observe(ctx)
	if err != nil {
		pending := a.signals.peek()
		size := a.Status().Pool.Size
		d := policy.Decision{From: size, To: size, Action: policy.ActionNone, Requested: pending.Direction(), Reason: ReasonObserveFailed,
			Message: fmt.Sprintf("from %d to %d because the pool cannot be read; signals kept for the next tick", size, size)}
		a.record(d, resultError, err)
		a.log.Error("cannot observe the pool", "err", err, "pending_up", pending.Up, "pending_down", pending.Down)
		return d, fmt.Errorf("observe pool: %w", err)
	}
	a.setPool(pool)
	if !a.cfg.DryRun {
		if d, handled, err := a.reconcile(ctx, pool, ms); handled {
			a.saveStateLogged()
			return d, err
		}
	}
	pending := a.signals.take()
	a.metrics.setPending(a.signals.peek())

	obs := policy.Observation{Pending: pending, Pool: pool, LastScale: a.getLastScale(), Recommendations: a.recs}
	if a.cfg.Metrics != nil {
		m, merr := a.cfg.Metrics.PoolMetrics(ctx)
		if merr != nil {
			a.log.Warn("cannot read the pool metrics", "err", merr)
		}
		obs.Metrics = m
	}
	d := a.cfg.Policy.Decide(obs, a.cfg.Now())
	a.recs = d.Recommendations
	log := a.log.With("from", d.From, "to", d.To, "action", d.Action, "reason", d.Reason, "requested", d.Requested)
	switch {
	case d.Action == policy.ActionNone:
		result := resultHeld
		if d.Reason == policy.ReasonNoSignal || d.Reason == policy.ReasonWithinTolerance || d.Reason == policy.ReasonAtMax || d.Reason == policy.ReasonAtMin {
			result = resultNoop
		}
		level := slog.LevelInfo
		if d.Reason == policy.ReasonNoSignal || d.Reason == policy.ReasonWithinTolerance {
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "scaling decision", "decision", d.Message)
		a.record(d, result, nil)
	case a.cfg.DryRun:
		log.Info("scaling decision", "decision", d.Message, "dry_run", true)
		a.record(d, resultDryRun, nil)
	default:
		log.Info("scaling decision", "decision", d.Message)
		if err = a.begin(d, pending); err != nil {
			a.metrics.setPending(a.signals.restore(pending))
			log.Error("scaling not started", "err", err)
			a.record(d, resultError, err)
			return d, err
		}
		var changed bool
		changed, err = a.execute(ctx, d, ms)
		if changed {
			a.setLastScale(a.cfg.Now())
		}
		switch {
		case err != nil && ctx.Err() != nil:
			// The intent stays recorded: the next start reconciles it.
			log.Warn("scaling interrupted by shutdown", "changed", changed, "err", err)
			a.record(d, resultAborted, err)
		case err != nil:
			a.setIntent(nil)
			log.Error("scaling failed", "changed", changed, "err", err)
			a.record(d, resultError, err)
		default:
			a.setIntent(nil)
			log.Info("scaled", "size", d.To)
			a.record(d, resultScaled, nil)
		}
		if changed {
			a.refreshPool(ctx)
		}
	}
	a.saveStateLogged()
	return d, err
}

// saveStateLogged saves the state file, logging a failure.
func (a *Autoscaler) saveStateLogged() {
	if err := a.saveState(); err != nil {
		a.log.Error("cannot save state", "err", err)
	}
}

// refreshPool re-reads the pool after a change so /status and the pool size
// gauge show the result; one attempt, failures only logged.
func (a *Autoscaler) refreshPool(ctx context.Context) {
	p, err := a.cloud.getPool(ctx)
	if err != nil {
		a.log.Warn("cannot re-read the pool after the change", "err", err)
		return
	}
	members, _, err := a.cloud.members(ctx, p)
	if err != nil {
		a.log.Warn("cannot re-read the pool members after the change", "err", err)
		return
	}
	a.setPool(policy.Pool{Size: int(p.Size), State: string(p.State), Members: members})
}

// execute carries out a change. changed reports whether a request reached
// the cloud (so the size may have changed even when err is set). A scale-in
// retires its victims one after the other (mark, drain, evict).
func (a *Autoscaler) execute(ctx context.Context, d policy.Decision, ms marks) (changed bool, err error) {
	mctx, release := graceContext(ctx, a.cfg.ShutdownTimeout)
	defer release()
	if d.Action == policy.ActionScaleUp {
		return a.cloud.scaleUp(mctx, d.From, d.To)
	}
	members := make(map[string]policy.Member, len(d.Victims))
	for _, m := range a.Status().Pool.Members {
		members[m.ID] = m
	}
	for i, id := range d.Victims {
		if ctx.Err() != nil {
			return changed, fmt.Errorf("not draining %s: %w", id, ctx.Err())
		}
		sent, err := a.retire(ctx, mctx, d.From-i, members[id], ms[id])
		changed = changed || sent
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// graceContext returns a context that is cancelled grace after parent is
// done (or when release is called), so work already started can finish.
func graceContext(parent context.Context, grace time.Duration) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-parent.Done():
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			cancel()
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { close(done) })
		cancel()
	}
}

func (a *Autoscaler) record(d policy.Decision, result string, err error) {
	r := Record{Time: a.tickAt, Decision: d, Result: result}
	if err != nil {
		r.Error = err.Error()
	}
	a.metrics.decisions.WithLabelValues(directionLabel(d.Requested), result).Inc()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.history = append(a.history, r)
	if over := len(a.history) - a.cfg.History; over > 0 {
		a.history = append(a.history[:0], a.history[over:]...)
	}
}

func (a *Autoscaler) setPool(p policy.Pool) {
	a.metrics.poolSize.Set(float64(p.Size))
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pool, a.observedAt = p, a.cfg.Now()
}

func (a *Autoscaler) getLastScale() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastScale
}

func (a *Autoscaler) setLastScale(t time.Time) {
	a.metrics.lastScale.Set(float64(t.UnixMilli()) / 1000)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastScale = t
}

func (a *Autoscaler) getIntent() *Intent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.intent
}

func (a *Autoscaler) setIntent(in *Intent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.intent = in
}

func (a *Autoscaler) saveState() error {
	return a.state.save(func() persisted {
		return persisted{LastScale: a.getLastScale(), Pending: a.signals.peek(), Intent: a.getIntent()}
	})
}

// Status returns a snapshot of the autoscaler's state.
func (a *Autoscaler) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Status{
		PoolID:     a.cfg.PoolID,
		Pool:       a.pool,
		ObservedAt: a.observedAt,
		Pending:    a.signals.peek(),
		LastScale:  a.lastScale,
		Intent:     a.intent,
		DryRun:     a.cfg.DryRun,
		Interval:   a.cfg.Interval.String(),
		Decisions:  make([]Record, 0, len(a.history)),
	}
	if st.Pool.Members == nil {
		st.Pool.Members = []policy.Member{}
	}
	for i := len(a.history) - 1; i >= 0; i-- {
		st.Decisions = append(st.Decisions, a.history[i])
	}
	return st
}
