// Member lifecycle: one worker per member boots, starts, serves and stops its process.

package cloud

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"tidepool/internal/cloud/member"
)

// instance is a pool member.
type instance struct {
	rec     instanceRecord
	state   string
	leave   leaveReason
	stop    chan struct{} // closed when leave is set
	started bool          // a worker runs for it
	// drainToken is the member's drain credential (drainTokenLocked); it is
	// not persisted: a restored member is a new process with a new token.
	drainToken string
}

// requestLeaveLocked asks a member's worker to stop it for reason; a member
// already leaving keeps its first reason. The member shows its leaving state
// and is out of its load balancers as soon as this returns.
func (c *Cloud) requestLeaveLocked(inst *instance, reason leaveReason) {
	if inst == nil || inst.leave != stay {
		return
	}
	inst.leave = reason
	close(inst.stop)
	if !inst.started { // no worker: nothing runs, it can go at once
		c.removeInstanceLocked(inst)
		return
	}
	inst.state = leavingState(reason)
	c.syncBackendsLocked()
}

// leavingState is the state of a member leaving for reason.
func leavingState(reason leaveReason) string {
	switch reason {
	case leaveKill:
		return stateDestroying
	case leaveCrash:
		return stateError
	default:
		return stateStopping
	}
}

// removeInstanceLocked forgets a member whose process is gone.
func (c *Cloud) removeInstanceLocked(inst *instance) {
	delete(c.instances, inst.rec.ID)
	c.memberIPs.release(inst.rec.IP)
}

func (c *Cloud) startWorkerLocked(ctx context.Context, inst *instance) {
	if ctx.Err() != nil {
		return
	}
	inst.started = true
	inst.state = stateStarting
	c.wg.Add(1)
	go c.runMember(ctx, inst)
}

// memberSpecLocked returns the process spec of inst.
func (c *Cloud) memberSpecLocked(inst *instance) member.Spec {
	cpus := c.cfg.CPUPerVCPU
	if t, ok := findInstanceType(inst.rec.InstanceTypeID); ok {
		cpus = float64(t.CPUs) * c.cfg.CPUPerVCPU
	}
	return member.Spec{ID: inst.rec.ID, IP: inst.rec.IP, AppPort: c.cfg.AppPort, MetricsPort: c.cfg.MetricsPort, CPUs: cpus,
		Env: []string{DrainTokenEnv + "=" + c.drainTokenLocked(inst)}}
}

// memberEnd is why a member's serving phase ended.
type memberEnd int

const (
	endStop     memberEnd = iota // a leave was requested
	endExited                    // the process exited on its own after it was ready
	endShutdown                  // Run's context was cancelled
	endFailed                    // it could not start or become ready
)

// runMember is one member's worker: boot delay, start, wait for health,
// serve, then stop as asked. It owns the process; the record is updated
// under c.mu.
func (c *Cloud) runMember(ctx context.Context, inst *instance) {
	defer c.wg.Done()
	log := c.log.With("instance", inst.rec.ID, "name", inst.rec.Name)

	if d := *c.cfg.BootDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-inst.stop:
			t.Stop()
			c.finishMember(inst, endStop)
			return
		case <-ctx.Done():
			t.Stop()
			c.finishMember(inst, endShutdown)
			return
		}
	}
	c.mu.Lock()
	spec := c.memberSpecLocked(inst)
	c.mu.Unlock()
	proc, err := c.members.Start(ctx, spec)
	if err != nil {
		end := endFailed
		if ctx.Err() != nil {
			end = endShutdown
		} else {
			c.mu.Lock()
			c.markFailedLocked(inst, end, fmt.Errorf("start member: %w", err))
			c.mu.Unlock()
		}
		c.finishMember(inst, end)
		return
	}
	c.mu.Lock()
	inst.rec.PID = proc.PID()
	c.mu.Unlock()
	c.poke()
	log.Info("member process started", "pid", proc.PID(), "ip", spec.IP, "cpus", spec.CPUs)

	ready, end, err := c.awaitReady(ctx, inst, proc)
	if ready {
		c.mu.Lock()
		inst.state = stateRunning
		if p := c.pools[inst.rec.PoolID]; p != nil {
			p.failures, p.lastErr = 0, ""
		}
		c.syncBackendsLocked()
		c.mu.Unlock()
		c.poke()
		log.Info("member running")
		select {
		case <-inst.stop:
			end = endStop
		case <-proc.Done():
			end, err = endExited, fmt.Errorf("member process exited: %v", exitStatus(proc.ExitErr()))
		case <-ctx.Done():
			end = endShutdown
		}
	}
	c.stopMember(ctx, inst, proc, end, err, log)
	c.finishMember(inst, end)
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// awaitReady waits until proc's /health answers 200. When it returns
// false, end says why it gave up (err explains a failure).
func (c *Cloud) awaitReady(ctx context.Context, inst *instance, proc memberProc) (ready bool, end memberEnd, err error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	readyc := make(chan error, 1)
	go func() { readyc <- proc.Ready(rctx, "/health") }()
	select {
	case err := <-readyc:
		switch {
		case err == nil:
			return true, 0, nil
		case ctx.Err() != nil:
			return false, endShutdown, nil
		default:
			return false, endFailed, fmt.Errorf("member not ready: %w", err)
		}
	case <-inst.stop:
		end = endStop
	case <-ctx.Done():
		end = endShutdown
	}
	cancel()
	<-readyc
	return false, end, nil
}

