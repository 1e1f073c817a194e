// Package forwarder delivers mapped resources from the outbox to the national service. It
// owns the delivery ledger, the national API client, the classification of every answer, and
// the retry schedule: no other layer retries. An incident is POSTed once; once the national id
// is held every change is a PUT to it; a send whose outcome cannot be known is never blindly
// repeated.
package forwarder

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/queue"
)

// Config tunes delivery.
type Config struct {
	Concurrency     int
	MaxAttempts     int
	MaxAge          time.Duration
	BackoffInitial  time.Duration
	BackoffMax      time.Duration
	Timeout         time.Duration
	OnAmbiguousPost string // "hold" or "retry"
	// ProbeInterval is how often a paused forwarder checks whether the key works again.
	ProbeInterval time.Duration
	// Metrics receives the forwarder's instruments; nil creates unregistered ones.
	Metrics *Metrics
}

// Forwarder consumes the outbox. Run it once; Status may be called at any time.
type Forwarder struct {
	cfg    Config
	q      *queue.Queue
	ledger *Ledger
	client *Client // nil: no national endpoint, events are held
	log    zerolog.Logger
	now    func() time.Time

	paused      atomic.Bool
	pauseReason atomic.Pointer[string]
	resumed     chan struct{}
	running     atomic.Bool
	delivered   atomic.Uint64
	lastSuccess atomic.Int64
}

// New builds a forwarder. client may be nil when no national endpoint is configured.
func New(cfg Config, q *queue.Queue, ledger *Ledger, client *Client, log zerolog.Logger) *Forwarder {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 40 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Forwarder{cfg: cfg, q: q, ledger: ledger, client: client, log: log, now: time.Now, resumed: make(chan struct{}, 1)}
}

