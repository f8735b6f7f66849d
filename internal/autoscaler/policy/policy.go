// Package policy holds the autoscaler's scaling decisions as pure functions:
// a Policy maps an Observation (pending signals, pool status, last scaling
// time) and the current time to a Decision with a machine-readable reason and
// a human message "from N to M because ...". Nothing here touches the network
// or the clock, so the control loop, the tests and a simulator run the same
// code.
//
// Every policy proposes a target size; Limits.Apply then enforces what all
// policies share: the [Min, Max] bounds, holding while the pool is not
// running, the cooldown after a change, the warmup of new members, and naming
// the members a scale-in evicts.
//
// It owns the scaling decisions and must not import anything but the standard
// library: no network, no clock, no other tidepool package.
package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Policy decides the pool size. Implementations are pure: the same
// Observation and now give the same Decision, and they are safe for
// concurrent use.
type Policy interface {
	Decide(obs Observation, now time.Time) Decision
}

// Direction is the way a signal asks the pool to move.
type Direction string

// Directions. None is the zero value.
const (
	None Direction = ""
	Up   Direction = "up"
	Down Direction = "down"
)

// ParseDirection accepts "up" or "down" in any case, with surrounding space
// ignored. Anything else returns None and false.
func ParseDirection(s string) (Direction, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "up":
		return Up, true
	case "down":
		return Down, true
	}
	return None, false
}

// Pending counts the scaling signals received since the last tick.
type Pending struct {
	Up   int `json:"up"`
	Down int `json:"down"`
}

// Direction is the direction the pending signals ask for: Up when any
// scale-up signal arrived (up beats down), else Down when any scale-down
// signal arrived, else None.
func (p Pending) Direction() Direction {
	switch {
	case p.Up > 0:
		return Up
	case p.Down > 0:
		return Down
	}
	return None
}

// Add returns the sum of p and q.
func (p Pending) Add(q Pending) Pending {
	return Pending{Up: p.Up + q.Up, Down: p.Down + q.Down}
}

// StateRunning is the instance pool state in which scaling is allowed
// (Exoscale API enum instance-pool.state).
const StateRunning = "running"

// Member is one instance of the pool.
type Member struct {
	ID string `json:"id"`
	// CreatedAt is the instance's creation time; zero when unknown.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// PublicIP is the instance's public IPv4 address; "" when unknown.
	PublicIP string `json:"public_ip,omitempty"`
}

// Pool is the observed state of the instance pool.
type Pool struct {
	// Size is the pool's configured size (instance-pool.size).
	Size int `json:"size"`
	// State is the pool's state (instance-pool.state), e.g. "running".
	State string `json:"state"`
	// Members are the pool's current instances, in any order.
	Members []Member `json:"members"`
}

// Observation is everything a policy decides from.
type Observation struct {
	Pending Pending
	Pool    Pool
	// LastScale is when the autoscaler last changed the pool size; zero
	// means never.
	LastScale time.Time
	// Metrics is the pool's measured load, read by metric-driven policies
	// (TargetTracking); the zero value means unknown.
	Metrics Metrics
	// Recommendations is the state of a policy with stabilisation windows:
	// pass the previous Decision's Recommendations back (nil at start).
	Recommendations []Recommendation
}

// Action is what a Decision asks the control loop to do.
type Action string

// Actions.
const (
	ActionNone      Action = "none"
	ActionScaleUp   Action = "scale-up"
	ActionScaleDown Action = "scale-down"
)

// Reason is the machine-readable cause of a Decision; stable strings meant
// for logs, metrics and tests.
type Reason string

