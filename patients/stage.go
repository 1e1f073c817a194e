package patients

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/internal/backoff"
	"github.com/psgw/psgw/queue"
)

// Options configure a Stage.
type Options struct {
	// Source is the EPR feed's source name. Local patient ids are keyed in its id space (with
	// their assigning authority), and incidents' local_patient_id values are looked up there.
	Source string
	// EnrichWait bounds how long Enrich waits for the stage to apply the ADT records stored
	// before the incident. After it, Enrich goes on with what the store holds. Default 5s;
	// negative means do not wait.
	EnrichWait time.Duration
	// DownWait bounds how long Enrich, within EnrichWait, still waits for the stage while Run
	// is not running (about to start, or being restarted by a supervisor). Once the stage has
	// been down longer, Enrich does not wait for it at all. Default 1s; negative: not at all.
	DownWait time.Duration
	// MaxAge is how long a patient's entry is kept after its last update (0: for ever).
	MaxAge time.Duration
	Logger zerolog.Logger
	// Now is the clock; tests pass a fixed one.
	Now func() time.Time
}

// Stage applies raw ADT records to the demographics store and answers lookups. Run applies;
// after it returns (cancelled, or failed) it may be called again, but not while it runs.
// Enrich, Lookup and Status are safe for concurrent use, before, while and after it runs.
type Stage struct {
	q    *queue.Queue
	opts Options
	log  zerolog.Logger

	mu      sync.Mutex
	kv      jetstream.KeyValue
	raw     jetstream.Stream
	started bool // Run has opened the bucket and the consumer (at least once)
	running bool // Run is running
	// downSince is when Run last returned, or when the stage was built (monotonic clock).
	downSince time.Time
	applied   uint64        // every ADT record at or below this raw sequence has been applied
	changed   chan struct{} // closed and replaced whenever applied, started or running changes
	status    Status

	testHookApply func(data []byte) // tests only: called before each record is applied
}

// Status is the stage's health for the status page.
type Status struct {
	// Running says whether Run is running now: started at StartedAt, or last stopped
	// (returned) at StoppedAt. A stage that is not running applies nothing; when it failed,
	// LastError says why.
	Running   bool      `json:"running"`
	StartedAt time.Time `json:"started_at,omitzero"`
	StoppedAt time.Time `json:"stopped_at,omitzero"`
	// Applied counts ADT records applied to the store. Every ADT record at or below the raw
	// stream sequence AppliedSeq has been applied or skipped, the last at LastAppliedAt.
	Applied       uint64    `json:"applied"`
	AppliedSeq    uint64    `json:"applied_seq"`
	LastAppliedAt time.Time `json:"last_applied_at,omitzero"`
	// Pending is the lag: ADT records in the raw stream not yet applied or skipped, as the
	// stage last saw it (on each delivery, and about every second when idle, while running).
	Pending uint64 `json:"pending"`
	// Skipped counts ADT records that can never be applied, so were acknowledged without
	// effect; the last one's reason (never patient data), raw sequence and time follow.
	Skipped        uint64    `json:"skipped"`
	LastSkipReason string    `json:"last_skip_reason,omitempty"`
	LastSkippedSeq uint64    `json:"last_skipped_seq,omitempty"`
	LastSkippedAt  time.Time `json:"last_skipped_at,omitzero"`
	// Failures counts attempts that failed because the store was unavailable; each record is
	// retried until it is applied. RetryingSeq is the raw sequence of the record being
	// retried now (0: none), failing since RetryingSince: every later record waits for it.
	Failures      uint64    `json:"failures"`
	RetryingSeq   uint64    `json:"retrying_seq,omitempty"`
	RetryingSince time.Time `json:"retrying_since,omitzero"`
	// LastError is the stage's last error and when it happened.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// UnreadableEntries counts reads of store entries that could not be decoded; such an
	// entry enriches nothing, and updates to its patient are skipped.
	UnreadableEntries uint64 `json:"unreadable_entries"`

	// Enriched counts incidents that Enrich filled something in for. WaitTimeouts counts
	// Enrich calls that gave up waiting for the stage to catch up (EnrichWait).
	// WaitsSkippedNotRunning counts Enrich calls that did not wait, or stopped waiting,
	// because the stage was not running (see Options.DownWait): they enriched from the store
	// as it was.
	Enriched               uint64 `json:"enriched"`
	WaitTimeouts           uint64 `json:"wait_timeouts"`
	WaitsSkippedNotRunning uint64 `json:"waits_skipped_not_running"`
	// AmbiguousLookups counts patients not enriched because their local id names more than
	// one patient (ErrAmbiguous).
	AmbiguousLookups uint64 `json:"ambiguous_lookups"`
}

