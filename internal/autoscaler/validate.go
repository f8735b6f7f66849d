package autoscaler

import (
	"errors"
	"fmt"

	v3 "github.com/exoscale/egoscale/v3"
)

// Validate reports the first configuration error New would return (no cloud
// client, IDs that are not UUIDs, webhooks open beyond loopback or
// malformed basic auth (CheckAccess), an app port out of range, an invalid
// policy). It does no I/O: the state file is read by New.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Cloud == nil {
		return errors.New("autoscaler: no cloud client")
	}
	if _, err := v3.ParseUUID(c.PoolID); err != nil {
		return fmt.Errorf("autoscaler: instance pool ID %q is not a UUID", c.PoolID)
	}
	if (c.NLBID == "") != (c.NLBServiceID == "") {
		return errors.New("autoscaler: NLB ID and NLB service ID must be set together")
	}
	for name, id := range map[string]string{"NLB ID": c.NLBID, "NLB service ID": c.NLBServiceID} {
		if _, err := v3.ParseUUID(id); id != "" && err != nil {
			return fmt.Errorf("autoscaler: %s %q is not a UUID", name, id)
		}
	}
	if err := c.CheckAccess(); err != nil {
		return fmt.Errorf("autoscaler: %w", err)
	}
	if c.AppPort < 0 || c.AppPort > 65535 {
		return fmt.Errorf("autoscaler: app port %d out of range", c.AppPort)
	}
	if v, ok := c.Policy.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("autoscaler: policy: %w", err)
		}
	}
	return nil
}
