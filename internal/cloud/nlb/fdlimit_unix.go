//go:build unix

package nlb

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// fileLimitLog is where raiseFileLimit reports what it did; New sets it
// from the first Service's logger.
var fileLimitLog struct {
	sync.Mutex
	log *slog.Logger
}

// raiseFileLimit raises this process's RLIMIT_NOFILE to the highest the
// kernel allows and returns the soft limit in force. A process allowed to
// (CAP_SYS_RESOURCE, e.g. root) raises both limits to fs.nr_open (Linux;
// elsewhere the hard limit stays); any other raises its soft limit to its
// hard limit (Go's runtime does that much already on Linux). A connection
// through the load balancer costs two descriptors, so the limit bounds how
// many it can hold. Called once, through fdBudget.
func raiseFileLimit() uint64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		logFileLimit("cannot read the descriptor limit", "err", err)
		return 1024
	}
	from := lim
	if ceiling := kernelFileMax(); ceiling > lim.Max {
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: ceiling, Max: ceiling}) == nil {
			lim = unix.Rlimit{Cur: ceiling, Max: ceiling}
		}
	}
	if lim.Cur < lim.Max {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim.Max, Max: lim.Max}); err == nil {
			lim.Cur = lim.Max
		}
	}
	logFileLimit("descriptor limit", "from_soft", from.Cur, "from_hard", from.Max, "to_soft", lim.Cur, "to_hard", lim.Max,
		"reserved_for_health_checks_and_the_rest", fdReserve(lim.Cur))
	return lim.Cur
}

// kernelFileMax is the most descriptors a process may be allowed
// (fs.nr_open), 0 where unknown.
func kernelFileMax() uint64 {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func logFileLimit(msg string, args ...any) {
	fileLimitLog.Lock()
	log := fileLimitLog.log
	fileLimitLog.Unlock()
	if log != nil {
		log.Info(msg, args...)
	}
}