// New builds a stage. It does no I/O; Run opens the bucket and the consumer.
func New(q *queue.Queue, o Options) *Stage {
	if o.Source == "" {
		o.Source = "epr"
	}
	if o.EnrichWait == 0 {
		o.EnrichWait = 5 * time.Second
	}
	if o.DownWait == 0 {
		o.DownWait = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Stage{q: q, opts: o, log: o.Logger, changed: make(chan struct{}), downSince: time.Now()}
}

const consumerName = "patients"

// Run applies ADT records, in raw stream order, until ctx is cancelled. A record that cannot
// be applied now (ErrStoreUnavailable) is retried, with backoff, before any later one, so the
// store never applies updates out of order. A record that can never be applied (content that
// does not read as a supported ADT message, an unreadable stored entry, a bug) is skipped,
// counted and acknowledged, so that it cannot hold up the records behind it.
func (s *Stage) Run(ctx context.Context) (err error) {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrAlreadyRunning
	}
	s.running = true
	s.status.Running, s.status.StartedAt = true, s.opts.Now().UTC()
	s.signalLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.running, s.downSince = false, time.Now()
		s.status.Running, s.status.StoppedAt = false, s.opts.Now().UTC()
		if err != nil && ctx.Err() == nil {
			s.setErrorLocked(err)
		}
		s.signalLocked()
	}()
	kv, err := s.q.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "demographics from the EPR's ADT messages, keyed by hashed identifiers",
		History:     1,
		TTL:         s.opts.MaxAge,
	})
	if err != nil {
		return err
	}
	raw, err := s.q.JetStream().Stream(ctx, queue.RawStream)
	if err != nil {
		return fmt.Errorf("opening raw stream: %w", err)
	}
	cons, err := s.q.Consumer(ctx, queue.RawStream, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "applies ADT records to the demographics store",
		FilterSubject: queue.RawSubject(ingest.KindADT, "*", "*"),
		AckPolicy:     jetstream.AckExplicitPolicy,
		// Short, because applying one record is a few key-value writes, and because a record
		// that was being applied when the gateway was killed comes back only after AckWait:
		// until then incidents that name its patient wait for it (mllp.enrich_wait, 5s), so
		// it must come back sooner than that. Applying it twice is harmless.
		AckWait:    3 * time.Second,
		MaxDeliver: -1,
		// One at a time: updates to a patient must be applied in the order they were sent.
		MaxAckPending: 1,
	})
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading patients consumer: %w", err)
	}
	s.mu.Lock()
	s.kv, s.raw, s.started = kv, raw, true
	s.applied = max(s.applied, info.AckFloor.Stream)
	s.status.AppliedSeq = s.applied
	s.status.Pending = info.NumPending + uint64(info.NumAckPending)
	s.signalLocked()
	s.mu.Unlock()

	for ctx.Err() == nil {
		batch, err := cons.Fetch(64, jetstream.FetchMaxWait(time.Second))
		if err := queue.CheckConsumerGone(ctx, cons, err); err != nil {
			// Fetching again cannot mend it; returning lets the stage be started again,
			// which creates the consumer anew.
			return fmt.Errorf("ADT records: %w", err)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.mu.Lock()
				s.setErrorLocked(fmt.Errorf("fetching ADT records: %w", err))
				s.mu.Unlock()
				s.log.Warn().Err(err).Msg("fetching ADT records failed; retrying")
				_ = backoff.Sleep(ctx, time.Second)
			}
			continue
		}
		delivered := false
		for m := range batch.Messages() {
			delivered = true
			if ctx.Err() != nil {
				_ = m.Nak()
				continue
			}
			s.handle(ctx, m)
		}
		if err := queue.CheckConsumerGone(ctx, cons, batch.Error()); err != nil {
			return fmt.Errorf("ADT records: %w", err)
		}
		if !delivered && ctx.Err() == nil {
			// Idle (or waiting to retry): a cheap request keeps Status.Pending true.
			if info, err := cons.Info(ctx); err == nil {
				s.mu.Lock()
				s.status.Pending = info.NumPending + uint64(info.NumAckPending)
				s.mu.Unlock()
			}
		}
	}
	return nil
}

