// Package buildbin builds the tidepool binary once per test process so that
// tests can run the real program (pool members, end-to-end runs) as child
// processes.
package buildbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

var (
	once sync.Once
	path string
	dir  string
	err  error
)

// Tidepool returns the path of a freshly built tidepool binary. The first call
// builds it (blocking for the build); later calls return the same path. The
// binary lives in a temporary directory that Cleanup removes: call Cleanup
// from TestMain after m.Run.
func Tidepool() (string, error) {
	once.Do(func() {
		dir, err = os.MkdirTemp("", "tidepool-bin-")
		if err != nil {
			err = fmt.Errorf("buildbin: temp dir: %w", err)
			return
		}
		root, rerr := moduleRoot()
		if rerr != nil {
			err = rerr
			return
		}
		path = filepath.Join(dir, "tidepool")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/tidepool")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, berr := cmd.CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("buildbin: go build: %w\n%s", berr, out)
		}
	})
	return path, err
}

// Cleanup removes the built binary, if any. Safe to call when Tidepool was
// never called.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("buildbin: cannot locate source")
	}
	// file is <root>/internal/buildbin/buildbin.go
	return filepath.Dir(filepath.Dir(filepath.Dir(file))), nil
}