// markFailedLocked records that inst's process failed, so that the pool
// replaces it at once; a failure to start or become ready (endFailed) also
// counts toward the pool's backoff and failing operations.
func (c *Cloud) markFailedLocked(inst *instance, end memberEnd, err error) {
	inst.state = stateError
	if inst.leave == stay {
		inst.leave = leaveCrash
		close(inst.stop)
	}
	c.log.Warn("member failed", "instance", inst.rec.ID, "pid", inst.rec.PID, "err", err)
	if p := c.pools[inst.rec.PoolID]; p != nil && end == endFailed {
		c.poolFailedLocked(p, err, c.now())
	}
}

// stopMember stops proc as end and the leave reason require. The member is
// taken out of its load balancers before it is signalled.
func (c *Cloud) stopMember(ctx context.Context, inst *instance, proc memberProc, end memberEnd, err error, log *slog.Logger) {
	c.mu.Lock()
	switch {
	case end == endExited || end == endFailed:
		c.markFailedLocked(inst, end, err)
	case end == endShutdown && inst.leave == stay:
		inst.state = stateStopping
	default:
		inst.state = leavingState(inst.leave)
	}
	reason := inst.leave
	c.syncBackendsLocked() // before any signal: new connections go elsewhere
	c.mu.Unlock()
	c.poke()

	grace := c.cfg.EvictGrace
	if end == endShutdown || reason == leavePoolDelete {
		grace = c.cfg.ShutdownGrace
	}
	sctx, cancel := stopContext(ctx, grace, c.cfg.ShutdownGrace)
	defer cancel()
	if reason == leaveKill {
		log.Info("killing member", "pid", proc.PID())
		if err := proc.Kill(); err != nil {
			log.Warn("member kill failed", "err", err)
		}
	} else if end != endExited {
		log.Info("stopping member", "pid", proc.PID(), "reason", reason.String(), "shutdown", end == endShutdown, "grace", grace)
	}
	if err := proc.Stop(sctx); err != nil { // also cleans up after Kill or an exit
		log.Warn("member stop failed", "err", err)
	}
}

// stopContext bounds a stop by grace; if ctx (Run's) is cancelled meanwhile,
// by at most shutdownGrace more, so that shutdown stays quick.
func stopContext(ctx context.Context, grace, shutdownGrace time.Duration) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	stopAfter := context.AfterFunc(ctx, func() {
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-sctx.Done():
		}
	})
	return sctx, func() {
		stopAfter()
		cancel()
	}
}

// finishMember records the end of a member's worker: a member shut down
// with the cloud (not leaving) is kept for the next Run; any other is
// forgotten and its address released.
func (c *Cloud) finishMember(inst *instance, end memberEnd) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.poke()
	if end == endShutdown && inst.leave == stay {
		inst.state = stateStopped
		inst.rec.PID = 0
		inst.started = false
		return
	}
	c.removeInstanceLocked(inst)
	c.log.Info("member gone", "instance", inst.rec.ID, "reason", inst.leave.String())
}

// killStale ends member processes of a previous run still alive: only PIDs
// whose command line still matches that member.
func (c *Cloud) killStale(ctx context.Context, pids map[string]int) {
	for id, pid := range pids {
		if !isMemberProcess(pid, id) {
			continue
		}
		c.log.Warn("killing member process left by a previous run", "instance", id, "pid", pid)
		if err := killAndWait(ctx, pid, c.cfg.ShutdownGrace); err != nil {
			c.log.Warn("stale member kill failed", "instance", id, "pid", pid, "err", err)
		}
	}
}
