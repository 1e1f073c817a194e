// Package supervise keeps a restartable part of psgw running: when the part's Run returns
// before it was asked to stop, the Supervisor runs it again after a backoff, and reports
// meanwhile that it is down, so that the status page and /readyz can say so. It is the one
// restart loop of the tree: the pipeline stages, the adapters' runner and the ledger's index
// all run under it (docs/architecture.md, "Retries and restarts").
//
// It imports nothing of psgw's but internal/backoff, so that every package may use it.
package supervise

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/psgw/psgw/internal/backoff"
)

// The states a supervised part is in, as the status page shows them.
const (
	Running    = "running"
	Restarting = "restarting"
	Stopped    = "stopped"
)

// ErrReturned stands in for the error of a part whose Run returned nil while its context was
// still live: it stopped doing its work all the same, and is restarted like a failed one.
var ErrReturned = errors.New("stopped without an error while the gateway was running")

// Status is a supervised part's state, a plain value for the status page.
type Status struct {
	// State is Running, Restarting or Stopped; empty before Supervise is called.
	State string
	// Restarts counts how often Run was run again after it stopped early.
	Restarts    int
	LastError   string
	LastErrorAt time.Time
	// DownSince is when Run last stopped early, while the part waits to run again.
	DownSince time.Time
	// NextRestartAt is when Run runs again, while the part waits.
	NextRestartAt time.Time
}

// Supervisor runs one part and restarts it when it stops early. Set its fields before
// Supervise; Status is safe to call from any goroutine at any time.
type Supervisor struct {
	// Run does the part's work until ctx ends. Returning while ctx is live, with an error or
	// without (ErrReturned), is a failure.
	Run func(ctx context.Context) error
	// Backoff gives the wait before each restart. A part that ran for at least Backoff.Max
	// before it stopped is starting a new run of failures, and waits the first delay again.
	Backoff backoff.Backoff
	// Failed, when set, is called after each failure, before the wait, with Run's error and
	// the wait: the owner logs and counts there.
	Failed func(err error, wait time.Duration)
	// Restarted, when set, is called after the wait, just before Run runs again.
	Restarted func()

	mu     sync.Mutex
	status Status
}

// Supervise runs Run until ctx ends, restarting it after each failure, and returns once Run
// has returned after ctx ended (or ctx ended during a wait). Call it once.
func (s *Supervisor) Supervise(ctx context.Context) {
	s.update(func(st *Status) { st.State = Running })
	defer s.update(func(st *Status) { st.State, st.NextRestartAt = Stopped, time.Time{} })
	failures := 0
	for {
		started := time.Now()
		err := s.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = ErrReturned
		}
		now := time.Now()
		if now.Sub(started) >= s.Backoff.Max {
			failures = 0 // it ran well for a while: this is a new failure, not the same one
		}
		failures++
		wait := s.Backoff.Delay(failures)
		s.update(func(st *Status) {
			st.State, st.LastError, st.LastErrorAt = Restarting, err.Error(), now.UTC()
			st.DownSince, st.NextRestartAt = now.UTC(), now.Add(wait).UTC()
		})
		if s.Failed != nil {
			s.Failed(err, wait)
		}
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
		s.update(func(st *Status) {
			st.State, st.Restarts, st.DownSince, st.NextRestartAt = Running, st.Restarts+1, time.Time{}, time.Time{}
		})
		if s.Restarted != nil {
			s.Restarted()
		}
	}
}

// Status returns a snapshot of the part's state.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *Supervisor) update(fn func(st *Status)) {
	s.mu.Lock()
	fn(&s.status)
	s.mu.Unlock()
}
