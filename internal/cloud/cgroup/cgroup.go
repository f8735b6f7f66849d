// Package cgroup limits and accounts the CPU of groups of processes through
// Linux control groups, v2 (unified hierarchy) or v1 (cpu and cpuacct
// hierarchies). When neither is usable (not mounted, no cpu controller, not
// writable), the Manager reports ModeNone with the reason so that callers can
// run processes unlimited and account them from /proc (see ProcessUsage).
//
// It owns the cgroup file system protocol and must not import any other
// tidepool package.
package cgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultRoot is where cgroup file systems are mounted on Linux.
const DefaultRoot = "/sys/fs/cgroup"

// DefaultParent is the group, relative to the hierarchy root, under which
// groups are created.
const DefaultParent = "tidepool"

// periodUS is the CFS period used for quotas (the kernel default, 100 ms).
const periodUS = 100000

// minQuotaUS is the smallest CFS quota the kernel accepts (1 ms).
const minQuotaUS = 1000

// userHZ is the unit of cpuacct.stat and /proc/<pid>/stat times. It is 100 on
// every Linux architecture Go supports (the kernel exports USER_HZ, not HZ).
const userHZ = 100

// Mode is the kind of cgroup support in use.
type Mode int

const (
	// ModeNone means no usable cgroup CPU controller: processes run unlimited.
	ModeNone Mode = iota
	// ModeV1 uses the cgroup v1 cpu and cpuacct hierarchies.
	ModeV1
	// ModeV2 uses the cgroup v2 unified hierarchy with the cpu controller.
	ModeV2
)

// String returns "none", "v1" or "v2".
func (m Mode) String() string {
	switch m {
	case ModeV1:
		return "v1"
	case ModeV2:
		return "v2"
	default:
		return "none"
	}
}

// ErrUnavailable is matched (errors.Is) by every *UnavailableError.
var ErrUnavailable = errors.New("cgroup cpu controller unavailable")

// UnavailableError explains why no cgroup CPU controller can be used.
type UnavailableError struct {
	Root   string // mount root that was probed
	Reason string // human explanation, e.g. "not writable (run as root)"
	Err    error  // underlying error, may be nil
}

func (e *UnavailableError) Error() string {
	msg := "cgroup cpu controller unavailable under " + e.Root + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Config selects where groups live. The zero value uses DefaultRoot and
// DefaultParent.
type Config struct {
	// Root is the cgroup mount root; "" means DefaultRoot. Tests point it at
	// a fake tree.
	Root string
	// Parent is the group, relative to each hierarchy root, that holds the
	// created groups; "" means DefaultParent. It is created on demand and
	// removed again when it becomes empty if this Manager created it.
	Parent string
}

// Manager creates groups in one detected mode. It is safe for concurrent use.
type Manager struct {
	mode   Mode
	err    error // *UnavailableError when mode is ModeNone
	root   string
	parent string
	// hierarchies holds the hierarchy roots a group must be created in:
	// one for v2; cpu then cpuacct for v1 (one entry when they are the same
	// mount, e.g. cpu,cpuacct).
	hierarchies []string

	rmdir func(string) error // unix.Rmdir; tests on a fake tree replace it

	mu      sync.Mutex          // serialises parent creation and removal
	created map[string]struct{} // parent dirs this Manager created
}

// New detects the cgroup mode under cfg.Root and probes that the parent group
// can be created (creating and, if it created it, removing it again). It
// never fails: when no controller is usable the Manager is in ModeNone and Err
// says why.
func New(cfg Config) *Manager {
	return newManager(cfg, unix.Rmdir)
}

// newManager is New with an injectable rmdir (fake trees are not cgroupfs:
// their group directories hold regular files).
func newManager(cfg Config, rmdir func(string) error) *Manager {
	m := &Manager{
		root:    cfg.Root,
		parent:  cfg.Parent,
		rmdir:   rmdir,
		created: map[string]struct{}{},
	}
	if m.root == "" {
		m.root = DefaultRoot
	}
	if m.parent == "" {
		m.parent = DefaultParent
	}
	m.mode, m.hierarchies, m.err = detect(m.root)
	if m.err == nil {
		if err := m.probe(); err != nil {
			m.mode, m.hierarchies = ModeNone, nil
			m.err = &UnavailableError{Root: m.root, Reason: "cannot create parent group " + m.parent, Err: err}
		}
	}
	return m
}

// Mode returns the detected mode.
func (m *Manager) Mode() Mode { return m.mode }

// Err returns nil when a controller is usable, else an *UnavailableError
// explaining why Mode is ModeNone.
func (m *Manager) Err() error { return m.err }

// detect returns the mode and the hierarchy directories to use, or an
// *UnavailableError.
func detect(root string) (Mode, []string, error) {
	// v2: the unified hierarchy is mounted at root itself.
	if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		if !hasWord(b, "cpu") {
			return ModeNone, nil, &UnavailableError{Root: root, Reason: "cgroup v2 without the cpu controller (cgroup.controllers: " + strings.TrimSpace(string(b)) + ")"}
		}
		if err := writable(root); err != nil {
			return ModeNone, nil, &UnavailableError{Root: root, Reason: "cgroup v2 not writable (run as root)", Err: err}
		}
		return ModeV2, []string{root}, nil
	}
	// v1: cpu and cpuacct, separate or combined mounts.
	cpu := findDir(root, "cpu.cfs_quota_us", "cpu", "cpu,cpuacct", "cpuacct,cpu")
	acct := findDir(root, "cpuacct.usage", "cpuacct", "cpu,cpuacct", "cpuacct,cpu")
	switch {
	case cpu == "" && acct == "":
		return ModeNone, nil, &UnavailableError{Root: root, Reason: "neither cgroup v2 (cgroup.controllers) nor cgroup v1 (cpu, cpuacct) is mounted"}
	case cpu == "":
		return ModeNone, nil, &UnavailableError{Root: root, Reason: "cgroup v1 cpu controller (cpu.cfs_quota_us) not mounted"}
	case acct == "":
		return ModeNone, nil, &UnavailableError{Root: root, Reason: "cgroup v1 cpuacct controller (cpuacct.usage) not mounted"}
	}
	dirs := []string{cpu}
	if !sameDir(cpu, acct) {
		dirs = append(dirs, acct)
	}
	for _, d := range dirs {
		if err := writable(d); err != nil {
			return ModeNone, nil, &UnavailableError{Root: root, Reason: "cgroup v1 " + d + " not writable (run as root)", Err: err}
		}
	}
	return ModeV1, dirs, nil
}

