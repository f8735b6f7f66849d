// Package browsertest drives a real headless Chromium (Debian's chromium
// package) with chromedp for the tests of the live page. Only tests import
// it. Tests that need a browser skip, saying what to install, when Chromium
// is missing.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Candidates are the Chromium executables looked for, in order, when
// TIDEPOOL_CHROMIUM does not name one.
var Candidates = []string{"chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium"}

// Chromium returns the Chromium executable: $TIDEPOOL_CHROMIUM if set,
// else the first of Candidates found.
func Chromium() (string, error) {
	if p := os.Getenv("TIDEPOOL_CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, c := range Candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium not found (install the Debian package chromium: `make deps-browser` or `apt-get install -y --no-install-recommends chromium`; or set TIDEPOOL_CHROMIUM)")
}

// Browser is one headless Chromium with one tab, started by New and stopped
// when the test ends. It records the tab's console errors, uncaught
// exceptions and browser-log errors (failed loads, policy violations).
type Browser struct {
	ctx context.Context // the tab

	mu       sync.Mutex
	problems []string
}

// New starts Chromium headless with a fresh profile in a temporary
// directory and without background networking, or skips t when Chromium is
// missing. Chromium runs with --no-sandbox as root (its sandbox refuses
// root). The browser is stopped, and its profile removed, when t ends.
func New(t testing.TB) *Browser {
	t.Helper()
	path, err := Chromium()
	if err != nil {
		t.Skipf("no browser test: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-pings", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: ctx}
	messages := chromedp.Console(ctx) // starts the browser
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
		<-done
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return b
}

// Navigate opens url in the tab and waits for it to load.
func (b *Browser) Navigate(url string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Do(ctx, chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression in the tab and decodes its value
// into T.
func Eval[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// WaitFor polls the JavaScript expression until it is truthy or timeout
// passes, and returns its value decoded into T.
func WaitFor[T any](b *Browser, expr string, timeout time.Duration) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		return v, fmt.Errorf("waiting for %s: %w", expr, err)
	}
	return v, nil
}

// Screenshot saves a PNG of the whole page to path, creating its directory.
func (b *Browser) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// Problems returns the console errors, uncaught exceptions and browser-log
// errors seen so far, one line each.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// ArtifactDir is where tests save screenshots to keep: $TIDEPOOL_TEST_ARTIFACTS
// if set, else tidepool-test-artifacts in the system's temporary directory.
func ArtifactDir() string {
	if d := os.Getenv("TIDEPOOL_TEST_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "tidepool-test-artifacts")
}

// ProblemsText joins problems for a test message.
func ProblemsText(problems []string) string { return "\n  " + strings.Join(problems, "\n  ") }
