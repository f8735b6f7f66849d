package nlb

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(idleHelperEnv); spec != "" {
		os.Exit(runIdleHelper(spec))
	}
	goleak.VerifyTestMain(m)
}
