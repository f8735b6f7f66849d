package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeTree writes files (path -> content; content "DIR" makes a directory,
// "->target" a symlink) under a temp root.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case c == "DIR":
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(c, "->"):
			if err := os.Symlink(c[2:], full); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// fakeRmdir emulates rmdir on cgroupfs: a directory holding only interface
// files (no sub-directories) can be removed.
func fakeRmdir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			return unix.ENOTEMPTY
		}
	}
	return os.RemoveAll(dir)
}

func newFake(t *testing.T, root, parent string) *Manager {
	t.Helper()
	return newManager(Config{Root: root, Parent: parent}, fakeRmdir)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	v2Tree = map[string]string{
		"cgroup.controllers":     "cpuset cpu io memory pids\n",
		"cgroup.subtree_control": "memory pids\n",
	}
	v1Separate = map[string]string{
		"cpu/cpu.cfs_quota_us":  "-1\n",
		"cpuacct/cpuacct.usage": "0\n",
	}
	v1Combined = map[string]string{
		"cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
		"cpu,cpuacct/cpuacct.usage":    "0\n",
		"cpu":                          "->cpu,cpuacct",
		"cpuacct":                      "->cpu,cpuacct",
		"memory/memory.limit_in_bytes": "0\n",
	}
	v1CombinedNoLinks = map[string]string{
		"cpuacct,cpu/cpu.cfs_quota_us": "-1\n",
		"cpuacct,cpu/cpuacct.usage":    "0\n",
	}
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		wantMode  Mode
		wantDirs  []string // relative to root
		wantInErr string
	}{
		{"v2 with cpu", v2Tree, ModeV2, []string{""}, ""},
		{"v2 without cpu", map[string]string{"cgroup.controllers": "memory pids\n"}, ModeNone, nil, "without the cpu controller"},
		{"v1 separate mounts", v1Separate, ModeV1, []string{"cpu", "cpuacct"}, ""},
		{"v1 combined with symlinks", v1Combined, ModeV1, []string{"cpu"}, ""},
		{"v1 combined without symlinks", v1CombinedNoLinks, ModeV1, []string{"cpuacct,cpu"}, ""},
		{"v1 cpu only", map[string]string{"cpu/cpu.cfs_quota_us": "-1\n"}, ModeNone, nil, "cpuacct"},
		{"v1 cpuacct only", map[string]string{"cpuacct/cpuacct.usage": "0\n"}, ModeNone, nil, "cpu controller"},
		{"nothing mounted", map[string]string{"memory/tasks": ""}, ModeNone, nil, "neither cgroup v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeTree(t, tt.files)
			m := newFake(t, root, "tp")
			if got := m.Mode(); got != tt.wantMode {
				t.Fatalf("Mode() = %v, want %v (err %v)", got, tt.wantMode, m.Err())
			}
			if tt.wantInErr == "" {
				if m.Err() != nil {
					t.Fatalf("Err() = %v, want nil", m.Err())
				}
			} else {
				err := m.Err()
				var ue *UnavailableError
				if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Err() = %#v, want *UnavailableError matching ErrUnavailable", err)
				}
				if !strings.Contains(err.Error(), tt.wantInErr) {
					t.Errorf("Err() = %q, want it to contain %q", err, tt.wantInErr)
				}
				if _, err := m.Create("g", 1); !errors.Is(err, ErrUnavailable) {
					t.Errorf("Create in ModeNone: err = %v, want ErrUnavailable", err)
				}
			}
			var want []string
			for _, d := range tt.wantDirs {
				want = append(want, filepath.Join(root, d))
			}
			if fmt.Sprint(m.hierarchies) != fmt.Sprint(want) {
				t.Errorf("hierarchies = %v, want %v", m.hierarchies, want)
			}
			// The probe must not leave the parent behind.
			for _, d := range m.hierarchies {
				if _, err := os.Stat(filepath.Join(d, "tp")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("parent %s left after probe: stat err %v", filepath.Join(d, "tp"), err)
				}
			}
		})
	}
}

