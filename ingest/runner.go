package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Status is an adapter's health as the operator sees it.
type Status struct {
	Name         string    `json:"name"`
	State        string    `json:"state"` // starting, running, restarting, stopped
	Records      uint64    `json:"records"`
	Duplicates   uint64    `json:"duplicates"`
	Errors       uint64    `json:"errors"`
	Restarts     uint64    `json:"restarts"`
	LastRecordAt time.Time `json:"last_record_at,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
}

// Runner owns one adapter: it restarts it with backoff when Run fails, counts what it
// publishes and reports its status. Safe for concurrent use.
type Runner struct {
	adapter Adapter
	log     zerolog.Logger
	// BackoffMin and BackoffMax bound the restart delay.
	BackoffMin, BackoffMax time.Duration

	mu     sync.Mutex
	status Status
}

// NewRunner wraps the adapter built by factory. The Publisher in deps is wrapped so that the
// runner sees every record.
func NewRunner(factory Factory, deps Deps) (*Runner, error) {
	r := &Runner{log: deps.Logger, BackoffMin: time.Second, BackoffMax: time.Minute}
	r.status = Status{Name: deps.Name, State: "starting"}
	deps.Publisher = countingPublisher{next: deps.Publisher, r: r}
	a, err := factory(deps)
	if err != nil {
		return nil, err
	}
	r.adapter = a
	return r, nil
}

// Adapter returns the wrapped adapter, e.g. to mount an HTTPAdapter's routes.
func (r *Runner) Adapter() Adapter { return r.adapter }

// Run runs the adapter until ctx is cancelled, restarting it after failures.
func (r *Runner) Run(ctx context.Context) {
	delay := r.BackoffMin
	for {
		r.setState("running")
		started := time.Now()
		err := r.adapter.Run(ctx)
		if ctx.Err() != nil {
			r.setState("stopped")
			return
		}
		if err == nil {
			err = errors.New("adapter stopped without being asked to")
		}
		r.ReportError(err)
		r.mu.Lock()
		r.status.Restarts++
		r.status.State = "restarting"
		r.mu.Unlock()
		if time.Since(started) > r.BackoffMax {
			delay = r.BackoffMin
		}
		// Full jitter keeps several failing adapters from retrying in step.
		wait := time.Duration(rand.Int64N(int64(delay))) + r.BackoffMin/2
		r.log.Error().Err(err).Dur("retry_in", wait).Msg("adapter failed; restarting")
		select {
		case <-ctx.Done():
			r.setState("stopped")
			return
		case <-time.After(wait):
		}
		delay = min(delay*2, r.BackoffMax)
	}
}

// ReportError records an error against the adapter's status without restarting it; adapters
// reach it through their Publisher's failures, and the runner through Run's.
func (r *Runner) ReportError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Errors++
	r.status.LastError = err.Error()
	r.status.LastErrorAt = time.Now().UTC()
}

// Status returns a snapshot of the adapter's health.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *Runner) setState(s string) {
	r.mu.Lock()
	r.status.State = s
	r.mu.Unlock()
}

type countingPublisher struct {
	next Publisher
	r    *Runner
}

func (p countingPublisher) Publish(ctx context.Context, rec Record) (PublishResult, error) {
	res, err := p.next.Publish(ctx, rec)
	if err != nil {
		if ctx.Err() == nil {
			p.r.ReportError(err)
		}
		return res, err
	}
	p.r.mu.Lock()
	p.r.status.Records++
	if res.Duplicate {
		p.r.status.Duplicates++
	}
	p.r.status.LastRecordAt = time.Now().UTC()
	p.r.mu.Unlock()
	return res, nil
}
