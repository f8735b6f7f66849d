package monitoring

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// requireTool returns path if it is an executable, else fails the test: the
// tools come from Debian packages that `make test` installs
// (scripts/install-deps.sh), so a missing one is a broken setup, not a skip.
func requireTool(t *testing.T, find func() (string, error)) string {
	t.Helper()
	path, err := find()
	if err != nil {
		t.Fatalf("%v: run `make test`, which installs the Debian packages prometheus and prometheus-alertmanager", err)
	}
	return path
}

// renderTo renders p with params into a fresh temporary directory.
func renderTo(t *testing.T, p Profile, params Params) string {
	t.Helper()
	dir := t.TempDir()
	if err := Render(p, params, dir); err != nil {
		t.Fatalf("Render(%s): %v", p.Name, err)
	}
	return dir
}

// mustRead reads a rendered file.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
