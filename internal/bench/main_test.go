package bench

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// TestMain doubles as the helper processes of the real runs in these tests:
// Config.Helper is this test binary, started as `<binary> _backends ...` or
// `<binary> _nlb ...`, the same roles `tidepool bench` starts.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && IsHelper(os.Args[1]) {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := RunHelper(ctx, os.Args[1:], os.Stdin, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