// Reasons.
const (
	ReasonUpSignal       Reason = "up-signal"        // a scale-up signal arrived
	ReasonDownSignal     Reason = "down-signal"      // a scale-down signal arrived (and no scale-up)
	ReasonNoSignal       Reason = "no-signal"        // nothing arrived since the last tick
	ReasonAtMax          Reason = "at-max"           // an increase was asked at the maximum size
	ReasonAtMin          Reason = "at-min"           // a decrease was asked at the minimum size
	ReasonBelowMin       Reason = "below-min"        // the pool is smaller than the minimum
	ReasonAboveMax       Reason = "above-max"        // the pool is larger than the maximum
	ReasonPoolNotRunning Reason = "pool-not-running" // a change is held: the pool is busy
	ReasonCooldown       Reason = "cooldown"         // a change is held: too soon after the last one
	ReasonWarmup         Reason = "warmup"           // a change is held: a member is still warming up
	ReasonNoVictim       Reason = "no-victim"        // a scale-in is held: not enough known members to name
)

// Decision is the outcome of a Policy. To == From means nothing to do.
type Decision struct {
	From   int    `json:"from"`
	To     int    `json:"to"`
	Action Action `json:"action"`
	// Requested is the direction the inputs asked for, even when the
	// decision is a no-op or a hold.
	Requested Direction `json:"requested,omitempty"`
	Reason    Reason    `json:"reason"`
	// Message is for humans: "from N to M because ...".
	Message string `json:"message"`
	// Victims are the IDs of the members to evict, in eviction order; set
	// only for ActionScaleDown, with len(Victims) == From-To.
	Victims []string `json:"victims,omitempty"`
	// Recommendations is the state to pass in the next Observation; nil
	// for policies that keep none (Webhook). Not part of the JSON form.
	Recommendations []Recommendation `json:"-"`
}

// VictimOrder chooses which members a scale-in evicts.
type VictimOrder string

// Victim orders. The zero value means Newest.
const (
	Newest VictimOrder = "newest"
	Oldest VictimOrder = "oldest"
)

// ParseVictimOrder accepts "newest" or "oldest".
func ParseVictimOrder(s string) (VictimOrder, error) {
	switch VictimOrder(s) {
	case Newest, Oldest:
		return VictimOrder(s), nil
	}
	return "", fmt.Errorf("victim order %q: want newest or oldest", s)
}

