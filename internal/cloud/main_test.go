package cloud_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"tidepool/internal/buildbin"
	"tidepool/internal/cloud"
	"tidepool/internal/cloud/apispec"
	"tidepool/internal/cloud/cloudtest"
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
	if code == 0 {
		if err := checkRoutesExercised(); err != nil {
			fmt.Fprintln(os.Stderr, "schema conformance:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkRoutesExercised fails a full run of the package (no -run, -skip or
// -short) in which some endpoint the cloud serves never had a conforming,
// successful exchange with a test: every served path is checked against the
// spec. A new endpoint needs a test that calls it through cloudtest.
func checkRoutesExercised() error {
	for _, f := range []string{"test.run", "test.skip"} {
		if fl := flag.Lookup(f); fl != nil && fl.Value.String() != "" {
			return nil
		}
	}
	if testing.Short() {
		return nil
	}
	if _, err := apispec.Locate("."); errors.Is(err, apispec.ErrNotFound) {
		return nil // the tests said so already
	}
	exercised := cloudtest.Exercised()
	var missing []string
	for _, r := range cloud.Routes() {
		if !slices.Contains(exercised, apispec.Operation(r)) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("served but never exercised with a conforming success by a test: %v", missing)
	}
	return nil
}
