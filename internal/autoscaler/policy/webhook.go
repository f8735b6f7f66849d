package policy

import (
	"fmt"
	"time"
)

// Webhook is the seed policy: each tick the pool grows by one if a scale-up
// signal arrived since the last tick, else shrinks by one if a scale-down
// signal arrived, else stays; the caller clears the signals after every
// tick. Limits apply as documented on Limits.Apply.
type Webhook struct {
	Limits
}

var _ Policy = Webhook{}

// Decide implements Policy.
func (w Webhook) Decide(obs Observation, now time.Time) Decision {
	from, p := obs.Pool.Size, obs.Pending
	counts := fmt.Sprintf("%d up, %d down since the last tick", p.Up, p.Down)
	prop := Proposal{Requested: p.Direction(), To: from, Reason: ReasonNoSignal,
		Because: "no scaling signal arrived since the last tick"}
	switch prop.Requested {
	case Up:
		prop.To, prop.Reason = from+1, ReasonUpSignal
		prop.Because = "a scale-up signal arrived (" + counts + ")"
	case Down:
		prop.To, prop.Reason = from-1, ReasonDownSignal
		prop.Because = "a scale-down signal arrived (" + counts + ")"
	}
	return w.Apply(obs, now, prop)
}