// Victims returns the IDs of n members to evict, chosen by order (zero means
// Newest). Members with an unknown creation time count as the oldest; ties
// are broken by ID so the choice is deterministic. It returns fewer than n
// IDs when there are fewer members.
func Victims(members []Member, n int, order VictimOrder) []string {
	if n <= 0 {
		return nil
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if order != Oldest {
		slices.Reverse(sorted)
	}
	ids := make([]string, 0, min(n, len(sorted)))
	for _, m := range sorted[:min(n, len(sorted))] {
		ids = append(ids, m.ID)
	}
	return ids
}

// Limits are the rules shared by every policy. The zero value means: minimum
// 1, no maximum, no cooldown, no warmup, newest members evicted first.
type Limits struct {
	// Min is the smallest pool size; values below 1 mean 1.
	Min int
	// Max is the largest pool size; 0 means no maximum.
	Max int
	// Cooldown is the time after a change during which no further change is
	// made; 0 disables it.
	Cooldown time.Duration
	// Warmup is how long a new member is given before its pool is scaled
	// again; 0 disables it.
	Warmup time.Duration
	// Victims chooses the members a scale-in evicts; "" means Newest.
	Victims VictimOrder
}

// Validate reports limits that cannot be met: Max below Min, negative
// durations or an unknown victim order.
func (l Limits) Validate() error {
	lo, hi := l.Bounds()
	switch {
	case l.Max < 0:
		return fmt.Errorf("max %d: must not be negative", l.Max)
	case hi < lo:
		return fmt.Errorf("max %d is below min %d", hi, lo)
	case l.Cooldown < 0:
		return fmt.Errorf("cooldown %s: must not be negative", l.Cooldown)
	case l.Warmup < 0:
		return fmt.Errorf("warmup %s: must not be negative", l.Warmup)
	}
	if l.Victims != "" {
		if _, err := ParseVictimOrder(string(l.Victims)); err != nil {
			return err
		}
	}
	return nil
}

// Bounds returns the effective [lo, hi] size range; hi is the largest int
// when there is no maximum.
func (l Limits) Bounds() (lo, hi int) {
	lo, hi = max(l.Min, 1), l.Max
	if hi == 0 {
		hi = int(^uint(0) >> 1)
	}
	return lo, hi
}

// Proposal is the size a policy wants before Limits.Apply enforces the
// shared rules.
type Proposal struct {
	// Requested is the direction the inputs asked for (None if none).
	Requested Direction
	// To is the wanted size.
	To int
	// Reason and Because explain To; Because completes "from N to M
	// because ...".
	Reason  Reason
	Because string
}

// Apply turns a proposal into a decision: it clamps the target into the
// bounds (a pool outside them is brought back even without a signal), then
// holds any change while the pool is not running, during the cooldown after
// obs.LastScale, or while a member is younger than the warmup, and finally
// names the victims of a scale-in.
func (l Limits) Apply(obs Observation, now time.Time, p Proposal) Decision {
	from := obs.Pool.Size
	lo, hi := l.Bounds()
	to, reason, because := p.To, p.Reason, p.Because
	switch {
	case from < lo:
		to, reason, because = lo, ReasonBelowMin, fmt.Sprintf("the pool is below its minimum size %d", lo)
	case from > hi:
		to, reason, because = hi, ReasonAboveMax, fmt.Sprintf("the pool is above its maximum size %d", hi)
	case to > hi && from == hi:
		to, reason, because = from, ReasonAtMax, fmt.Sprintf("the pool is at its maximum size %d (%s)", hi, because)
	case to < lo && from == lo:
		to, reason, because = from, ReasonAtMin, fmt.Sprintf("the pool is at its minimum size %d (%s)", lo, because)
	case to > hi:
		to, because = hi, fmt.Sprintf("%s (capped at the maximum size %d)", because, hi)
	case to < lo:
		to, because = lo, fmt.Sprintf("%s (capped at the minimum size %d)", because, lo)
	}
	d := Decision{From: from, To: to, Action: ActionNone, Requested: p.Requested, Reason: reason}
	if to == from {
		d.Message = fmt.Sprintf("from %d to %d because %s", from, to, because)
		return d
	}
	if hold, why := l.hold(obs, now); hold != "" {
		d.To, d.Reason = from, hold
		d.Message = fmt.Sprintf("from %d to %d because %s; held the change to %d (%s)", from, from, why, to, because)
		return d
	}
	if to < from {
		victims := Victims(obs.Pool.Members, from-to, l.Victims)
		if len(victims) < from-to {
			d.To, d.Reason = from, ReasonNoVictim
			d.Message = fmt.Sprintf("from %d to %d because only %d members are known, %d must be named; held the change to %d (%s)",
				from, from, len(victims), from-to, to, because)
			return d
		}
		d.Action, d.Victims = ActionScaleDown, victims
		d.Message = fmt.Sprintf("from %d to %d because %s; evicting %s", from, to, because, strings.Join(victims, ", "))
		return d
	}
	d.Action = ActionScaleUp
	d.Message = fmt.Sprintf("from %d to %d because %s", from, to, because)
	return d
}

// hold returns the reason a change must wait, or "" when it may proceed.
func (l Limits) hold(obs Observation, now time.Time) (Reason, string) {
	if obs.Pool.State != StateRunning {
		state := obs.Pool.State
		if state == "" {
			state = "unknown"
		}
		return ReasonPoolNotRunning, fmt.Sprintf("the pool is %s, not %s", state, StateRunning)
	}
	if l.Cooldown > 0 && !obs.LastScale.IsZero() {
		if until := obs.LastScale.Add(l.Cooldown); now.Before(until) {
			return ReasonCooldown, fmt.Sprintf("the cooldown after the last change lasts another %s", until.Sub(now).Round(time.Second))
		}
	}
	if l.Warmup > 0 {
		for _, m := range obs.Pool.Members {
			if m.CreatedAt.IsZero() {
				continue
			}
			if until := m.CreatedAt.Add(l.Warmup); now.Before(until) {
				return ReasonWarmup, fmt.Sprintf("member %s warms up for another %s", m.ID, until.Sub(now).Round(time.Second))
			}
		}
	}
	return "", ""
}
