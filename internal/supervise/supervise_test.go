package supervise

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestStop(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		grace      time.Duration
		wantStatus string
	}{
		{"exits on SIGTERM", "exec sleep 60", 10 * time.Second, "signal: terminated"},
		{"ignores SIGTERM", "trap '' TERM; sleep 60 & wait", 200 * time.Millisecond, "signal: killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(Config{Args: []string{"sh", "-c", tt.script}, Group: true})
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != "sh" || p.Err() != nil {
				t.Errorf("Name, Err = %q, %v; want sh, nil while running", p.Name(), p.Err())
			}
			time.Sleep(50 * time.Millisecond) // let sh install its trap
			start := time.Now()
			if err := p.StopWithin(tt.grace); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			select {
			case <-p.Done():
			default:
				t.Fatal("Stop returned before the process was reaped")
			}
			if got := ExitStatus(p.Err()); got != tt.wantStatus {
				t.Errorf("exit status %q; want %q", got, tt.wantStatus)
			}
			if d := time.Since(start); d > tt.grace+KillWait {
				t.Errorf("Stop took %v", d)
			}
			if alive(p.PID()) {
				t.Errorf("pid %d alive after Stop", p.PID())
			}
			if err := p.Signal(syscall.SIGTERM); err != nil {
				t.Errorf("Signal after reaping = %v; want nil", err)
			}
			if p.WithPID(func(int) {}) {
				t.Error("WithPID ran after reaping")
			}
			if err := p.Stop(context.Background()); err != nil {
				t.Errorf("second Stop = %v", err)
			}
		})
	}
}

// TestGroupStrays: with Group, what the leader leaves behind is killed when
// it exits, which also closes the output pipe it held.
func TestGroupStrays(t *testing.T) {
	var out OutputHead
	var before int
	p, err := Start(Config{
		Args:       []string{"sh", "-c", "sleep 60 & echo $!; exit 3"},
		Group:      true,
		Stdout:     &out,
		WaitDelay:  5 * time.Second,
		BeforeReap: func(pid int) { before = pid },
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not reaped while a stray held its output")
	}
	var ee interface{ ExitCode() int }
	if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Errorf("Err = %v; want exit status 3", p.Err())
	}
	if before != p.PID() {
		t.Errorf("BeforeReap got pid %d; want %d", before, p.PID())
	}
	stray, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("stray pid %q: %v", out.String(), err)
	}
	for deadline := time.Now().Add(5 * time.Second); alive(stray); time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(stray) + "/stat"); strings.Contains(string(b), ") Z ") {
			break // a zombie of init: dead
		}
		if time.Now().After(deadline) {
			t.Fatalf("stray %d alive after the leader exited", stray)
		}
	}
}

func TestWithPIDAndKill(t *testing.T) {
	p, err := Start(Config{Args: []string{"sleep", "60"}, Name: "napper"})
	if err != nil {
		t.Fatal(err)
	}
	var got int
	if !p.WithPID(func(pid int) { got = pid }) || got != p.PID() {
		t.Errorf("WithPID on a running process: ran with %d; want %d", got, p.PID())
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := ExitStatus(p.Err()); got != "signal: killed" {
		t.Errorf("exit status %q; want signal: killed", got)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Config{}); err == nil {
		t.Error("Start with no command: want an error")
	}
	if _, err := Start(Config{Args: []string{"/nonexistent/tidepool-test"}}); err == nil || !strings.Contains(err.Error(), "start tidepool-test") {
		t.Errorf("Start of a missing program = %v; want an error naming it", err)
	}
}

func TestOutputHead(t *testing.T) {
	h := &OutputHead{Max: 5}
	for _, w := range []string{"abc", "defg", "h"} {
		if n, err := h.Write([]byte(w)); n != len(w) || err != nil {
			t.Errorf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
		}
	}
	if got := h.String(); got != "abcde" {
		t.Errorf("kept %q; want abcde", got)
	}
	var zero OutputHead
	zero.Write(make([]byte, DefaultHeadSize+10))
	if got := len(zero.String()); got != DefaultHeadSize {
		t.Errorf("zero value kept %d bytes; want %d", got, DefaultHeadSize)
	}
}
