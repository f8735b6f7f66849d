// Package buildbin builds the tidepool binary once per test process so that
// tests can run the real program (pool members, end-to-end runs) as child
// processes.
//
// It owns the test build of the binary; only tests may import it, and it must
// not import any other tidepool package.
package buildbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// moduleRoot walks up from the working directory (go test runs a test in
// its package's directory) to the directory holding go.mod. The source path
// compiled into this package is not used: the build cache may share it
// between checkouts of the same code.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("buildbin: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("buildbin: no go.mod above the working directory")
		}
		dir = parent
	}
}
