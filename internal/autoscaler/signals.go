package autoscaler

import (
	"sync"

	"tidepool/internal/autoscaler/policy"
)

// signals records the scaling signals received since the last tick. Safe for
// concurrent use.
type signals struct {
	mu sync.Mutex
	p  policy.Pending
}

// add records n signals in direction d and returns the new pending counts.
func (s *signals) add(d policy.Direction, n int) policy.Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch d {
	case policy.Up:
		s.p.Up += n
	case policy.Down:
		s.p.Down += n
	}
	return s.p
}

// take returns the pending signals and clears them.
func (s *signals) take() policy.Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.p
	s.p = policy.Pending{}
	return p
}

// restore adds p to the pending signals in one step: signals taken by a tick
// that did nothing go back, and both directions of one payload arrive
// together.
func (s *signals) restore(p policy.Pending) policy.Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p = s.p.Add(p)
	return s.p
}

// peek returns the pending signals.
func (s *signals) peek() policy.Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}