func TestCreateWritesQuotaAndProcs(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		cpus  float64
		want  map[string]string // file relative to root -> content
	}{
		{"v2 quarter core", v2Tree, 0.25, map[string]string{
			"cgroup.subtree_control":    "+cpu",
			"tp/cgroup.subtree_control": "+cpu",
			"tp/m1/cpu.max":             "25000 100000",
			"tp/m1/cgroup.procs":        "4242",
		}},
		{"v2 unlimited", v2Tree, 0, map[string]string{"tp/m1/cpu.max": "max 100000"}},
		{"v2 two cores", v2Tree, 2, map[string]string{"tp/m1/cpu.max": "200000 100000"}},
		{"v2 below kernel minimum", v2Tree, 0.001, map[string]string{"tp/m1/cpu.max": "1000 100000"}},
		{"v1 separate 0.2", v1Separate, 0.2, map[string]string{
			"cpu/tp/m1/cpu.cfs_period_us": "100000",
			"cpu/tp/m1/cpu.cfs_quota_us":  "20000",
			"cpu/tp/m1/cgroup.procs":      "4242",
			"cpuacct/tp/m1/cgroup.procs":  "4242",
		}},
		{"v1 unlimited", v1Separate, 0, map[string]string{"cpu/tp/m1/cpu.cfs_quota_us": "-1"}},
		{"v1 combined 1.5", v1Combined, 1.5, map[string]string{
			"cpu,cpuacct/tp/m1/cpu.cfs_quota_us": "150000",
			"cpu,cpuacct/tp/m1/cgroup.procs":     "4242",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeTree(t, tt.files)
			m := newFake(t, root, "tp")
			g, err := m.Create("m1", tt.cpus)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if err := g.Add(4242); err != nil {
				t.Fatalf("Add: %v", err)
			}
			for f, want := range tt.want {
				if got := readFile(t, filepath.Join(root, f)); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
			pids, err := g.Procs()
			if err != nil || fmt.Sprint(pids) != "[4242]" {
				t.Errorf("Procs() = %v, %v, want [4242]", pids, err)
			}
		})
	}
}

func TestSetCPUsRejectsInvalid(t *testing.T) {
	m := newFake(t, fakeTree(t, v2Tree), "tp")
	for _, cpus := range []float64{-1, -0.001} {
		if _, err := m.Create("bad", cpus); err == nil {
			t.Errorf("Create(cpus=%v): err = nil, want error", cpus)
		}
	}
	if _, err := os.Stat(filepath.Join(m.root, "tp")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Create left the parent: stat err %v", err)
	}
}

func TestCreateRefusesGroupWithProcesses(t *testing.T) {
	files := map[string]string{"tp/m1/cgroup.procs": "77\n"}
	for k, v := range v2Tree {
		files[k] = v
	}
	root := fakeTree(t, files)
	m := newFake(t, root, "tp")
	if _, err := m.Create("m1", 1); err == nil || !strings.Contains(err.Error(), "[77]") {
		t.Fatalf("Create over a busy group: err = %v, want error naming pid 77", err)
	}
	if got := readFile(t, filepath.Join(root, "tp/m1/cgroup.procs")); got != "77\n" {
		t.Errorf("busy group touched: cgroup.procs = %q", got)
	}
}

