package demo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/run"
)

// setupTimeout bounds a phase's start: creating the pool and the load
// balancer, starting Prometheus and Alertmanager.
const setupTimeout = 2 * time.Minute

// A phase is one component of the demo (the cloud, the pool, an agent,
// monitoring, the load). Adding a component to the demo is adding a phase.
type phase struct {
	name string
	// run starts the component, calls ready once the phases after it may
	// use it, and then runs until ctx is cancelled (a component) or its
	// work is done (the load). Returning, with or without an error, stops
	// the demo. It returns nil when ctx stops it.
	run func(ctx context.Context, ready func()) error
}

// runPhases runs phases as one group (github.com/oklog/run, as Prometheus
// does): each phase starts once the phase before it is ready. The first
// phase to return (the load, when it is done, or any phase that fails) or
// the cancellation of ctx stops them all in reverse order, each waited for
// before the phase it depends on is stopped: the load before the monitoring
// and the agents, everything before the cloud. It blocks until every phase
// has returned and returns the first error, prefixed with its phase's name,
// ctx's error after a cancellation, or nil.
func runPhases(ctx context.Context, phases []phase) error {
	type actor struct {
		execute   func() error
		interrupt func(error)
	}
	actors := make([]actor, 0, len(phases))
	prevReady := make(chan struct{})
	close(prevReady)
	for _, p := range phases {
		// Phases are stopped by the group, in order, not all at once by ctx.
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		after, ready, done := prevReady, make(chan struct{}), make(chan struct{})
		var once sync.Once
		actors = append(actors, actor{
			execute: func() error {
				defer close(done)
				select {
				case <-after:
				case <-pctx.Done():
					return nil
				}
				if err := p.run(pctx, func() { once.Do(func() { close(ready) }) }); err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				return nil
			},
			interrupt: func(error) { cancel(); <-done },
		})
		prevReady = ready
	}
	var g run.Group
	// The group interrupts its actors in the order they were added.
	for i := len(actors) - 1; i >= 0; i-- {
		g.Add(actors[i].execute, actors[i].interrupt)
	}
	stop := make(chan struct{})
	g.Add(func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return nil
		}
	}, func(error) { close(stop) })
	return g.Run()
}
