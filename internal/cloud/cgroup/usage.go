// CPU accounting: a group's usage (cgroup v2 cpu.stat, v1 cpuacct) and a process's (/proc/PID/stat).

package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Usage is accumulated CPU time.
type Usage struct {
	Total  time.Duration // user + system, at the controller's precision
	User   time.Duration
	System time.Duration
}

// Usage reads the CPU time consumed by the group's processes since it was
// created (including processes that have exited).
func (g *Group) Usage() (Usage, error) {
	if g.m.mode == ModeV2 {
		b, err := os.ReadFile(filepath.Join(g.dirs[0], "cpu.stat"))
		if err != nil {
			return Usage{}, fmt.Errorf("read cgroup usage: %w", err)
		}
		return parseCPUStatV2(b)
	}
	acct := g.dirs[len(g.dirs)-1]
	total, err := os.ReadFile(filepath.Join(acct, "cpuacct.usage"))
	if err != nil {
		return Usage{}, fmt.Errorf("read cgroup usage: %w", err)
	}
	stat, err := os.ReadFile(filepath.Join(acct, "cpuacct.stat"))
	if err != nil {
		return Usage{}, fmt.Errorf("read cgroup usage: %w", err)
	}
	return parseCPUAcctV1(total, stat)
}

// parseCPUStatV2 parses a v2 cpu.stat file (microseconds).
func parseCPUStatV2(b []byte) (Usage, error) {
	var u Usage
	var found int
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		var dst *time.Duration
		switch k {
		case "usage_usec":
			dst = &u.Total
		case "user_usec":
			dst = &u.User
		case "system_usec":
			dst = &u.System
		default:
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return Usage{}, fmt.Errorf("parse cpu.stat %s: %w", k, err)
		}
		*dst = time.Duration(n) * time.Microsecond
		found++
	}
	if found != 3 {
		return Usage{}, fmt.Errorf("parse cpu.stat: want usage_usec, user_usec and system_usec, found %d of them", found)
	}
	return u, nil
}

// parseCPUAcctV1 parses cpuacct.usage (nanoseconds) and cpuacct.stat (user
// and system in USER_HZ ticks). Total comes from the precise cpuacct.usage and
// is split between user and system in the ratio of the tick counts.
func parseCPUAcctV1(usage, stat []byte) (Usage, error) {
	ns, err := strconv.ParseUint(strings.TrimSpace(string(usage)), 10, 64)
	if err != nil {
		return Usage{}, fmt.Errorf("parse cpuacct.usage: %w", err)
	}
	var user, system uint64
	var found int
	for _, line := range strings.Split(string(stat), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		var dst *uint64
		switch k {
		case "user":
			dst = &user
		case "system":
			dst = &system
		default:
			continue
		}
		if *dst, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64); err != nil {
			return Usage{}, fmt.Errorf("parse cpuacct.stat %s: %w", k, err)
		}
		found++
	}
	if found != 2 {
		return Usage{}, fmt.Errorf("parse cpuacct.stat: want user and system, found %d of them", found)
	}
	u := Usage{Total: time.Duration(ns)}
	if user+system == 0 {
		u.User = u.Total
	} else {
		u.User = time.Duration(float64(u.Total) * float64(user) / float64(user+system))
	}
	u.System = u.Total - u.User
	return u, nil
}

// ProcessUsage reads the CPU time of process pid from <procRoot>/<pid>/stat
// (utime and stime plus the reaped children's cutime and cstime, in USER_HZ
// ticks, so 10 ms precision). procRoot "" means "/proc". It is the fallback
// accounting in ModeNone; it fails once the process has been reaped.
func ProcessUsage(procRoot string, pid int) (Usage, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return Usage{}, fmt.Errorf("read process usage: %w", err)
	}
	return parseProcStat(b)
}

// parseProcStat parses /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may contain spaces or parentheses, so fields are counted
// from the last ')'.
func parseProcStat(b []byte) (Usage, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Usage{}, errors.New("parse proc stat: no command name")
	}
	// After ")": field 3 (state) is index 0; utime (14) is index 11, stime 12,
	// cutime 13, cstime 14.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return Usage{}, fmt.Errorf("parse proc stat: %d fields after command, want at least 15", len(f))
	}
	var ticks [4]uint64
	for j := range ticks {
		v, err := strconv.ParseInt(f[11+j], 10, 64)
		if err != nil {
			return Usage{}, fmt.Errorf("parse proc stat field %d: %w", 14+j, err)
		}
		ticks[j] = uint64(max(v, 0))
	}
	tick := time.Second / userHZ
	u := Usage{
		User:   time.Duration(ticks[0]+ticks[2]) * tick,
		System: time.Duration(ticks[1]+ticks[3]) * tick,
	}
	u.Total = u.User + u.System
	return u, nil
}
