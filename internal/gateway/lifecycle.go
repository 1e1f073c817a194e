package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
)

// part is one component of a running gateway, as the group starts and stops it.
type part struct {
	name string
	// run does the part's work until ctx ends, and returns nil then. Nil: nothing runs (a
	// resource the later parts use, such as the queue).
	run func(ctx context.Context) error
	// stop, when set, asks run to end (a server's Shutdown) or releases the part (the
	// queue's Close), within ctx. It is called before run's context is cancelled, and also
	// for a part that was added but never started, so that a Start that failed half way
	// releases what it opened.
	stop func(ctx context.Context) error
	// front marks a part of the front door: the listeners sources reach, opened before the
	// store so that a source is answered (503, AE) while the store is awaited (gateway.go,
	// Start). Such a part starts first but stops first too, before every other part, as a
	// listener added last would: requests end before what serves them does.
	front bool
}

// group is the one place where the gateway's parts are started and stopped, in order, as
// the run.Group of Prometheus's main is for Prometheus (docs/architecture.md, "Start and
// stop"): parts are added as they are built, nothing runs until start, start runs them in
// the order they were added, and stop stops them one at a time in the reverse order, each
// finished before the next is asked, so that a part never outlives one it depends on.
type group struct {
	log   zerolog.Logger
	mu    sync.Mutex
	parts []*member
}

type member struct {
	part
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned; nil when never started
}

// add appends p; p starts after every part added before it and stops before them.
func (g *group) add(p part) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.parts = append(g.parts, &member{part: p})
}

// start runs the run of every part not started yet, in order, each in its own goroutine with
// its own context below ctx. A run that returns an error while it was not being stopped is
// logged: the other parts keep running, as each reports its own health. Start may be called
// again after more parts were added: the front door is started before the rest is built.
func (g *group) start(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.parts {
		if m.run == nil || m.done != nil {
			continue
		}
		var rctx context.Context
		rctx, m.cancel = context.WithCancel(ctx)
		m.done = make(chan struct{})
		go func() {
			defer close(m.done)
			if err := m.run(rctx); err != nil {
				g.log.Error().Err(err).Str("part", m.name).Msg("part stopped with an error")
			}
		}()
	}
}

// stop stops every part in the reverse order of add, the front door's parts first: it calls
// the part's stop, cancels its run and waits for run to return, then goes on to the part
// before it. It returns every part's stop error, each naming its part, joined.
func (g *group) stop(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	order := make([]*member, 0, len(g.parts))
	for _, front := range []bool{true, false} {
		for i := len(g.parts) - 1; i >= 0; i-- {
			if g.parts[i].front == front {
				order = append(order, g.parts[i])
			}
		}
	}
	for _, m := range order {
		if m.stop != nil {
			if err := m.stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stopping %s: %w", m.name, err))
			}
		}
		if m.cancel != nil {
			m.cancel()
		}
		if m.done != nil {
			<-m.done
		}
	}
	g.parts = nil
	return errors.Join(errs...)
}