// Status is the forwarder's state for the status page, readiness and metrics.
type Status struct {
	Enabled     bool      `json:"enabled"`
	Running     bool      `json:"running"`
	Paused      bool      `json:"paused"`
	PauseReason string    `json:"pause_reason,omitempty"`
	Delivered   uint64    `json:"delivered"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// Status reports the forwarder's state.
func (f *Forwarder) Status() Status {
	s := Status{Enabled: f.client != nil, Running: f.running.Load(), Paused: f.paused.Load(), Delivered: f.delivered.Load()}
	if r := f.pauseReason.Load(); r != nil && s.Paused {
		s.PauseReason = *r
	}
	if t := f.lastSuccess.Load(); t != 0 {
		s.LastSuccess = time.Unix(0, t).UTC()
	}
	return s
}

// consumerName is the outbox's durable consumer.
const consumerName = "forwarder"

// Run delivers until ctx is cancelled. Without a national endpoint it does nothing: the
// outbox keeps every event until one is configured.
func (f *Forwarder) Run(ctx context.Context) error {
	if f.client == nil {
		<-ctx.Done()
		return nil
	}
	cons, err := f.q.Consumer(ctx, queue.OutboxStream, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "delivers mapped resources to the national service",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       3*f.cfg.Timeout + 30*time.Second,
		MaxDeliver:    f.maxDeliver(),
		MaxAckPending: 100000,
	})
	if err != nil {
		return err
	}
	stopAdvisories, err := f.watchMaxDeliveries(ctx)
	if err != nil {
		return err
	}
	defer stopAdvisories()
	f.running.Store(true)
	defer f.running.Store(false)

	shards := make([]chan jetstream.Msg, f.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range shards {
		shards[i] = make(chan jetstream.Msg, 1)
		wg.Go(func() {
			for m := range shards[i] {
				f.handle(ctx, m)
			}
		})
	}
	wg.Go(func() { f.probeLoop(ctx) })
	// Fetch in batches rather than a push-style iterator so that every message the gateway
	// holds is one it can hand back (Nak) on shutdown, instead of one that waits out AckWait.
	for ctx.Err() == nil {
		if f.paused.Load() {
			// Paused: leave the outbox alone instead of cycling messages through Nak, so no
			// delivery count is spent while the key is refused.
			select {
			case <-ctx.Done():
			case <-f.resumed:
			}
			continue
		}
		batch, err := cons.Fetch(f.cfg.Concurrency*2, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				f.log.Warn().Err(err).Msg("fetching from outbox failed; retrying")
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			// One incident always lands on the same shard, so it is never sent concurrently
			// with itself, while different incidents go in parallel.
			h := fnv.New32a()
			h.Write([]byte(m.Subject()))
			select {
			case shards[h.Sum32()%uint32(len(shards))] <- m:
			case <-ctx.Done():
				_ = m.NakWithDelay(queue.ShutdownNakDelay)
			}
		}
	}
	for _, s := range shards {
		close(s)
	}
	wg.Wait()
	return nil
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handle takes one outbox message to a decision. It acks only after the ledger holds the
// outcome, so a crash at any point leaves the message to be redelivered and re-judged.
func (f *Forwarder) handle(ctx context.Context, m jetstream.Msg) {
	if ctx.Err() != nil {
		_ = m.NakWithDelay(queue.ShutdownNakDelay) // stopping: hand it back for the next start
		return
	}
	h := m.Headers()
	source, key := h.Get(queue.HeaderSource), h.Get(queue.HeaderKey)
	rawSeq, _ := strconv.ParseUint(h.Get(queue.HeaderRawSeq), 10, 64)
	revision, _ := strconv.Atoi(h.Get(queue.HeaderRevision))
	payloadHash := h.Get(queue.HeaderHash)
	lkey := LedgerKey(source, key)
	log := f.log.With().Str("source", source).Str("incident", key).Logger()

	// The entry as read here is where the first write of a send starts from, so that a send
	// costs one read instead of three (each write re-reads only after a conflict).
	e, snap, err := f.ledger.read(ctx, lkey)
	if err != nil {
		log.Warn().Err(err).Msg("ledger unreadable; will retry")
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	switch {
	case e.RawSeq > rawSeq:
		_ = m.Ack() // superseded by a newer revision, which has its own outbox message
		return
	case e.NationalID != "" && e.DeliveredHash == payloadHash:
		if e.State != StateDelivered {
			_, _ = f.ledger.Update(ctx, lkey, func(e *Entry, _ bool) error {
				e.InFlight = nil
				e.Note(f.now().UTC(), StateDelivered, "unchanged payload; national service already holds it", "")
				return nil
			})
		}
		_ = m.Ack()
		return
	case isSettled(e.State) && e.RawSeq == rawSeq && h.Get(queue.HeaderReplay) == "":
		_ = m.Ack()
		return
	}
	if e.AwaitingResolution() && h.Get(queue.HeaderReplay) == "" {
		// An earlier POST may have created the event. Sending this revision as another POST
		// could duplicate it, so it waits for an operator to resolve the unknown send.
		_, _ = f.ledger.Update(ctx, lkey, func(e *Entry, _ bool) error {
			e.Note(f.now().UTC(), StateUnknown, "revision "+strconv.Itoa(revision)+" waits: an earlier POST's outcome is unknown", "")
			return nil
		})
		_ = m.Ack()
		return
	}
	if e.InFlight != nil && e.InFlight.Method == "POST" && e.NationalID == "" {
		if f.cfg.OnAmbiguousPost != "retry" {
			f.cfg.Metrics.Failed.WithLabelValues("unknown").Inc()
			inflightHash := e.InFlight.PayloadHash
			f.settle(ctx, m, lkey, rawSeq, StateUnknown, "the gateway stopped while a POST was in flight; the national service may hold the event. Resolve it with its national id or resend", func(e *Entry) {
				e.UnknownHash = inflightHash
			})
			return
		}
		_, snap, _ = f.ledger.update(ctx, lkey, nil, func(e *Entry, _ bool) error {
			e.PossibleDuplicate = true
			return nil
		})
	}
	if f.paused.Load() {
		f.hold(ctx, m, lkey)
		return
	}
	f.send(ctx, m, lkey, snap, rawSeq, revision, payloadHash, log)
}

func isSettled(s State) bool {
	switch s {
	case StateRejected, StateQuarantined, StateUnknown, StateFailed:
		return true
	}
	return false
}

func (f *Forwarder) send(ctx context.Context, m jetstream.Msg, lkey string, snap *snapshot, rawSeq uint64, revision int, payloadHash string, log zerolog.Logger) {
	now := f.now().UTC()
	var nationalID string
	// Ledger writes around a send are not cancelled by shutdown: an in-flight marker written
	// but reported as failed would later read as a crash mid-POST.
	wctx, cancelWrite := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelWrite()
	_, snap, err := f.ledger.update(wctx, lkey, snap, func(e *Entry, _ bool) error {
		nationalID = e.NationalID
		method := "POST"
		if nationalID != "" {
			method = "PUT"
		}
		e.Attempts++
		if e.FirstAttemptAt.IsZero() {
			e.FirstAttemptAt = now
		}
		e.InFlight = &InFlight{Method: method, PayloadHash: payloadHash, RawSeq: rawSeq, StartedAt: now}
		e.State, e.UpdatedAt = StateDelivering, now
		return nil
	})
	if err != nil {
		log.Warn().Err(err).Msg("ledger write failed before send; will retry")
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	body := m.Data()
	put := nationalID != ""
	if put {
		body = withID(body, nationalID)
	}
	// A send once started is finished even when the gateway is stopping: abandoning it would
	// turn a clean shutdown into an ambiguous POST.
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
	out := Classify(f.client.Send(sendCtx, nationalID, body), put)
	cancel()
	method := "POST"
	if put {
		method = "PUT"
	}
	f.cfg.Metrics.Sends.WithLabelValues(method, out.Class.String()).Inc()
	now = f.now().UTC()
	switch out.Class {
	case ClassDelivered:
		var receivedAt time.Time
		_, _, err := f.ledger.update(context.WithoutCancel(ctx), lkey, snap, func(e *Entry, _ bool) error {
			receivedAt = e.ReceivedAt
			if !put {
				e.NationalID = out.NationalID
			}
			if out.Reference != "" {
				e.NationalReference = out.Reference
			}
			if out.VersionID != "" {
				e.NationalVersion = out.VersionID
			}
			e.InFlight = nil
			e.DeliveredHash, e.DeliveredRevision, e.DeliveredAt = payloadHash, revision, now
			e.LastError = ""
			detail := "POST created national id " + e.NationalID
			if put {
				detail = "PUT amended national id " + e.NationalID
			}
			if len(out.Warnings) > 0 {
				detail += "; warnings: " + joinMax(out.Warnings, 1000)
			}
			if e.RawSeq > rawSeq {
				// A newer revision was mapped while this one was in flight; it is queued.
				e.Note(now, StateQueued, detail+" (revision "+strconv.Itoa(revision)+"); a newer revision is queued", "")
				return nil
			}
			e.Note(now, StateDelivered, detail, "")
			return nil
		})
		if err != nil {
			// The service holds the event but the ledger does not say so: leave the message
			// unacked with InFlight set, so redelivery finds an ambiguous send rather than a
			// clean slate and cannot POST again.
			log.Error().Err(err).Msg("delivered but ledger write failed")
			return
		}
		f.delivered.Add(1)
		f.lastSuccess.Store(now.UnixNano())
		f.cfg.Metrics.Delivered.WithLabelValues(method).Inc()
		if !receivedAt.IsZero() {
			f.cfg.Metrics.Latency.Observe(now.Sub(receivedAt).Seconds())
		}
		_ = m.Ack()
	case ClassRejected:
		f.cfg.Metrics.Failed.WithLabelValues("rejected").Inc()
		f.settle(ctx, m, lkey, rawSeq, StateRejected, out.Detail, func(e *Entry) { e.LastError = out.Detail })
	case ClassAuth:
		f.pause(out.Detail)
		_, _ = f.ledger.Update(context.WithoutCancel(ctx), lkey, func(e *Entry, _ bool) error {
			e.Attempts-- // an auth failure is the gateway's problem, not the event's
			e.InFlight = nil
			e.LastError = out.Detail
			e.Note(now, StateHeld, errPaused.Error()+": "+out.Detail, "")
			return nil
		})
		_ = m.NakWithDelay(f.cfg.ProbeInterval)
	case ClassAmbiguous:
		if !put && f.cfg.OnAmbiguousPost != "retry" {
			f.cfg.Metrics.Failed.WithLabelValues("unknown").Inc()
			f.settle(ctx, m, lkey, rawSeq, StateUnknown, out.Detail+"; the national service may hold the event. Resolve it with its national id or resend", func(e *Entry) {
				e.LastError = out.Detail
				e.UnknownHash = payloadHash
			})
			return
		}
		if !put {
			f.retry(ctx, m, lkey, rawSeq, out, func(e *Entry) { e.PossibleDuplicate = true })
			return
		}
		f.retry(ctx, m, lkey, rawSeq, out, nil)
	case ClassTransient:
		f.retry(ctx, m, lkey, rawSeq, out, nil)
	}
}

// retry schedules the message again with backoff, or fails it when its attempts or age are
// used up.
func (f *Forwarder) retry(ctx context.Context, m jetstream.Msg, lkey string, rawSeq uint64, out Outcome, mark func(*Entry)) {
	now := f.now().UTC()
	var failed, superseded bool
	var attempts int
	_, err := f.ledger.Update(context.WithoutCancel(ctx), lkey, func(e *Entry, _ bool) error {
		if mark != nil {
			mark(e)
		}
		e.InFlight = nil
		if superseded = e.RawSeq > rawSeq; superseded {
			return nil // the newer revision's own message carries on
		}
		e.LastError = out.Detail
		attempts = e.Attempts
		failed = e.Attempts >= f.cfg.MaxAttempts || (f.cfg.MaxAge > 0 && now.Sub(e.FirstAttemptAt) > f.cfg.MaxAge)
		if failed {
			e.Note(now, StateFailed, "retries used up after "+strconv.Itoa(e.Attempts)+" attempts: "+out.Detail, "")
		} else {
			e.Note(now, StateRetrying, out.Detail, "")
		}
		return nil
	})
	if err != nil {
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	if failed {
		f.cfg.Metrics.Failed.WithLabelValues("exhausted").Inc()
	}
	if failed || superseded {
		_ = m.Term()
		return
	}
	f.cfg.Metrics.Retries.Inc()
	_ = m.NakWithDelay(f.backoff(attempts, out.RetryAfter))
}

// backoff is exponential with full jitter, capped, and never shorter than Retry-After.
func (f *Forwarder) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceil := f.cfg.BackoffInitial
	for i := 1; i < attempt && ceil < f.cfg.BackoffMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, f.cfg.BackoffMax)
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	return max(d, retryAfter)
}

// settle puts the incident in a final state and removes its message from the outbox.
func (f *Forwarder) settle(ctx context.Context, m jetstream.Msg, lkey string, rawSeq uint64, st State, detail string, mark func(*Entry)) {
	_, err := f.ledger.Update(context.WithoutCancel(ctx), lkey, func(e *Entry, _ bool) error {
		if mark != nil {
			mark(e)
		}
		e.InFlight = nil
		if e.RawSeq > rawSeq && st != StateUnknown {
			// A newer revision is queued: this outcome is history, not the incident's state.
			e.Note(f.now().UTC(), e.State, "older revision "+string(st)+": "+detail, "")
			return nil
		}
		e.Note(f.now().UTC(), st, detail, "")
		return nil
	})
	if err != nil {
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	_ = m.Ack()
}

func (f *Forwarder) hold(ctx context.Context, m jetstream.Msg, lkey string) {
	_, _ = f.ledger.Update(ctx, lkey, func(e *Entry, _ bool) error {
		if e.State == StateHeld {
			return ErrNoChange
		}
		e.Note(f.now().UTC(), StateHeld, f.Status().PauseReason, "")
		return nil
	})
	_ = m.NakWithDelay(f.cfg.ProbeInterval)
}

func (f *Forwarder) pause(reason string) {
	r := errPaused.Error() + ": " + reason
	f.pauseReason.Store(&r)
	if !f.paused.Swap(true) {
		f.cfg.Metrics.Paused.Set(1)
		f.log.Error().Str("reason", reason).Msg("national service refused the subscription key; delivery paused")
	}
}

// probeLoop checks a paused forwarder's key on a timer and resumes delivery once it works.
func (f *Forwarder) probeLoop(ctx context.Context) {
	t := time.NewTicker(f.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !f.paused.Load() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
		r := f.client.Probe(pctx)
		cancel()
		if r.Status >= 200 && r.Status < 300 {
			f.paused.Store(false)
			f.cfg.Metrics.Paused.Set(0)
			select {
			case f.resumed <- struct{}{}:
			default:
			}
			f.log.Info().Msg("national service accepts the subscription key again; delivery resumed")
		}
	}
}

// withID puts "id" first in a JSON object, for a PUT whose body must carry the target id.
func withID(payload []byte, id string) []byte {
	if len(payload) < 2 || payload[0] != '{' {
		return payload
	}
	out := make([]byte, 0, len(payload)+len(id)+10)
	out = append(out, `{"id":`...)
	out = strconv.AppendQuote(out, id)
	if len(payload) > 2 {
		out = append(out, ',')
	}
	return append(out, payload[1:]...)
}

func joinMax(items []string, limit int) string {
	s := ""
	for i, it := range items {
		if i > 0 {
			s += "; "
		}
		s += it
		if len(s) > limit {
			return s[:limit] + "…"
		}
	}
	return s
}