// handle applies one delivered record, and acknowledges it unless it must be retried.
func (s *Stage) handle(ctx context.Context, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		// Not from JetStream's consumer API, so there is nothing to retry: drop it.
		s.skipped(0, "delivery without JetStream metadata")
		_ = m.Term()
		return
	}
	seq := md.Sequence.Stream
	s.mu.Lock()
	s.status.Pending = md.NumPending + 1 // those after it, and itself
	s.mu.Unlock()
	err = s.applySafely(ctx, m.Data(), seq)
	switch {
	case err == nil:
		s.mu.Lock()
		s.status.RetryingSeq, s.status.RetryingSince = 0, time.Time{}
		s.mu.Unlock()
	case ctx.Err() != nil:
		_ = m.Nak()
		return
	case errors.Is(err, ErrStoreUnavailable):
		// Cannot apply now: retried before any later record, so that updates stay in order.
		delay := retryDelay(md.NumDelivered)
		s.mu.Lock()
		s.status.Failures++
		s.setErrorLocked(err)
		if s.status.RetryingSeq != seq {
			s.status.RetryingSeq, s.status.RetryingSince = seq, s.opts.Now().UTC()
		}
		s.mu.Unlock()
		s.log.Warn().Err(err).Uint64("seq", seq).Uint64("deliveries", md.NumDelivered).Dur("retry_in", delay).
			Msg("applying ADT record failed; will retry")
		_ = m.NakWithDelay(delay)
		return
	default:
		// Can never apply: retrying would stop every later record behind this one.
		reason := skipReason(err)
		s.skipped(seq, reason)
		s.log.Warn().Uint64("seq", seq).Str("reason", reason).Msg("ADT record cannot be applied; skipped")
	}
	if err := m.DoubleAck(ctx); err != nil {
		// Not acknowledged: it will come again and be applied (or skipped) again, harmlessly.
		return
	}
	s.mu.Lock()
	s.status.Pending = md.NumPending
	s.mu.Unlock()
	s.advance(seq)
}

// retryBackoff is how long to wait before delivering a record again that has been delivered n
// times: 1s, doubling, at most 30s.
var retryBackoff = backoff.Backoff{Initial: time.Second, Max: 30 * time.Second}

func retryDelay(n uint64) time.Duration { return retryBackoff.Delay(int(min(n, 64))) }

func (s *Stage) skipped(seq uint64, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Skipped++
	s.status.LastSkipReason, s.status.LastSkippedSeq, s.status.LastSkippedAt = reason, seq, s.opts.Now().UTC()
	s.status.RetryingSeq, s.status.RetryingSince = 0, time.Time{}
}

func (s *Stage) setErrorLocked(err error) {
	s.status.LastError, s.status.LastErrorAt = err.Error(), s.opts.Now().UTC()
}

func (s *Stage) advance(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.applied {
		s.applied = seq
	}
	s.status.AppliedSeq = s.applied
	s.status.LastAppliedAt = s.opts.Now().UTC()
	s.signalLocked()
}

func (s *Stage) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Status returns a snapshot of the stage's health.
func (s *Stage) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}