// findDir returns the first root/<name> that holds file, or "".
func findDir(root, file string, names ...string) string {
	for _, n := range names {
		d := filepath.Join(root, n)
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d
		}
	}
	return ""
}

func sameDir(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

func writable(dir string) error {
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("access %s: %w", dir, err)
	}
	return nil
}

func hasWord(b []byte, w string) bool {
	for _, f := range bytes.Fields(b) {
		if string(f) == w {
			return true
		}
	}
	return false
}

// probe creates the parent group in every hierarchy and removes it again if
// it did not exist, proving the tree is writable.
func (m *Manager) probe() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ensureParentLocked(); err != nil {
		m.removeParentLocked()
		return err
	}
	m.removeParentLocked()
	return nil
}

// ensureParentLocked creates the parent group where missing and, on v2,
// enables the cpu controller for its children. m.mu must be held.
func (m *Manager) ensureParentLocked() error {
	for _, h := range m.hierarchies {
		if m.mode == ModeV2 {
			if err := enableCPU(h); err != nil {
				return err
			}
		}
		dir := filepath.Join(h, m.parent)
		err := os.Mkdir(dir, 0o755)
		switch {
		case err == nil:
			m.created[dir] = struct{}{}
		case errors.Is(err, fs.ErrExist):
		default:
			return fmt.Errorf("create parent group: %w", err)
		}
		if m.mode == ModeV2 {
			if err := enableCPU(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// enableCPU makes the cpu controller available to the children of the v2
// group dir, if it is not already.
func enableCPU(dir string) error {
	f := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(f)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", f, err)
	}
	if hasWord(b, "cpu") {
		return nil
	}
	if err := writeFile(f, "+cpu"); err != nil {
		return fmt.Errorf("enable cpu controller: %w", err)
	}
	return nil
}

// removeParentLocked removes parent groups this Manager created, if empty.
// m.mu must be held. Failures (still in use, by us or by others) are ignored:
// the parent is then left for whoever empties it.
func (m *Manager) removeParentLocked() {
	for dir := range m.created {
		if err := m.rmdir(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
			delete(m.created, dir)
		}
	}
}

// Group is one created cgroup. Its methods are safe for concurrent use.
type Group struct {
	m    *Manager
	name string
	dirs []string // one per hierarchy; for v1 dirs[0] is cpu, dirs[len-1] cpuacct
}

// Create creates (or adopts, if it exists and holds no process) the group
// name under the parent and sets its CPU quota (see Group.SetCPUs). It returns
// an error matching ErrUnavailable in ModeNone.
func (m *Manager) Create(name string, cpus float64) (*Group, error) {
	if m.mode == ModeNone {
		return nil, m.err
	}
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("create cgroup: invalid name %q", name)
	}
	g := &Group{m: m, name: name}
	m.mu.Lock()
	err := m.ensureParentLocked()
	if err == nil {
		for _, h := range m.hierarchies {
			dir := filepath.Join(h, m.parent, name)
			if err = os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				err = fmt.Errorf("create cgroup %s: %w", name, err)
				break
			}
			err = nil
			g.dirs = append(g.dirs, dir)
		}
	}
	m.mu.Unlock()
	if err == nil {
		var pids []int
		if pids, err = g.Procs(); err == nil && len(pids) > 0 {
			err = fmt.Errorf("create cgroup %s: already exists with processes %v", name, pids)
			return nil, err // not ours: leave it alone
		}
	}
	if err == nil {
		err = g.SetCPUs(cpus)
	}
	if err != nil {
		if rerr := g.Remove(context.Background()); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	return g, nil
}

// Name returns the group name given to Create.
func (g *Group) Name() string { return g.name }

// Dirs returns the group directories, one per hierarchy.
func (g *Group) Dirs() []string { return append([]string(nil), g.dirs...) }

// SetCPUs sets the CPU quota in cores (0.25 = a quarter of one CPU per period);
// 0 removes the limit. Negative or non-finite values are rejected.
func (g *Group) SetCPUs(cpus float64) error {
	if cpus < 0 || math.IsNaN(cpus) || math.IsInf(cpus, 0) {
		return fmt.Errorf("set cpu quota: invalid cpus %v", cpus)
	}
	quota := quotaUS(cpus)
	if g.m.mode == ModeV2 {
		v := "max " + strconv.Itoa(periodUS)
		if quota > 0 {
			v = strconv.FormatInt(quota, 10) + " " + strconv.Itoa(periodUS)
		}
		return writeFile(filepath.Join(g.dirs[0], "cpu.max"), v)
	}
	if err := writeFile(filepath.Join(g.dirs[0], "cpu.cfs_period_us"), strconv.Itoa(periodUS)); err != nil {
		return err
	}
	q := int64(-1)
	if quota > 0 {
		q = quota
	}
	return writeFile(filepath.Join(g.dirs[0], "cpu.cfs_quota_us"), strconv.FormatInt(q, 10))
}

// quotaUS converts cores to a CFS quota per periodUS; 0 means unlimited.
func quotaUS(cpus float64) int64 {
	if cpus == 0 {
		return 0
	}
	return max(int64(math.Round(cpus*periodUS)), minQuotaUS)
}

// Add moves process pid (all its threads) into the group.
func (g *Group) Add(pid int) error {
	for _, d := range g.dirs {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, g.name, err)
		}
	}
	return nil
}

// Procs returns the PIDs in the group (in any hierarchy), sorted as the
// kernel lists them, without duplicates.
func (g *Group) Procs() ([]int, error) {
	seen := map[int]bool{}
	var pids []int
	for _, d := range g.dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read cgroup procs: %w", err)
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("read cgroup procs: bad pid %q", f)
			}
			if !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// Remove deletes the group, retrying while the kernel reports it busy
// (processes still exiting) until ctx is done or a few seconds have passed.
// The caller must have ended the group's processes. Then it removes the
// parent group if this Manager created it and it is empty. Removing a group
// that is already gone is not an error.
func (g *Group) Remove(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	for _, d := range g.dirs {
		if err := g.rmdirRetry(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	g.m.mu.Lock()
	g.m.removeParentLocked()
	g.m.mu.Unlock()
	return errors.Join(errs...)
}

func (g *Group) rmdirRetry(ctx context.Context, dir string) error {
	delay := 10 * time.Millisecond
	for {
		err := g.m.rmdir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("remove cgroup %s: still busy: %w", dir, err)
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// writeFile writes v to an existing cgroup interface file (or creates it, in
// a fake tree) in one write, as the kernel requires.
func writeFile(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
