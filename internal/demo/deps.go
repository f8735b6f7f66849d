package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"tidepool/internal/promrun"
)

// ensureMonitoringBinaries makes sure Prometheus and Alertmanager are
// installed. When one is missing and we run as root, it installs the Debian
// packages with apt (not starting their system services); otherwise it
// returns an error saying what to install.
func ensureMonitoringBinaries(ctx context.Context, out io.Writer) error {
	var missing []string
	if _, err := promrun.PrometheusBinary(); err != nil {
		missing = append(missing, "prometheus")
	}
	if _, err := promrun.AlertmanagerBinary(); err != nil {
		missing = append(missing, "prometheus-alertmanager")
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the demo needs the Debian/Ubuntu packages %v: install them with `sudo apt-get install -y --no-install-recommends %s` (or run `make demo` as root)", missing, strings.Join(missing, " "))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("the demo needs Prometheus and Alertmanager (%v) and apt-get is not available: install them by hand", missing)
	}
	fmt.Fprintf(out, "installing %s with apt-get ...\n", strings.Join(missing, " "))
	// policy-rc.d stops the packages from starting their own services, which
	// would hold :9090 and :9100.
	script := `set -e
made=0
if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; fi
trap '[ "$made" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"`
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", script, "sh"}, missing...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(missing, " "), err)
	}
	if _, err := promrun.PrometheusBinary(); err != nil {
		return errors.New("prometheus still missing after apt-get install")
	}
	if _, err := promrun.AlertmanagerBinary(); err != nil {
		return errors.New("alertmanager still missing after apt-get install")
	}
	return nil
}
