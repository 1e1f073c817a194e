package patients

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
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
	// MaxAge is how long a patient's entry is kept after its last update (0: for ever).
	MaxAge time.Duration
	Logger zerolog.Logger
	// Now is the clock; tests pass a fixed one.
	Now func() time.Time
}

// Stage applies raw ADT records to the demographics store and answers lookups. Run it once;
// Enrich and Lookup are safe for concurrent use, before and while it runs.
type Stage struct {
	q    *queue.Queue
	opts Options
	log  zerolog.Logger

	mu      sync.Mutex
	kv      jetstream.KeyValue
	raw     jetstream.Stream
	started bool
	applied uint64        // every ADT record at or below this raw sequence has been applied
	changed chan struct{} // closed and replaced whenever applied or started changes
	status  Status
}

// Status is the stage's health for the status page.
type Status struct {
	Applied       uint64    `json:"applied"`
	Skipped       uint64    `json:"skipped"`
	Failures      uint64    `json:"failures"`
	AppliedSeq    uint64    `json:"applied_seq"`
	LastAppliedAt time.Time `json:"last_applied_at,omitzero"`
	Enriched      uint64    `json:"enriched"`
	WaitTimeouts  uint64    `json:"wait_timeouts"`
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
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Stage{q: q, opts: o, log: o.Logger, changed: make(chan struct{})}
}

const consumerName = "patients"

// Run applies ADT records, in raw stream order, until ctx is cancelled. A record that cannot
// be applied now (the bucket unavailable) is retried before any later one, so the store never
// applies updates out of order.
func (s *Stage) Run(ctx context.Context) error {
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
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
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
	s.signalLocked()
	s.mu.Unlock()

	for ctx.Err() == nil {
		batch, err := cons.Fetch(64, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("fetching ADT records failed; retrying")
				sleep(ctx, time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			if ctx.Err() != nil {
				_ = m.Nak()
				continue
			}
			md, err := m.Metadata()
			if err != nil {
				_ = m.Nak()
				continue
			}
			if err := s.apply(ctx, m.Data(), md.Sequence.Stream); err != nil {
				if ctx.Err() != nil {
					_ = m.Nak()
					continue
				}
				s.mu.Lock()
				s.status.Failures++
				s.mu.Unlock()
				s.log.Warn().Err(err).Uint64("seq", md.Sequence.Stream).Msg("applying ADT record failed; will retry")
				_ = m.NakWithDelay(time.Second)
				continue
			}
			if err := m.DoubleAck(ctx); err != nil {
				// Not acknowledged: it will come again and be applied again, harmlessly.
				continue
			}
			s.advance(md.Sequence.Stream)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
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
