package demo

import (
	"fmt"
	"strings"

	"tidepool/internal/promrun"
)

// binary is a program the demo runs and the Debian package that ships it.
type binary struct {
	pkg  string
	find func() (string, error)
}

// monitoringBinaries are the programs the monitoring phase starts.
var monitoringBinaries = []binary{
	{"prometheus", promrun.PrometheusBinary},
	{"prometheus-alertmanager", promrun.AlertmanagerBinary},
}

// checkBinaries says which packages are missing and how to install them.
// The demo never installs anything itself: `make demo` runs
// scripts/install-deps.sh first.
func checkBinaries(bins []binary) error {
	var missing []string
	for _, b := range bins {
		if _, err := b.find(); err != nil {
			missing = append(missing, b.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	list := strings.Join(missing, " ")
	return fmt.Errorf("the demo needs the Debian/Ubuntu package(s) %s, not installed: run `make deps` (scripts/install-deps.sh) as root, or `sudo apt-get install -y --no-install-recommends %s`", list, list)
}
