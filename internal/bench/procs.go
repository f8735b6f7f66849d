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
	"strconv"
	"strings"
	"sync"
	"time"

	"tidepool/internal/supervise"
)

// child is a helper process started by Run (RoleBackends or RoleNLB).
type child struct {
	name   string
	proc   *supervise.Process
	stdin  *os.File              // the write end of the child's stdin; closing it asks the child to exit
	stderr *supervise.OutputHead // the first 16 KiB: why a helper failed

	stopOnce sync.Once
	stopErr  error
}

// readyTimeout bounds how long a helper may take to report its addresses.
const readyTimeout = time.Minute

// stopGrace is how long stop waits for a helper to exit before SIGKILL.
const stopGrace = 5 * time.Second

// startChild runs argv, reads the one JSON line the helper prints once it
// serves into ready, and returns the running child. On any failure the
// process is killed and reaped before startChild returns. The child dies
// with this process (PDEATHSIG) and exits when its stdin is closed (stop).
func startChild(ctx context.Context, name string, argv []string, ready any) (*child, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bench: %s: %w", name, err), inR.Close(), inW.Close())
	}
	c := &child{name: name, stdin: inW, stderr: &supervise.OutputHead{Max: 16 << 10}}
	c.proc, err = supervise.Start(supervise.Config{Name: name, Args: argv, Stdin: inR, Stdout: outW, Stderr: c.stderr})
	// The child holds its own copies of its ends now.
	if cerr := errors.Join(inR.Close(), outW.Close()); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bench: start %s (%s): %w", name, strings.Join(argv, " "), err), inW.Close(), outR.Close(), c.killed())
	}
	type line struct {
		b   []byte
		err error
	}
	lines := make(chan line, 1)
	r := bufio.NewReader(outR)
	go func() {
		b, err := r.ReadBytes('\n')
		lines <- line{b, err}
		// Keep draining stdout until the child closes it, so it never
		// blocks on a full pipe.
		_, _ = io.Copy(io.Discard, r)
		_ = outR.Close()
	}()
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var got line
	select {
	case got = <-lines:
	case <-ctx.Done():
		got.err = ctx.Err()
	}
	if got.err == nil {
		got.err = json.Unmarshal(got.b, ready)
	}
	if got.err != nil {
		got.err = errors.Join(got.err, c.stop())
		return nil, fmt.Errorf("bench: %s did not start: %w (exit: %s) %s", name, got.err, supervise.ExitStatus(c.proc.Err()), strings.TrimSpace(c.stderr.String()))
	}
	return c, nil
}

// killed is nil when there is no process to kill.
func (c *child) killed() error {
	if c.proc == nil {
		return nil
	}
	return c.proc.Kill()
}

func (c *child) pid() int { return c.proc.PID() }

// stop closes the child's stdin (its signal to exit), then stops it by PID
// (SIGTERM, SIGKILL after 5 s) and returns once it has been reaped, or with
// an error if it could not be (it survived SIGKILL: the kernel ends it
// with us, PDEATHSIG). Safe to call twice: every call returns the result.
func (c *child) stop() error {
	c.stopOnce.Do(func() {
		c.stopErr = errors.Join(c.stdin.Close(), c.proc.StopWithin(stopGrace))
	})
	return c.stopErr
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
