package patients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
	"github.com/psgw/psgw/queue"
)

// Options configure a Stage.
type Options struct {
	// Source is the EPR feed's source name. Local patient ids are keyed in its id space, and
	// incidents' local_patient_id values are looked up there.
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

// apply applies one raw ADT record. A record that does not parse is skipped: the adapter
// refused such messages, so it can only be a record from an older or foreign writer.
func (s *Stage) apply(ctx context.Context, data []byte, seq uint64) error {
	msg, err := hl7.Parse(data)
	var adt *hl7.ADT
	if err == nil {
		adt, err = hl7.ExtractADT(msg)
	}
	if err != nil {
		s.mu.Lock()
		s.status.Skipped++
		s.mu.Unlock()
		s.log.Warn().Err(err).Uint64("seq", seq).Msg("raw ADT record cannot be read; skipped")
		return nil
	}
	keys := s.keysFor(adt.Patient)
	rec, err := s.loadMerged(ctx, keys)
	if err != nil {
		return err
	}
	if adt.MergedFrom != nil {
		priorKeys := s.keysFor(*adt.MergedFrom)
		prior, err := s.loadMerged(ctx, priorKeys)
		if err != nil {
			return err
		}
		prior.addKeys(priorKeys...)
		rec.absorbMerged(prior)
	}
	at := adt.RecordedAt
	if adt.DateOfBirth != "" {
		rec.DateOfBirth = addFact(rec.DateOfBirth, adt.DateOfBirth, at)
	}
	if adt.Sex != "" {
		rec.Sex = addFact(rec.Sex, adt.Sex, at)
	}
	if adt.Ethnicity != "" {
		rec.Ethnicity = addFact(rec.Ethnicity, adt.Ethnicity, at)
	}
	switch {
	case adt.Discharged:
		rec.Location = addFact(rec.Location, "", at)
	case adt.Location != "":
		rec.Location = addFact(rec.Location, adt.Location, at)
	}
	rec.addKeys(keys...)
	rec.LastSeq = max(rec.LastSeq, seq)
	rec.UpdatedAt = s.opts.Now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	for _, k := range rec.Keys {
		if _, err := s.kv.Put(ctx, k, b); err != nil {
			return fmt.Errorf("writing patient entry: %w", err)
		}
	}
	s.mu.Lock()
	s.status.Applied++
	s.mu.Unlock()
	return nil
}

func (s *Stage) keysFor(p hl7.PatientIDs) []string {
	var keys []string
	if p.NHSNumber != "" {
		keys = append(keys, NHSKey(p.NHSNumber))
	}
	for _, l := range p.LocalIDs {
		keys = append(keys, LocalKey(s.opts.Source, l.ID))
	}
	return keys
}

// loadMerged reads the entries under keys and folds them into one: they are all the same
// patient, seen through different identifiers.
func (s *Stage) loadMerged(ctx context.Context, keys []string) (*Record, error) {
	out := &Record{}
	for _, k := range keys {
		r, err := s.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out.absorb(r)
		}
	}
	return out, nil
}

func (s *Stage) get(ctx context.Context, key string) (*Record, error) {
	s.mu.Lock()
	kv := s.kv
	s.mu.Unlock()
	if kv == nil {
		return nil, errors.New("demographics store not open yet")
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading patient entry: %w", err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("decoding patient entry: %w", err)
	}
	return &r, nil
}

// Status returns a snapshot of the stage's health.
func (s *Stage) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}
