// Package supervise owns tidepool's child processes from start to reaping:
// it starts a command that dies with its parent (PDEATHSIG), optionally in
// its own process group, logs its start and exit, stops it by PID (SIGTERM,
// then SIGKILL after a grace) and reaps it exactly once. Members of the
// local cloud, Prometheus and Alertmanager, the benchmark's helpers and
// HAProxy all run under it. It must not import anything of tidepool.
//
// Lifecycle of a Process:
//
//	Start ──> running ──(exits: crash, signal)──> exited ──> reaped: Done closed, Err set
//	             │                                   ^
//	             └── Stop: SIGTERM ─(grace over)─> SIGKILL
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// KillWait bounds how long Stop and Kill wait for a process to be reaped
// after SIGKILL.
const KillWait = 10 * time.Second

// Config describes one child process. Only Args is required.
type Config struct {
	// Name names the process in logs and errors; "" means the base name
	// of Args[0].
	Name string
	// Args is the command line; Args[0] is the program, a path or a name
	// looked up in PATH. Required.
	Args []string
	// Env is the environment (KEY=value); nil means this process's.
	Env []string
	// Dir is the working directory; "" means this process's.
	Dir string
	// Stdin is the standard input; nil means /dev/null. An *os.File is
	// handed to the child as it is (the caller closes its own copy).
	Stdin io.Reader
	// Stdout and Stderr receive the process's output; nil discards it.
	// A writer that is not an *os.File is fed by a goroutine that reaping
	// waits for (see WaitDelay); it must be safe for concurrent use when
	// shared.
	Stdout, Stderr io.Writer
	// Group starts the process in its own process group (its PID is the
	// group id): signals then reach the whole group, and whatever the
	// leader leaves in the group when it exits is killed before the leader
	// is reaped, while the group id is still its own.
	Group bool
	// WaitDelay bounds how long reaping waits for the output to be copied
	// after the process exited (a stray descendant may hold the pipes); 0
	// means no bound.
	WaitDelay time.Duration
	// BeforeReap, when not nil, is called once, after the process exited
	// and before it is reaped, while its PID still names it (e.g. to read
	// its final CPU times from /proc). It must not call Stop, Kill or
	// WithPID of the Process.
	BeforeReap func(pid int)
	// Logger receives the start (debug), the exit (info) and stop
	// escalations (warn); nil discards them.
	Logger *slog.Logger
}

// Process is a started child process. Its methods are safe for concurrent
// use.
type Process struct {
	name       string
	cmd        *exec.Cmd
	pid        int
	group      bool
	beforeReap func(pid int)
	log        *slog.Logger

	done chan struct{} // closed once the process is reaped
	err  error         // the exit error, set before done is closed

	mu     sync.Mutex // held while reaping
	reaped bool       // the PID may now name another process
}

// Start starts the process with PDEATHSIG=SIGKILL (the kernel kills it
// when the OS thread that started it dies, so it does not outlive a
// crashed parent) and reaps it in the background. It returns once the
// process runs, without waiting for it to be ready; on error nothing runs.
func Start(cfg Config) (*Process, error) {
	if len(cfg.Args) == 0 || cfg.Args[0] == "" {
		return nil, errors.New("supervise: empty command")
	}
	name := cfg.Name
	if name == "" {
		name = filepath.Base(cfg.Args[0])
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cmd := exec.Command(cfg.Args[0], cfg.Args[1:]...)
	cmd.Env, cmd.Dir = cfg.Env, cfg.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	cmd.WaitDelay = cfg.WaitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: cfg.Group, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{
		name: name, cmd: cmd, pid: cmd.Process.Pid, group: cfg.Group,
		beforeReap: cfg.BeforeReap, log: log, done: make(chan struct{}),
	}
	log.Debug("process started", "process", name, "pid", p.pid)
	go p.reap()
	return p, nil
}

// reap waits for the exit without reaping first, so that stray members of
// the group can be killed and BeforeReap can run while the PID is still
// the process's; then it reaps.
func (p *Process) reap() {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if p.group {
		if err := unix.Kill(-p.pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			p.log.Warn("cannot kill what the exited process left in its group", "process", p.name, "pgid", p.pid, "err", err)
		}
	}
	if p.beforeReap != nil {
		p.beforeReap(p.pid)
	}
	p.mu.Lock()
	err := p.cmd.Wait()
	p.reaped = true
	p.mu.Unlock()
	p.err = err
	p.log.Info("process exited", "process", p.name, "pid", p.pid, "status", ExitStatus(err))
	close(p.done)
}

// ExitStatus describes an exit error: "exit status 0" for nil, else its
// text (e.g. "signal: killed").
func ExitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Name is the process's name in logs and errors.
func (p *Process) Name() string { return p.name }

// PID is the process id (with Config.Group also its process group id).
func (p *Process) PID() int { return p.pid }

// Done is closed once the process has exited, for any reason, and been
// reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the exit error once Done is closed (nil for exit status 0, an
// *exec.ExitError otherwise); nil before.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// WithPID calls f with the PID while holding off reaping, so that the PID
// cannot name another process during f, and reports whether f ran (false:
// the process is already reaped).
func (p *Process) WithPID(f func(pid int)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return false
	}
	f(p.pid)
	return true
}

// Signal sends sig to the process, or to its group with Config.Group,
// unless it has been reaped (its PID may then name someone else): then it
// does nothing.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return nil
	}
	target := p.pid
	if p.group {
		target = -p.pid
	}
	if err := unix.Kill(target, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %s (pid %d): %w", p.name, p.pid, err)
	}
	return nil
}

// Stop ends the process gracefully: SIGTERM, a wait for the exit until ctx
// is done, then Kill. It blocks until the process is reaped (nil) or has
// survived SIGKILL for KillWait (an error, also logged). On a reaped
// process it returns nil at once.
func (p *Process) Stop(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		p.log.Warn("cannot send SIGTERM", "process", p.name, "err", err)
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.log.Warn("process stop escalated to SIGKILL because the grace period ended", "process", p.name, "pid", p.pid)
	}
	return p.Kill()
}

// StopWithin is Stop with a grace period instead of a context.
func (p *Process) StopWithin(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return p.Stop(ctx)
}

// Kill ends the process hard: SIGKILL, then a wait of at most KillWait
// for it to be reaped. It returns nil once it is reaped, else an error
// (also logged).
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		p.log.Warn("cannot send SIGKILL", "process", p.name, "err", err)
	}
	t := time.NewTimer(KillWait)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		err := fmt.Errorf("%s (pid %d) did not exit %v after SIGKILL", p.name, p.pid, KillWait)
		p.log.Error("process survived SIGKILL", "process", p.name, "pid", p.pid, "err", err)
		return err
	}
}

// DefaultHeadSize is how much of a process's output an OutputHead keeps
// when its Max is 0.
const DefaultHeadSize = 64 << 10

// OutputHead is a Config.Stdout or Stderr that keeps the first Max bytes
// a process writes (where the reason for an early exit is) and discards the
// rest; Max 0 means DefaultHeadSize. It is safe for concurrent use, also
// while the process writes; the zero value is ready.
type OutputHead struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

// Write keeps what fits and reports all of p written.
func (h *OutputHead) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	limit := h.Max
	if limit <= 0 {
		limit = DefaultHeadSize
	}
	if room := limit - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// String returns what was kept so far.
func (h *OutputHead) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.buf)
}
