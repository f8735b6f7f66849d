package cloud_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"tidepool/internal/buildbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	buildbin.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
