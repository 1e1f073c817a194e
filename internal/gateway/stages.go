package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ops"
)

// Default restart backoff of a pipeline stage: 1s, 2s, 4s … capped at a minute. A stage that
// ran for at least the cap before it stopped starts again from the first delay.
const (
	defaultStageBackoff    = time.Second
	defaultStageBackoffMax = time.Minute
)

// errStageReturned stands in for the error of a stage whose Run returned nil while the
// gateway was still running: it stopped doing its work all the same.
var errStageReturned = errors.New("stopped without an error while the gateway was running")

// supervisor keeps the pipeline stages (mapper, forwarder, patients) running. When a stage's
// Run returns before the gateway stops, it logs the error and runs the stage again after a
// capped exponential backoff; meanwhile Stages reports it down, so /readyz answers 503.
// Nothing is logged while stages run normally. Safe for concurrent use.
type supervisor struct {
	log              zerolog.Logger
	backoff, maxWait time.Duration
	wrap             func(name string, run func(context.Context) error) func(context.Context) error

	mu     sync.Mutex
	stages []*ops.StageStatus
}

func newSupervisor(log zerolog.Logger, opts Options) *supervisor {
	s := &supervisor{log: log, backoff: opts.StageBackoff, maxWait: opts.StageBackoffMax, wrap: opts.StageHook}
	if s.backoff <= 0 {
		s.backoff = defaultStageBackoff
	}
	if s.maxWait <= 0 {
		s.maxWait = defaultStageBackoffMax
	}
	s.maxWait = max(s.maxWait, s.backoff)
	return s
}

// Stages returns a copy of every stage's status, in the order they were started.
func (s *supervisor) Stages() []ops.StageStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ops.StageStatus, len(s.stages))
	for i, st := range s.stages {
		out[i] = *st
	}
	return out
}

var _ ops.StageReporter = (*supervisor)(nil)

// update changes a stage's status under the lock.
func (s *supervisor) update(st *ops.StageStatus, fn func(st *ops.StageStatus)) {
	s.mu.Lock()
	fn(st)
	s.mu.Unlock()
}

// start runs the stage in wg until ctx ends, restarting it whenever it stops early.
func (s *supervisor) start(ctx context.Context, wg *sync.WaitGroup, name string, run func(context.Context) error) {
	if s.wrap != nil {
		run = s.wrap(name, run)
	}
	st := &ops.StageStatus{Name: name, State: ops.StageRunning}
	s.mu.Lock()
	s.stages = append(s.stages, st)
	s.mu.Unlock()
	log := s.log.With().Str("stage", name).Logger()
	wg.Go(func() {
		delay := s.backoff
		for {
			started := time.Now()
			err := run(ctx)
			if ctx.Err() != nil {
				s.update(st, func(st *ops.StageStatus) { st.State, st.NextRestartAt = ops.StageStopped, time.Time{} })
				return
			}
			if err == nil {
				err = errStageReturned
			}
			now := time.Now()
			if now.Sub(started) >= s.maxWait {
				delay = s.backoff // it ran well for a while: this is a new failure, not the same one
			}
			s.update(st, func(st *ops.StageStatus) {
				st.State, st.LastError, st.LastErrorAt = ops.StageRestarting, err.Error(), now.UTC()
				st.DownSince, st.NextRestartAt = now.UTC(), now.Add(delay).UTC()
			})
			log.Error().Err(err).Dur("restart_in", delay).Msg("pipeline stage stopped; the gateway is not ready until it runs again")
			select {
			case <-ctx.Done():
				s.update(st, func(st *ops.StageStatus) { st.State, st.NextRestartAt = ops.StageStopped, time.Time{} })
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, s.maxWait)
			s.update(st, func(st *ops.StageStatus) {
				st.State, st.Restarts, st.DownSince, st.NextRestartAt = ops.StageRunning, st.Restarts+1, time.Time{}, time.Time{}
			})
			log.Info().Msg("pipeline stage restarted")
		}
	})
}
