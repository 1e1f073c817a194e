package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/backoff"
	"github.com/psgw/psgw/internal/supervise"
)

// Adapter states reported in Status.State.
const (
	StateStarting   = "starting"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateStopped    = "stopped"
	// StateStandby: the adapter's work has one owner among several gateways, and another
	// gateway holds it (docs/cluster.md, "Work with one owner").
	StateStandby = "standby"
)

// Error reasons the runner itself counts in psgw_ingest_errors_total. Adapters add their own
// through Deps.CountRejected.
const (
	ReasonUnavailable = "unavailable" // Publish failed with ErrUnavailable
	ReasonPublish     = "publish"     // Publish failed otherwise
	ReasonRun         = "run"         // Run failed and the adapter was restarted
)

// Status is an adapter's health as the operator sees it.
type Status struct {
	Name       string `json:"name"`
	State      string `json:"state"` // starting, running, restarting, stopped, standby
	Records    uint64 `json:"records"`
	Duplicates uint64 `json:"duplicates"`
	// Rejected counts the source records the adapter refused (HTTP 4xx, HL7 AR, CSV rows
	// quarantined, connections cut off): every Deps.CountRejected call.
	Rejected uint64 `json:"rejected"`
	// RejectedByReason splits Rejected by the adapter's reason constant ("parse",
	// "row_ragged", "unauthorized"), as psgw_ingest_errors_total does.
	RejectedByReason map[string]uint64 `json:"rejected_by_reason,omitempty"`
	// LastRejection is the reason of the latest refusal and LastRejectionAt when it was. A
	// reason is a short constant chosen by the adapter, never record content, so it is safe
	// to show; the record's own quarantine entry holds the detail.
	LastRejection   string    `json:"last_rejection,omitempty"`
	LastRejectionAt time.Time `json:"last_rejection_at,omitzero"`
	Errors          uint64    `json:"errors"`
	Restarts        uint64    `json:"restarts"`
	LastRecordAt    time.Time `json:"last_record_at,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
	// Peers are the open connections of an adapter with a listener of its own, by peer
	// address and certificate subject (PeerLister).
	Peers []Peer `json:"peers,omitempty"`
	// FoundLate counts source rows a cursor adapter found behind its cursor and stored: rows
	// its cursor had passed over (LateFinder), shown so that an operator sees the cursor
	// method missing rows. LastFoundLateAt is when the latest was found.
	FoundLate       uint64    `json:"found_late,omitempty"`
	LastFoundLateAt time.Time `json:"last_found_late_at,omitzero"`
}

// Runner owns one adapter: it restarts it with backoff when Run fails, scopes its logger,
// counts what it publishes and refuses, and reports its status. Safe for concurrent use.
type Runner struct {
	adapter Adapter
	name    string
	log     zerolog.Logger
	metrics *runnerMetrics
	// BackoffMin and BackoffMax bound the restart delay. Set them before Run.
	BackoffMin, BackoffMax time.Duration

	mu     sync.Mutex
	status Status
}

// NewRunner builds the adapter with factory. Before the factory sees deps, the runner scopes
// deps.Logger with the adapter's name, wraps deps.Publisher so that it sees every record,
// sets deps.OnReject, defaults deps.Now, and registers its metrics with deps.Metrics.
func NewRunner(factory Factory, deps Deps) (*Runner, error) {
	if deps.Name == "" {
		return nil, errors.New("ingest: an adapter needs a name")
	}
	if deps.Publisher == nil {
		return nil, fmt.Errorf("ingest: adapter %s has no publisher", deps.Name)
	}
	m, err := newRunnerMetrics(deps.Metrics, deps.Name)
	if err != nil {
		return nil, err
	}
	r := &Runner{name: deps.Name, metrics: m, BackoffMin: time.Second, BackoffMax: time.Minute}
	r.status = Status{Name: deps.Name, State: StateStarting}
	deps.Logger = deps.Logger.With().Str("adapter", deps.Name).Logger()
	r.log = deps.Logger
	deps.Now = deps.Clock()
	deps.Publisher = countingPublisher{next: deps.Publisher, r: r}
	deps.OnReject = r.countRejected
	a, err := factory(deps)
	if err != nil {
		return nil, fmt.Errorf("building adapter %s: %w", deps.Name, err)
	}
	if a == nil {
		return nil, fmt.Errorf("building adapter %s: factory returned no adapter", deps.Name)
	}
	r.adapter = a
	return r, nil
}

// Adapter returns the wrapped adapter, e.g. to mount an HTTPAdapter's routes.
func (r *Runner) Adapter() Adapter { return r.adapter }

// Run runs the adapter until ctx is cancelled, restarting it after failures with exponential
// backoff and full jitter (a supervise.Supervisor). It returns once the adapter's Run has
// returned after cancellation.
func (r *Runner) Run(ctx context.Context) {
	sup := supervise.Supervisor{
		Run: r.runOnce,
		// Full jitter keeps several failing adapters from retrying in step; half the first
		// delay on top keeps a restart from coming at once.
		Backoff: backoff.Backoff{Initial: max(r.BackoffMin, time.Millisecond), Max: max(r.BackoffMax, time.Millisecond),
			Jitter: true, Floor: r.BackoffMin / 2},
		Failed: func(err error, wait time.Duration) {
			if errors.Is(err, supervise.ErrReturned) {
				err = errors.New("adapter stopped without being asked to")
			}
			r.ReportError(err)
			r.metrics.errors(ReasonRun).Inc()
			r.metrics.restarts.Inc()
			r.mu.Lock()
			r.status.Restarts++
			r.status.State = StateRestarting
			r.mu.Unlock()
			r.log.Error().Err(err).Dur("retry_in", wait).Msg("adapter failed; restarting")
		},
		Restarted: func() { r.setState(StateRunning) },
	}
	r.setState(StateRunning)
	sup.Supervise(ctx)
	r.setState(StateStopped)
}

// runOnce calls the adapter's Run, turning a panic into an error so that one broken adapter
// does not take the gateway down. The panic value is not logged: it may hold record data.
func (r *Runner) runOnce(ctx context.Context) (err error) {
	r.metrics.up.Set(1)
	defer r.metrics.up.Set(0)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("adapter panicked (%T)", p)
		}
	}()
	return r.adapter.Run(ctx)
}

// ReportError records an error against the adapter's status without restarting it; the
// runner calls it for failed publishes and failed runs.
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
	st := r.status
	if st.RejectedByReason != nil {
		st.RejectedByReason = make(map[string]uint64, len(r.status.RejectedByReason))
		for k, v := range r.status.RejectedByReason {
			st.RejectedByReason[k] = v
		}
	}
	if pl, ok := r.adapter.(PeerLister); ok {
		st.Peers = pl.Peers()
	}
	if lf, ok := r.adapter.(LateFinder); ok {
		st.FoundLate, st.LastFoundLateAt = lf.FoundLate()
	}
	return st
}

// Standby reports the adapter waiting while another gateway does its work; Run, once called,
// reports it running again.
func (r *Runner) Standby() { r.setState(StateStandby) }

func (r *Runner) setState(s string) {
	r.mu.Lock()
	r.status.State = s
	r.mu.Unlock()
}

func (r *Runner) countRejected(reason string) {
	if reason == "" {
		reason = "rejected"
	}
	r.metrics.errors(reason).Inc()
	r.mu.Lock()
	r.status.Rejected++
	if r.status.RejectedByReason == nil {
		r.status.RejectedByReason = map[string]uint64{}
	}
	r.status.RejectedByReason[reason]++
	r.status.LastRejection = reason
	r.status.LastRejectionAt = time.Now().UTC()
	r.mu.Unlock()
}

type countingPublisher struct {
	next Publisher
	r    *Runner
}

func (p countingPublisher) Publish(ctx context.Context, rec Record) (PublishResult, error) {
	start := time.Now()
	res, err := p.next.Publish(ctx, rec)
	p.r.metrics.publishSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		// A publish abandoned because its caller was cancelled (shutdown, a client that went
		// away) is no failure; one that ran out of time is: the source was told to retry.
		if cerr := ctx.Err(); cerr == nil || errors.Is(cerr, context.DeadlineExceeded) {
			p.r.ReportError(err)
			reason := ReasonPublish
			if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
				reason = ReasonUnavailable
			}
			p.r.metrics.errors(reason).Inc()
		}
		return res, err
	}
	p.r.mu.Lock()
	if res.Duplicate {
		p.r.status.Duplicates++
	} else {
		p.r.status.Records++
	}
	p.r.status.LastRecordAt = time.Now().UTC()
	p.r.mu.Unlock()
	if res.Duplicate {
		p.r.metrics.duplicates.Inc()
	} else {
		p.r.metrics.records.Inc()
	}
	return res, nil
}

// runnerMetrics are one adapter's children of the shared ingest metric vectors.
type runnerMetrics struct {
	records, duplicates, restarts prometheus.Counter
	up                            prometheus.Gauge
	publishSeconds                prometheus.Observer
	errorsVec                     *prometheus.CounterVec
	name                          string
}

func (m *runnerMetrics) errors(reason string) prometheus.Counter {
	return m.errorsVec.WithLabelValues(m.name, reason)
}

// newRunnerMetrics registers the ingest metric vectors with reg, or reuses the ones another
// runner registered there, and returns this adapter's children. A nil reg registers nothing.
func newRunnerMetrics(reg prometheus.Registerer, name string) (*runnerMetrics, error) {
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "psgw_ingest_records_total", Help: "Source records durably stored, by adapter (duplicates excluded).",
	}, []string{"adapter"})
	duplicates := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "psgw_ingest_duplicates_total", Help: "Source records received again and dropped as duplicates, by adapter.",
	}, []string{"adapter"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "psgw_ingest_errors_total", Help: "Records refused or not stored, and adapter failures, by adapter and reason.",
	}, []string{"adapter", "reason"})
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "psgw_ingest_restarts_total", Help: "Times an adapter failed and was restarted.",
	}, []string{"adapter"})
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "psgw_ingest_up", Help: "1 while the adapter is running, 0 while it is restarting or stopped.",
	}, []string{"adapter"})
	pub := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "psgw_ingest_publish_duration_seconds", Help: "Time from Publish to the durable store's answer.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"adapter"})
	if reg != nil {
		var err error
		if records, err = registerOrReuse(reg, records); err != nil {
			return nil, err
		}
		if duplicates, err = registerOrReuse(reg, duplicates); err != nil {
			return nil, err
		}
		if errs, err = registerOrReuse(reg, errs); err != nil {
			return nil, err
		}
		if restarts, err = registerOrReuse(reg, restarts); err != nil {
			return nil, err
		}
		if up, err = registerOrReuse(reg, up); err != nil {
			return nil, err
		}
		if pub, err = registerOrReuse(reg, pub); err != nil {
			return nil, err
		}
	}
	return &runnerMetrics{
		records: records.WithLabelValues(name), duplicates: duplicates.WithLabelValues(name),
		restarts: restarts.WithLabelValues(name), up: up.WithLabelValues(name),
		publishSeconds: pub.WithLabelValues(name), errorsVec: errs, name: name,
	}, nil
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("registering ingest metrics: %w", err)
	}
	return c, nil
}
