//go:build unix

package nlb

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNewRaisesFileLimit checks that after New the descriptor limit is as
// high as this process may set it: the soft limit at the hard one, and
// both at fs.nr_open when the process may raise the hard limit
// (CAP_SYS_RESOURCE; root in a container often lacks it).
func TestNewRaisesFileLimit(t *testing.T) {
	newService(t, Config{TargetPort: 1})
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur != lim.Max {
		t.Errorf("soft limit %d, want the hard limit %d", lim.Cur, lim.Max)
	}
	if nr := kernelFileMax(); mayRaiseHardLimit(t) && nr > 0 && lim.Max != nr {
		t.Errorf("hard limit %d with CAP_SYS_RESOURCE, want fs.nr_open %d", lim.Max, nr)
	}
	if want := int64(lim.Cur - fdReserve(lim.Cur)); fdBudget() != want {
		t.Errorf("descriptor budget %d, want %d", fdBudget(), want)
	}
}

// mayRaiseHardLimit reports whether this process has CAP_SYS_RESOURCE in
// its effective set (/proc/self/status CapEff, bit 24).
func mayRaiseHardLimit(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", v, err)
			}
			return caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}
