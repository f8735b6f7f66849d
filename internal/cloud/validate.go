package cloud

import (
	"fmt"
	"os/exec"
)

// Validate reports the first configuration error New would return (address
// ranges that are not loopback or overlap, equal ports, negative values, a
// member program that cannot be found) without loading state or touching
// cgroups, so that a command can reject bad flags before it starts anything.
func (cfg Config) Validate() error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	if _, err := exec.LookPath(cfg.AppCommand[0]); err != nil {
		return fmt.Errorf("cloud: member program: %w", err)
	}
	return nil
}
