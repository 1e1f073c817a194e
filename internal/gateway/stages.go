package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/backoff"
	"github.com/psgw/psgw/internal/supervise"
	"github.com/psgw/psgw/ops"
)

// Default restart backoff of a pipeline stage: 1s, 2s, 4s … capped at a minute. A stage that
// ran for at least the cap before it stopped starts again from the first delay.
const (
	defaultStageBackoff    = time.Second
	defaultStageBackoffMax = time.Minute
)

// supervisor keeps the pipeline stages (mapper, forwarder, patients) running, each under a
// supervise.Supervisor: when a stage's Run returns before the gateway stops, it logs the
// error and runs the stage again after a capped exponential backoff; meanwhile Stages
// reports it down, so /readyz answers 503. Nothing is logged while stages run normally. Safe
// for concurrent use.
type supervisor struct {
	log              zerolog.Logger
	backoff, maxWait time.Duration
	wrap             func(name string, run func(context.Context) error) func(context.Context) error

	mu     sync.Mutex
	stages []namedStage
}

type namedStage struct {
	name string
	sup  *supervise.Supervisor
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
		v := st.sup.Status()
		state := v.State
		if state == "" {
			state = ops.StageRunning // added, and about to run
		}
		out[i] = ops.StageStatus{Name: st.name, State: state, Restarts: v.Restarts, LastError: v.LastError,
			LastErrorAt: v.LastErrorAt, DownSince: v.DownSince, NextRestartAt: v.NextRestartAt}
	}
	return out
}

var _ ops.StageReporter = (*supervisor)(nil)

// add registers the stage and returns what runs it until ctx ends, restarting it whenever it
// stops early: the gateway's group starts it in its turn.
func (s *supervisor) add(name string, run func(context.Context) error) func(context.Context) error {
	if s.wrap != nil {
		run = s.wrap(name, run)
	}
	log := s.log.With().Str("stage", name).Logger()
	sup := &supervise.Supervisor{
		Run:     run,
		Backoff: backoff.Backoff{Initial: s.backoff, Max: s.maxWait},
		Failed: func(err error, wait time.Duration) {
			log.Error().Err(err).Dur("restart_in", wait).Msg("pipeline stage stopped; the gateway is not ready until it runs again")
		},
		Restarted: func() { log.Info().Msg("pipeline stage restarted") },
	}
	s.mu.Lock()
	s.stages = append(s.stages, namedStage{name: name, sup: sup})
	s.mu.Unlock()
	return func(ctx context.Context) error {
		sup.Supervise(ctx)
		return nil
	}
}