func TestCreateRejectsBadNames(t *testing.T) {
	m := newFake(t, fakeTree(t, v2Tree), "tp")
	for _, name := range []string{"", ".", "..", "a/b"} {
		if _, err := m.Create(name, 1); err == nil {
			t.Errorf("Create(%q): err = nil, want error", name)
		}
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    Usage
		wantErr string
	}{
		{
			name: "v2",
			files: map[string]string{"tp/m1/cpu.stat": "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n" +
				"nr_periods 10\nnr_throttled 2\nthrottled_usec 3000\n"},
			want: Usage{Total: 1500 * time.Millisecond, User: time.Second, System: 500 * time.Millisecond},
		},
		{
			name:    "v2 missing system_usec",
			files:   map[string]string{"tp/m1/cpu.stat": "usage_usec 1\nuser_usec 1\n"},
			wantErr: "found 2",
		},
		{
			name:    "v2 garbage",
			files:   map[string]string{"tp/m1/cpu.stat": "usage_usec x\nuser_usec 1\nsystem_usec 1\n"},
			wantErr: "usage_usec",
		},
		{
			name: "v1 split by tick ratio",
			files: map[string]string{
				"cpuacct/tp/m1/cpuacct.usage": "2000000000\n",
				"cpuacct/tp/m1/cpuacct.stat":  "user 150\nsystem 50\n",
			},
			want: Usage{Total: 2 * time.Second, User: 1500 * time.Millisecond, System: 500 * time.Millisecond},
		},
		{
			name: "v1 no ticks yet",
			files: map[string]string{
				"cpuacct/tp/m1/cpuacct.usage": "3000000\n",
				"cpuacct/tp/m1/cpuacct.stat":  "user 0\nsystem 0\n",
			},
			want: Usage{Total: 3 * time.Millisecond, User: 3 * time.Millisecond},
		},
		{
			name: "v1 bad usage",
			files: map[string]string{
				"cpuacct/tp/m1/cpuacct.usage": "-\n",
				"cpuacct/tp/m1/cpuacct.stat":  "user 0\nsystem 0\n",
			},
			wantErr: "cpuacct.usage",
		},
		{
			name: "v1 stat without system",
			files: map[string]string{
				"cpuacct/tp/m1/cpuacct.usage": "1\n",
				"cpuacct/tp/m1/cpuacct.stat":  "user 1\n",
			},
			wantErr: "found 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := v2Tree
			if strings.HasPrefix(tt.name, "v1") {
				base = v1Separate
			}
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			for k, v := range tt.files {
				files[k] = v
			}
			m := newFake(t, fakeTree(t, files), "tp")
			g, err := m.Create("m1", 1)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			got, err := g.Usage()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Usage() err = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Usage(): %v", err)
			}
			if got != tt.want {
				t.Errorf("Usage() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    Usage
		wantErr bool
	}{
		{
			name: "plain",
			stat: "4242 (tidepool) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 5 0 100 0 0",
			want: Usage{User: 2500 * time.Millisecond, System: 300 * time.Millisecond, Total: 2800 * time.Millisecond},
		},
		{
			name: "command with spaces and parens, reaped children",
			stat: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 10 20 30 40 20 0 1 0 1 0 0",
			want: Usage{User: 400 * time.Millisecond, System: 600 * time.Millisecond, Total: time.Second},
		},
		{name: "truncated", stat: "7 (x) R 1 7 7", wantErr: true},
		{name: "no command", stat: "7 x R", wantErr: true},
		{name: "garbage number", stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 zz 20 30 40 20", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseProcStat err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseProcStat = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProcessUsageFakeRoot(t *testing.T) {
	root := fakeTree(t, map[string]string{"99/stat": "99 (x) S 1 99 99 0 -1 0 0 0 0 0 100 100 0 0 20 0 1 0 1 0 0\n"})
	got, err := ProcessUsage(root, 99)
	if err != nil || got.Total != 2*time.Second {
		t.Errorf("ProcessUsage = %+v, %v, want Total 2s", got, err)
	}
	if _, err := ProcessUsage(root, 100); err == nil {
		t.Error("ProcessUsage of a missing pid: err = nil, want error")
	}
}

func TestRemoveParent(t *testing.T) {
	t.Run("created by us and empty", func(t *testing.T) {
		root := fakeTree(t, v1Separate)
		m := newFake(t, root, "tp")
		a, err := m.Create("a", 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Create("b", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Remove(context.Background()); err != nil {
			t.Fatalf("Remove a: %v", err)
		}
		for _, h := range []string{"cpu", "cpuacct"} {
			if _, err := os.Stat(filepath.Join(root, h, "tp", "a")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s/tp/a still there: %v", h, err)
			}
			if _, err := os.Stat(filepath.Join(root, h, "tp", "b")); err != nil {
				t.Errorf("%s/tp/b removed with a: %v", h, err)
			}
		}
		if err := b.Remove(context.Background()); err != nil {
			t.Fatalf("Remove b: %v", err)
		}
		for _, h := range []string{"cpu", "cpuacct"} {
			if _, err := os.Stat(filepath.Join(root, h, "tp")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("parent %s/tp left: %v", h, err)
			}
		}
		if err := b.Remove(context.Background()); err != nil {
			t.Errorf("second Remove: %v, want nil", err)
		}
	})
	t.Run("pre-existing parent kept", func(t *testing.T) {
		files := map[string]string{"tp": "DIR", "tp/cgroup.subtree_control": "cpu\n"}
		for k, v := range v2Tree {
			files[k] = v
		}
		root := fakeTree(t, files)
		m := newFake(t, root, "tp")
		g, err := m.Create("a", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Remove(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "tp", "a")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("group left: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "tp")); err != nil {
			t.Errorf("pre-existing parent removed: %v", err)
		}
	})
}

func TestRemoveRetriesBusy(t *testing.T) {
	tests := []struct {
		name    string
		busy    int // rmdir calls on the group answering EBUSY
		timeout time.Duration
		wantErr bool
	}{
		{"busy twice then free", 2, 5 * time.Second, false},
		{"busy until deadline", 1 << 30, 150 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFake(t, fakeTree(t, v2Tree), "tp")
			g, err := m.Create("a", 1)
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			m.rmdir = func(dir string) error {
				if dir == g.dirs[0] {
					calls++
					if calls <= tt.busy {
						return unix.EBUSY
					}
				}
				return fakeRmdir(dir)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err = g.Remove(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Remove err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && calls != tt.busy+1 {
				t.Errorf("rmdir calls = %d, want %d", calls, tt.busy+1)
			}
			if tt.wantErr && !errors.Is(err, unix.EBUSY) {
				t.Errorf("Remove err = %v, want it to wrap EBUSY", err)
			}
		})
	}
}

// TestRealCgroup limits a busy child process on this machine's real cgroup
// tree and checks the accounting and the clean-up.
func TestRealCgroup(t *testing.T) {
	parent := fmt.Sprintf("tidepool-test-%d", rand.IntN(1e9))
	m := New(Config{Parent: parent})
	if m.Mode() == ModeNone {
		t.Skipf("no usable cgroup CPU controller here: %v", m.Err())
	}
	t.Logf("cgroup mode %v", m.Mode())
	const cpus = 0.2
	g, err := m.Create("burn", cpus)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
		g.Remove(context.Background())
	})
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatalf("Add: %v", err)
	}
	cg := readFile(t, fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	if !strings.Contains(cg, "/"+parent+"/burn") {
		t.Errorf("/proc/pid/cgroup = %q, want it to name %s/burn", cg, parent)
	}
	u0, err := g.Usage()
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	start := time.Now()
	time.Sleep(2 * time.Second) // measuring a rate over wall time: nothing to await
	u1, err := g.Usage()
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	wall := time.Since(start)
	rate := (u1.Total - u0.Total).Seconds() / wall.Seconds()
	t.Logf("busy loop in a %.1f-core group: %.3f CPU s per wall s (user %v system %v)", cpus, rate, u1.User, u1.System)
	if rate > 0.35 || rate < 0.05 {
		t.Errorf("CPU rate = %.3f cores, want about %.1f (0.05..0.35)", rate, cpus)
	}
	if u1.User+u1.System != u1.Total {
		t.Errorf("user %v + system %v != total %v", u1.User, u1.System, u1.Total)
	}
	pu, err := ProcessUsage("", cmd.Process.Pid)
	if err != nil {
		t.Fatalf("ProcessUsage: %v", err)
	}
	if d := pu.Total - u1.Total; d < -200*time.Millisecond || d > 200*time.Millisecond {
		t.Errorf("ProcessUsage total %v vs cgroup %v: differ by more than 200ms", pu.Total, u1.Total)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waited = true
	if err := g.Remove(context.Background()); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	for _, d := range m.hierarchies {
		if _, err := os.Stat(filepath.Join(d, parent)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind: stat err %v", filepath.Join(d, parent), err)
		}
	}
}

// TestRealRemoveBusy checks that removing a group that still holds a process
// fails with EBUSY once the deadline passes instead of hanging.
func TestRealRemoveBusy(t *testing.T) {
	m := New(Config{Parent: "tidepool-test-" + strconv.Itoa(rand.IntN(1e9))})
	if m.Mode() == ModeNone {
		t.Skipf("no usable cgroup CPU controller here: %v", m.Err())
	}
	g, err := m.Create("busy", 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if err := g.Remove(context.Background()); err != nil {
			t.Errorf("Remove after kill: %v", err)
		}
	})
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := g.Remove(ctx); !errors.Is(err, unix.EBUSY) {
		t.Errorf("Remove with a live process: err = %v, want EBUSY", err)
	}
}
