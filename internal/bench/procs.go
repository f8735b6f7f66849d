package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a helper process started by Run (RoleBackends or RoleNLB).
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *headBuffer

	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // set before exited is closed

	stopOnce sync.Once
}

// readyTimeout bounds how long a helper may take to report its addresses.
const readyTimeout = time.Minute

// startChild runs argv, reads the one JSON line the helper prints once it
// serves into ready, and returns the running child. On any failure the
// process is killed and reaped before startChild returns. The child dies
// with this process (Pdeathsig) and exits when its stdin is closed (stop).
func startChild(ctx context.Context, name string, argv []string, ready any) (*child, error) {
	c := &child{name: name, stderr: &headBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Stderr = c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	type line struct {
		b   []byte
		err error
	}
	lines := make(chan line, 1)
	r := bufio.NewReader(stdout)
	go func() {
		b, err := r.ReadBytes('\n')
		lines <- line{b, err}
	}()
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var got line
	select {
	case got = <-lines:
	case <-ctx.Done():
		_ = c.cmd.Process.Kill()
		got = <-lines // the pipe closes once the process is gone
		got.err = ctx.Err()
	}
	if got.err == nil {
		got.err = json.Unmarshal(got.b, ready)
	}
	// Keep draining stdout, then reap: Wait must follow the last read.
	go func() {
		_, _ = io.Copy(io.Discard, r)
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	if got.err != nil {
		c.stop()
		return nil, fmt.Errorf("bench: %s did not start: %w (exit: %v) %s", name, got.err, c.waitErr, c.stderr.String())
	}
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop closes the child's stdin (its signal to exit), waits up to 5s, then
// kills it by PID, and returns once it has been reaped. Safe to call twice.
func (c *child) stop() {
	c.stopOnce.Do(func() {
		_ = c.stdin.Close()
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-c.exited:
		case <-t.C:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
}

// cpuTime returns the user+system CPU time the process pid has used so far,
// from /proc/PID/stat (in clock ticks of 10ms, the Linux USER_HZ).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: cpu time: %w", err)
	}
	return parseCPUTime(b)
}

// parseCPUTime extracts utime+stime from the text of /proc/PID/stat.
func parseCPUTime(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("bench: cpu time: malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("bench: cpu time: short /proc stat")
	}
	// After "(comm)": state is field 3 of proc(5), utime 14, stime 15.
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("bench: cpu time: %w", err)
	}
	const tick = 10 * time.Millisecond // USER_HZ = 100 on Linux
	return time.Duration(u+s) * tick, nil
}

// headBuffer keeps the first 16 KiB written to it (why a helper failed).
type headBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *headBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 16<<10 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *headBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
