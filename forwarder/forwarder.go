// Package forwarder is the delivery stage: it takes mapped resources from the outbox to the
// national service. It owns the national API client, the classification of every answer, the
// retry schedule (no other layer retries) and the pauses for a refused key or an outage. It
// records every step in the delivery ledger, whose rules (package ledger) decide what a step
// does to the incident: an incident is POSTed once; once the national id is held every change
// is a PUT to it; a send whose outcome cannot be known is never blindly repeated.
package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/backoff"
	"github.com/psgw/psgw/ledger"
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
	// TaxonomyVersion is the version the payloads follow; at start the national service's
	// CapabilityStatement is checked for it.
	TaxonomyVersion int
	// Instance is this run of the gateway, as the ledger writes it into in-flight markers
	// (ledger.Options.Instance), and Alive says whether the gateway run named by another
	// marker is still running (docs/cluster.md, "Two gateways, one incident"). A send in
	// flight at a live other gateway is waited for, never judged interrupted. Nil Alive:
	// the gateway is alone on its store, and any marker not its own is a crash's.
	Instance string
	Alive    func(ctx context.Context, instance string) bool
}

// Forwarder consumes the outbox. Run it once; Status may be called at any time.
type Forwarder struct {
	cfg    Config
	q      *queue.Queue
	ledger *ledger.Ledger
	client *Client // nil: no national endpoint, events are held
	log    zerolog.Logger
	now    func() time.Time

	// pause is why delivery is paused: pauseNone, pauseAuth or pauseOutage.
	pause       atomic.Int32
	pauseReason atomic.Pointer[string]
	pausedAt    atomic.Int64
	// pauseMu guards resumeCh, which is closed when a pause ends and replaced when one
	// begins, so that every message waiting out the pause wakes together.
	pauseMu  sync.Mutex
	resumeCh chan struct{}
	// probeNow wakes the probe loop when a pause begins, so that its first probe does not
	// wait out an interval chosen before the pause.
	probeNow chan struct{}
	// keyChanged makes the probe loop probe at once: the key it would test has just changed.
	keyChanged chan struct{}
	// failStreak counts sends in a row that found the service unavailable; outageRounds
	// counts the outage pauses since the last delivery, which space the outage probes out.
	failStreak   atomic.Int32
	outageRounds atomic.Int32
	// ambStreak counts ambiguous answers in a row: each may leave an incident unknown, so a
	// shorter run of them pauses delivery (ambiguousStreak).
	ambStreak atomic.Int32
	// halfOpen is set when delivery resumes after an outage: until a send meets an answer
	// that is not "unavailable", sends go one at a time (canary holds the one), so a
	// service whose metadata answers while its writes fail costs one send per probe, and
	// one unknown at most, not a round of them.
	halfOpen atomic.Bool
	canary   chan struct{}
	// notBefore (Unix nanoseconds) is when the service's last "come back later" (a 429 or
	// 503 with Retry-After) ends. Retry-After speaks of the service, not of the one request:
	// until then no send goes out, so a rate limit costs one refused request per window
	// rather than one per queued incident (docs/delivery.md, "Retry-After").
	notBefore   atomic.Int64
	running     atomic.Bool
	delivered   atomic.Uint64
	lastSuccess atomic.Int64
}

// Why delivery is paused.
const (
	pauseNone int32 = iota
	// pauseAuth: the national service refused the subscription key; an operator must act.
	pauseAuth
	// pauseOutage: the national service is not answering (or only 502, 503, 504). Sending
	// more would spend every queued incident's attempts on an outage that is nobody's
	// fault but the service's, and delay the recovery behind long backoffs.
	pauseOutage
)

// outageStreak is how many sends in a row must find the service unavailable before delivery
// pauses for an outage: enough that the occasional failure among successes never trips it.
func (f *Forwarder) outageStreak() int32 { return int32(max(20, 2*f.cfg.Concurrency)) }

// ambiguousStreak is how many ambiguous answers in a row pause delivery. Each one may turn an
// incident unknown, a person's job, so the run is shorter than outageStreak; it is still long
// enough that scattered ambiguous answers among successes never trip it, and about what is in
// flight at once anyway when the service turns bad.
func (f *Forwarder) ambiguousStreak() int32 { return int32(max(5, f.cfg.Concurrency)) }

// unavailable reports whether an outcome says the service is not there or not working: no
// answer at all; 502, 503 or 504 (what a gateway in front of a service that is down answers);
// or any answer to a POST that cannot say whether it was stored (ambiguous: a service that
// stores and then fails every write would otherwise turn the whole queue unknown). A 500 to
// a PUT is the service answering that it failed on this request, not an outage: it breaks a
// run, so a service that keeps failing some payloads still has those incidents retried and,
// in the end, failed.
func unavailable(out Outcome) bool {
	if out.Class == ClassAmbiguous {
		return true
	}
	switch out.Status {
	case 0, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// New builds a forwarder. client may be nil when no national endpoint is configured.
func New(cfg Config, q *queue.Queue, l *ledger.Ledger, client *Client, log zerolog.Logger) *Forwarder {
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
	resumeCh := make(chan struct{})
	close(resumeCh) // not paused
	return &Forwarder{cfg: cfg, q: q, ledger: l, client: client, log: log, now: time.Now, resumeCh: resumeCh,
		probeNow: make(chan struct{}, 1), keyChanged: make(chan struct{}, 1), canary: make(chan struct{}, 1)}
}

// Status is the forwarder's state for the status page, the status API and metrics.
type Status struct {
	Enabled bool `json:"enabled"`
	Running bool `json:"running"`
	// Paused: the national service refused the subscription key. Readiness does not fail:
	// ingest still stores.
	Paused      bool   `json:"paused"`
	PauseReason string `json:"pause_reason,omitempty"`
	// Outage: the national service is not answering; delivery waits and probes it.
	Outage       bool      `json:"outage"`
	OutageReason string    `json:"outage_reason,omitempty"`
	OutageSince  time.Time `json:"outage_since,omitzero"`
	Delivered    uint64    `json:"delivered"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
}

// Status reports the forwarder's state.
func (f *Forwarder) Status() Status {
	kind := f.pause.Load()
	s := Status{Enabled: f.client != nil, Running: f.running.Load(), Paused: kind == pauseAuth,
		Outage: kind == pauseOutage, Delivered: f.delivered.Load()}
	if r := f.pauseReason.Load(); r != nil {
		switch kind {
		case pauseAuth:
			s.PauseReason = *r
		case pauseOutage:
			s.OutageReason = *r
			s.OutageSince = time.Unix(0, f.pausedAt.Load()).UTC()
		}
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
		AckWait:       f.ackWait(),
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
	f.checkAtStart(ctx)

	probeCtx, stopProbe := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { f.probeLoop(probeCtx) })
	// One incident is never sent concurrently with itself (its messages share a key), while
	// different incidents go in parallel; a slow incident holds up only its own.
	err = queue.Dispatch(ctx, cons, queue.DispatchOptions{
		Workers: f.cfg.Concurrency,
		Key:     queue.OutboxKey,
		// While paused, leave the outbox alone: nothing can be sent.
		Gate:    f.waitResumed,
		AckWait: f.ackWait(),
		Logger:  f.log,
	}, f.handle)
	stopProbe()
	wg.Wait()
	return err
}

// handle takes one outbox message to a decision. It acks only after the ledger holds the
// outcome, so a crash at any point leaves the message to be redelivered and re-judged.
// While delivery is paused by a refused key the message waits here, in memory, and is
// judged again once the key works: handing it back to JetStream would spend one of its
// deliveries on every probe interval, until the pause alone had failed it.
func (f *Forwarder) handle(ctx context.Context, m jetstream.Msg) {
	for f.handleOnce(ctx, m) {
		// queue.Dispatch reports m in progress meanwhile, so JetStream keeps it here.
		if f.waitResumed(ctx); ctx.Err() != nil {
			_ = m.NakWithDelay(queue.ShutdownNakDelay)
			return
		}
	}
}

// handleOnce judges m once. It returns true when m is still the gateway's and must wait for
// delivery to resume before it is judged again.
func (f *Forwarder) handleOnce(ctx context.Context, m jetstream.Msg) (waitForResume bool) {
	if ctx.Err() != nil {
		_ = m.NakWithDelay(queue.ShutdownNakDelay) // stopping: hand it back for the next start
		return false
	}
	env, err := queue.ReadOutboxEnvelope(m.Headers())
	if err != nil {
		f.unreadable(ctx, m, env, err)
		return false
	}
	o := ledger.Outgoing{RawSeq: env.RawSeq, Revision: env.Revision, PayloadHash: env.PayloadHash, Replay: env.Replay != ""}
	lkey := ledger.Key(env.Source, env.Key)
	log := f.log.With().Str("source", env.Source).Str("incident", env.Key).Logger()

	// The entry as read here is where the first write of a send starts from, so that a send
	// costs one read instead of three (each write re-reads only after a conflict).
	e, snap, err := f.readSettled(ctx, lkey)
	if err != nil {
		if ctx.Err() != nil {
			_ = m.NakWithDelay(queue.ShutdownNakDelay)
			return false
		}
		log.Warn().Err(err).Msg("ledger unreadable; will retry")
		_ = m.NakWithDelay(5 * time.Second)
		return false
	}
	switch e.Judge(o) {
	case ledger.Superseded, ledger.Settled:
		// A newer revision has its own outbox message, or this record's outcome is final.
		_ = m.Ack()
		return false
	case ledger.Unchanged:
		// Judged on a read that may be stale, which can show an older delivery of the same
		// payload where the entry now holds a PUT of another one in flight: the write judges
		// again on the entry as it is, and a delivered entry is written back unchanged so that
		// its compare-and-set confirms the read (issue 19).
		_, _, err := f.ledger.UpdateFrom(ctx, lkey, snap, func(e *ledger.Entry, _ bool) error {
			if e.Judge(o) != ledger.Unchanged {
				return errRaced
			}
			if e.State == ledger.StateDelivered {
				return ledger.ErrNoChangeIfCurrent
			}
			return e.NoteUnchanged(f.now().UTC())
		})
		if err != nil {
			f.judgeAgain(m, err, log)
			return false
		}
		_ = m.Ack()
		return false
	case ledger.AwaitsResolution:
		// An earlier POST may have created the event. Sending this revision as another POST
		// could duplicate it, so it waits for an operator to resolve the unknown send.
		_, _ = f.ledger.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error {
			e.NoteWaiting(f.now().UTC(), o.Revision)
			return nil
		})
		_ = m.Ack()
		return false
	case ledger.InterruptedPost:
		// Judged on a read that may be stale (a replicated bucket's reads can come from a
		// replica a write behind), so the write checks the marker is still the one judged.
		judged := e.InFlight
		if f.cfg.OnAmbiguousPost != "retry" {
			_, err := f.ledger.Update(context.WithoutCancel(ctx), lkey, func(e *ledger.Entry, _ bool) error {
				if !sameInFlight(e.InFlight, judged) {
					return errRaced
				}
				e.StoppedMidPost(f.now().UTC(), o.RawSeq, judged.PayloadHash)
				return nil
			})
			if err != nil {
				f.judgeAgain(m, err, log)
				return false
			}
			f.cfg.Metrics.Failed.WithLabelValues("unknown").Inc()
			_ = m.Ack()
			return false
		}
		_, snap, err = f.ledger.UpdateFrom(ctx, lkey, nil, func(e *ledger.Entry, _ bool) error {
			if !sameInFlight(e.InFlight, judged) {
				return errRaced
			}
			e.FlagPossibleDuplicate()
			return nil
		})
		if err != nil {
			f.judgeAgain(m, err, log)
			return false
		}
	}
	switch f.pause.Load() {
	case pauseAuth:
		f.hold(ctx, lkey)
		return true
	case pauseOutage:
		// It keeps its state (queued or retrying): nothing is wrong with the incident.
		return true
	}
	if f.halfOpen.Load() {
		release, wait := f.takeCanary(ctx)
		if wait {
			return true
		}
		if ctx.Err() != nil {
			_ = m.NakWithDelay(queue.ShutdownNakDelay)
			return false
		}
		defer release()
	}
	// A message fetched before the service said "come back later" waits here, held (and
	// reported in progress) rather than sent into the same refusal.
	if f.waitRetryAfter(ctx); ctx.Err() != nil {
		_ = m.NakWithDelay(queue.ShutdownNakDelay)
		return false
	}
	if e.NationalID == "" {
		o.SentAs = sentAs(m.Data()) // a POST: kept for the operator should its outcome be unknown
	}
	return f.send(ctx, m, lkey, snap, e.InFlight, o, log)
}

// takeCanary waits, after an outage, for the turn to send alone. It returns wait when
// delivery paused again meanwhile; otherwise release must be called after the send (it does
// nothing when the service answered another send first and half-open ended).
func (f *Forwarder) takeCanary(ctx context.Context) (release func(), wait bool) {
	select {
	case f.canary <- struct{}{}:
	case <-ctx.Done():
		return func() {}, false
	}
	if f.pause.Load() != pauseNone {
		<-f.canary
		return nil, true
	}
	if !f.halfOpen.Load() {
		<-f.canary
		return func() {}, false
	}
	return func() { <-f.canary }, false
}

// unreadable handles an outbox message whose envelope could not be read: it can never be sent
// as it is (its incident, revision or payload is not known for sure), so it is recorded
// against its incident where the envelope names one (failed, replayable), removed from the
// outbox and logged, rather than guessed past.
func (f *Forwarder) unreadable(ctx context.Context, m jetstream.Msg, env queue.OutboxEnvelope, err error) {
	var seq uint64
	if md, mdErr := m.Metadata(); mdErr == nil {
		seq = md.Sequence.Stream
	}
	if rerr := f.recordUnreadable(ctx, env, err); rerr != nil {
		f.log.Warn().Err(rerr).Uint64("seq", seq).Msg("could not record an unreadable outbox message in the ledger; will retry")
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	_ = m.Term()
	f.logUnreadable(env, seq, err)
}

// recordUnreadable marks the incident an unreadable outbox message names, if it names one,
// failed with the reason.
func (f *Forwarder) recordUnreadable(ctx context.Context, env queue.OutboxEnvelope, err error) error {
	if env.Source == "" || env.Key == "" {
		return nil
	}
	detail := "its outbox message was unreadable (" + err.Error() + ")"
	_, uerr := f.ledger.Update(context.WithoutCancel(ctx), ledger.Key(env.Source, env.Key), func(e *ledger.Entry, exists bool) error {
		if !exists {
			return ledger.ErrNoChange
		}
		e.Unreadable(f.now().UTC(), env.RawSeq, detail)
		return nil
	})
	return uerr
}

func (f *Forwarder) logUnreadable(env queue.OutboxEnvelope, seq uint64, err error) {
	f.log.Error().Err(err).Uint64("seq", seq).Str("source", env.Source).Str("incident", env.Key).
		Msg("outbox message with an unreadable envelope removed; its incident needs a replay")
}

// send makes one request for m and records its outcome. It returns true when the key was
// refused and m must wait for delivery to resume.
// judged is the in-flight marker the entry held when m was judged: a different one at the
// write that starts the send means another gateway started a send meanwhile.
func (f *Forwarder) send(ctx context.Context, m jetstream.Msg, lkey string, snap *ledger.Snapshot, judged *ledger.InFlight, o ledger.Outgoing, log zerolog.Logger) bool {
	now := f.now().UTC()
	startedAt := now // the in-flight marker's time, which the send's outcome is written over
	var nationalID string
	// Ledger writes around a send are not cancelled by shutdown: an in-flight marker written
	// but reported as failed would later read as a crash mid-POST.
	wctx, cancelWrite := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelWrite()
	_, snap, err := f.ledger.UpdateFrom(wctx, lkey, snap, func(e *ledger.Entry, _ bool) error {
		if !stillSend(e, o, judged) {
			return errRaced
		}
		nationalID = e.StartSend(now, o)
		return nil
	})
	if err != nil && !errors.Is(err, errRaced) {
		// The write's answer was lost (a cluster electing a leader) but it may be stored:
		// then the marker is this send's, and leaving it would strand the incident.
		var landed *ledger.Snapshot
		if landed, nationalID = f.markerLanded(wctx, lkey, now, o); landed != nil {
			snap, err = landed, nil
		} else {
			f.withdrawMarker(ctx, lkey, now, log)
		}
	}
	if err != nil {
		// errRaced: another gateway started a send of this incident between the read and
		// this write, and sending too could create it twice.
		f.judgeAgain(m, err, log)
		return false
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
	method := http.MethodPost
	if put {
		method = http.MethodPut
	}
	f.cfg.Metrics.Sends.WithLabelValues(method, out.Class.String()).Inc()
	f.noteAnswer(out)
	now = f.now().UTC()
	switch out.Class {
	case ClassDelivered:
		var receivedAt time.Time
		err := f.writeOutcome(ctx, lkey, snap, startedAt, func(e *ledger.Entry, _ bool) error {
			receivedAt = e.ReceivedAt
			e.Delivered(now, o, ledger.Answer{Put: put, NationalID: out.NationalID, Reference: out.Reference,
				Version: out.VersionID, Warnings: out.Warnings})
			return nil
		})
		if err != nil {
			// The service holds the event but the ledger does not say so: leave the message
			// unacked with InFlight set, so redelivery finds an ambiguous send rather than a
			// clean slate and cannot POST again.
			log.Error().Err(err).Msg("delivered but ledger write failed")
			return false
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
		f.settle(ctx, m, lkey, startedAt, func(e *ledger.Entry) { e.Reject(now, o.RawSeq, out.Detail) })
	case ClassAuth:
		f.pauseFor(pauseAuth, out.Detail)
		_, _ = f.ledger.Update(context.WithoutCancel(ctx), lkey, func(e *ledger.Entry, _ bool) error {
			e.KeyRefused(now, out.Detail, errPaused.Error()+": "+out.Detail)
			return nil
		})
		return true
	case ClassAmbiguous:
		if !put && f.cfg.OnAmbiguousPost != "retry" {
			f.cfg.Metrics.Failed.WithLabelValues("unknown").Inc()
			f.settle(ctx, m, lkey, startedAt, func(e *ledger.Entry) { e.AnswerLost(now, o.RawSeq, o.PayloadHash, out.Detail) })
			return false
		}
		// A POST resent after an ambiguous answer may now be held twice nationally.
		f.retry(ctx, m, lkey, startedAt, o.RawSeq, out, !put)
	case ClassTransient:
		f.retry(ctx, m, lkey, startedAt, o.RawSeq, out, false)
	}
	return false
}

// errNoEntry: the incident has no ledger entry, so there is no marker to withdraw.
var errNoEntry = errors.New("no ledger entry")

// withdrawMarker makes sure a marker this gateway wrote at startedAt for a send it gives up
// is not left in the ledger: its write's answer was lost, reads did not show it, and yet it
// may be stored (a read can be a write behind). Nothing was sent, so the marker must not be
// read later as a POST interrupted (the incident would end unknown: test/cluster, a node
// killed). Every try writes, so that its compare-and-set, not a possibly stale read, decides;
// it tries for up to a minute, as writeOutcome does.
func (f *Forwarder) withdrawMarker(ctx context.Context, lkey string, startedAt time.Time, log zerolog.Logger) {
	wctx := context.WithoutCancel(ctx)
	deadline := time.Now().Add(time.Minute)
	for {
		var found bool
		_, err := f.ledger.Update(wctx, lkey, func(e *ledger.Entry, exists bool) error {
			if !exists {
				return errNoEntry
			}
			found = e.SendNotMade(f.now().UTC(), startedAt)
			return nil
		})
		if err == nil || errors.Is(err, errNoEntry) {
			if found {
				log.Info().Msg("a send given up before its request was withdrawn from the ledger")
			}
			return
		}
		if time.Now().After(deadline) {
			log.Error().Err(err).Msg("a send given up before its request could not be withdrawn from the ledger; it may read as interrupted")
			return
		}
		time.Sleep(time.Second)
	}
}

// writeOutcome writes a send's outcome into the ledger, trying again for up to a minute while
// the store cannot take the write (a cluster electing a leader after a node is lost takes
// seconds). Only this gateway knows what the national service answered (for a delivery, the
// national id): were the write given up, the message's redelivery would find the POST's
// in-flight marker and the incident would end unknown although the service answered.
// It writes only over the send's own in-flight marker (written at startedAt): a write heard
// to fail may have been stored after all, and another replica may then have delivered a
// newer revision; written again over that, a delivery of revision 1 took the incident back
// to "queued" at national version 1 with nothing in the outbox to send (test/cluster, a node
// cut off). When the marker is gone, the outcome was recorded and nothing is written; but
// only once a compare-and-set has shown the entry read to be current (ledger.ErrNoChangeIfCurrent):
// a read a write behind, missing the marker, once had the outcome skipped, the message
// acked and the incident left "delivering" (or later "unknown") with its marker for good,
// though the national service held it (test/cluster runs 15 and 16, issue 19).
func (f *Forwarder) writeOutcome(ctx context.Context, lkey string, snap *ledger.Snapshot, startedAt time.Time, fn func(e *ledger.Entry, exists bool) error) error {
	wctx := context.WithoutCancel(ctx)
	deadline := time.Now().Add(time.Minute)
	pause := 250 * time.Millisecond
	var recorded bool
	own := func(e *ledger.Entry, exists bool) error {
		recorded = !e.Sending(startedAt)
		if recorded {
			return ledger.ErrNoChangeIfCurrent
		}
		return fn(e, exists)
	}
	for {
		_, _, err := f.ledger.UpdateFrom(wctx, lkey, snap, own)
		if err == nil && recorded {
			f.log.Info().Str("incident", lkey).Msg("send's outcome already recorded; not written again")
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		f.log.Warn().Err(err).Str("incident", lkey).Msg("send answered; ledger write failed, trying again")
		snap = nil // read afresh: the failed write may have been stored after all
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Second)
	}
}

// retry schedules the message again with backoff, or fails it when its attempts or age are
// used up. possibleDuplicate flags the incident as possibly held twice nationally.
func (f *Forwarder) retry(ctx context.Context, m jetstream.Msg, lkey string, startedAt time.Time, rawSeq uint64, out Outcome, possibleDuplicate bool) {
	now := f.now().UTC()
	var failed, superseded bool
	var e *ledger.Entry
	err := f.writeOutcome(ctx, lkey, nil, startedAt, func(entry *ledger.Entry, _ bool) error {
		e = entry
		if possibleDuplicate {
			e.FlagPossibleDuplicate()
		}
		if out.Status == http.StatusTooManyRequests && e.Attempts > 0 {
			// A rate limit is the service's load, not the incident's fault: it spends no
			// attempt, so a long storm cannot fail what it held back (national.max_age
			// still bounds it).
			e.Attempts--
		}
		superseded, failed = e.SendFailed(now, rawSeq, out.Detail, f.cfg.MaxAttempts, f.cfg.MaxAge)
		return nil
	})
	if err != nil || e == nil {
		// e is nil when the outcome was recorded already: the redelivery judges the entry.
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
	_ = m.NakWithDelay(f.backoff(e.Attempts, out.RetryAfter))
}

// backoff is exponential with full jitter, capped, and never shorter than Retry-After: the
// national service's word on when to come back is policy here, not the backoff's.
func (f *Forwarder) backoff(attempt int, retryAfter time.Duration) time.Duration {
	b := backoff.Backoff{Initial: f.cfg.BackoffInitial, Max: f.cfg.BackoffMax, Jitter: true}
	return max(b.Delay(attempt), retryAfter)
}

// settle records a final outcome with record (one of the ledger's settling transitions) and
// removes the message from the outbox.
func (f *Forwarder) settle(ctx context.Context, m jetstream.Msg, lkey string, startedAt time.Time, record func(e *ledger.Entry)) {
	err := f.writeOutcome(ctx, lkey, nil, startedAt, func(e *ledger.Entry, _ bool) error {
		record(e)
		return nil
	})
	if err != nil {
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	_ = m.Ack()
}

// hold records that the incident waits for delivery to resume.
func (f *Forwarder) hold(ctx context.Context, lkey string) {
	_, _ = f.ledger.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error {
		return e.Hold(f.now().UTC(), f.Status().PauseReason)
	})
}

// noteAnswer watches for an outage: a run of sends that find the service unavailable pauses
// delivery until a probe finds it answering again. Any other answer shows the service is
// there, whatever it said about the incident.
func (f *Forwarder) noteAnswer(out Outcome) {
	if out.RetryAfter > 0 && (out.Status == http.StatusTooManyRequests || out.Status == http.StatusServiceUnavailable) {
		// As the backoff does, the service's word is policy (parseRetryAfter caps it at a day).
		until := f.now().Add(out.RetryAfter).UnixNano()
		for {
			cur := f.notBefore.Load()
			if cur >= until || f.notBefore.CompareAndSwap(cur, until) {
				break
			}
		}
	}
	if out.Class == ClassDelivered {
		f.outageRounds.Store(0)
	}
	if !unavailable(out) {
		f.failStreak.Store(0)
		f.ambStreak.Store(0)
		f.halfOpen.Store(false)
		return
	}
	var amb int32
	if out.Class == ClassAmbiguous {
		amb = f.ambStreak.Add(1)
	} else {
		f.ambStreak.Store(0)
	}
	switch n := f.failStreak.Add(1); {
	case amb >= f.ambiguousStreak():
		f.pauseFor(pauseOutage, fmt.Sprintf("%d sends in a row got an answer that may hide a stored event (docs/delivery.md, \"Classification\"); the last: %s", amb, out.Detail))
	case n >= f.outageStreak():
		f.pauseFor(pauseOutage, fmt.Sprintf("%d sends in a row found the service unavailable (no answer, 502, 503 or 504, or an ambiguous answer); the last: %s", n, out.Detail))
	}
}

// pauseFor pauses delivery. A refused key outranks an outage: it is the one that needs an
// operator, and the page must say so.
func (f *Forwarder) pauseFor(kind int32, reason string) {
	f.pauseMu.Lock()
	defer f.pauseMu.Unlock()
	prev := f.pause.Load()
	if prev == pauseAuth && kind == pauseOutage {
		return
	}
	r := reason
	if kind == pauseAuth {
		r = errPaused.Error() + ": " + reason
	}
	f.pauseReason.Store(&r)
	if prev == kind {
		return
	}
	if prev == pauseNone {
		f.resumeCh = make(chan struct{})
		f.pausedAt.Store(f.now().UnixNano())
	}
	switch kind {
	case pauseAuth:
		f.cfg.Metrics.Paused.Set(1)
		f.cfg.Metrics.Outage.Set(0)
		f.log.Error().Str("reason", reason).Msg("national service refused the subscription key; delivery paused")
	case pauseOutage:
		f.outageRounds.Add(1)
		f.cfg.Metrics.Outage.Set(1)
		f.log.Warn().Str("reason", reason).Msg("national service unavailable; delivery waits, spending no attempts, and resumes when it answers")
	}
	// After the gauges, so that whoever sees the pause on the status API finds it in the
	// metrics too; before the probe is woken, which reads it.
	f.pause.Store(kind)
	select {
	case f.probeNow <- struct{}{}:
	default:
	}
}

// SetKey replaces the subscription key, as when an operator fixed or rotated the key file,
// and, if delivery is paused, probes the national service at once, so that a corrected key
// resumes delivery without waiting out a probe interval. A no-op without a national endpoint.
func (f *Forwarder) SetKey(key string) {
	if f.client == nil {
		return
	}
	f.client.SetKey(key)
	select {
	case f.keyChanged <- struct{}{}:
	default:
	}
}

func (f *Forwarder) resume() {
	f.pauseMu.Lock()
	defer f.pauseMu.Unlock()
	prev := f.pause.Load()
	switch prev {
	case pauseNone:
		return
	case pauseAuth:
		f.failStreak.Store(0)
	case pauseOutage:
		// Half-open, set before anyone can see the pause end: one send goes alone
		// (takeCanary), and if it fails the same way it pauses again at once, so a service
		// whose metadata answers while its writes fail costs one send per probe, not a
		// streak or a round of them.
		f.failStreak.Store(f.outageStreak() - 1)
		f.ambStreak.Store(f.ambiguousStreak() - 1)
		f.halfOpen.Store(true)
	}
	f.pause.Store(pauseNone)
	f.cfg.Metrics.Paused.Set(0)
	f.cfg.Metrics.Outage.Set(0)
	close(f.resumeCh) // last: a woken worker's delivery already finds the gauges at 0
	if prev == pauseAuth {
		f.log.Info().Msg("national service accepts the subscription key again; delivery resumed")
	} else {
		f.log.Info().Msg("national service answers again; delivery resumed")
	}
}

// waitResumed returns once delivery is not paused and the service's last Retry-After has
// passed, or ctx is done.
func (f *Forwarder) waitResumed(ctx context.Context) {
	f.pauseMu.Lock()
	ch := f.resumeCh
	f.pauseMu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
	f.waitRetryAfter(ctx)
}

// waitRetryAfter returns once the service's last Retry-After has passed, or ctx is done.
func (f *Forwarder) waitRetryAfter(ctx context.Context) {
	for ctx.Err() == nil {
		d := time.Duration(f.notBefore.Load() - f.now().UnixNano())
		if d <= 0 {
			return
		}
		_ = backoff.Sleep(ctx, d)
	}
}

// OutboxAckWait is the outbox consumer's AckWait: how long after a crash the messages the dead
// gateway held come back to the next one. It is short, whatever national.timeout is, because
// a send that takes longer is kept by heartbeats instead: queue.Dispatch reports every message
// it holds in progress three times per AckWait. Only held messages get them (at most
// queue.DispatchOptions.MaxHeld, 4 × national.concurrency), never the backlog queued behind,
// so the heartbeats cost the same with 100,000 incidents queued as with ten
// (docs/delivery.md, "Recovery after a crash").
const OutboxAckWait = 10 * time.Second

func (f *Forwarder) ackWait() time.Duration { return OutboxAckWait }

// checkAtStart asks for the national service's CapabilityStatement before the first send, so
// that a refused key pauses delivery (and shows on the page) at once rather than at the first
// incident, and a service that does not list the configured taxonomy version is reported.
// Anything else (no answer, a 5xx) is left to the sends themselves.
func (f *Forwarder) checkAtStart(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, min(f.cfg.Timeout, 10*time.Second))
	r := f.client.Probe(pctx)
	cancel()
	switch out := Classify(r, false); {
	case out.Class == ClassAuth:
		f.pauseFor(pauseAuth, out.Detail)
	case r.Status >= 200 && r.Status < 300 && f.cfg.TaxonomyVersion > 0 && !listsProfile(r.Body, f.cfg.TaxonomyVersion):
		f.log.Warn().Int("taxonomy_version", f.cfg.TaxonomyVersion).
			Msg("the national service's CapabilityStatement lists no AdverseEvent profile for the configured taxonomy version; it may refuse every event (check national.taxonomy_version)")
	}
}

// listsProfile reports whether a CapabilityStatement names an AdverseEvent profile of the
// given taxonomy version (its URL ends in "-<version>").
func listsProfile(body []byte, version int) bool {
	var cs struct {
		Rest []struct {
			Resource []struct {
				Type             string   `json:"type"`
				Profile          string   `json:"profile"`
				SupportedProfile []string `json:"supportedProfile"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if json.Unmarshal(body, &cs) != nil {
		return false
	}
	suffix := "-" + strconv.Itoa(version)
	for _, rest := range cs.Rest {
		for _, res := range rest.Resource {
			if res.Type != "AdverseEvent" {
				continue
			}
			for _, p := range append([]string{res.Profile}, res.SupportedProfile...) {
				if strings.HasSuffix(p, suffix) {
					return true
				}
			}
		}
	}
	return false
}

// probeLoop asks a paused forwarder's national service for its metadata on a timer and
// resumes delivery once it answers: every ProbeInterval for a refused key; for an outage
// from BackoffInitial, doubling with each outage since the last delivery, up to
// ProbeInterval (or BackoffMax, if smaller), so that a short outage ends quickly and a long
// one is not polled hard; and at once when SetKey changed the key.
func (f *Forwarder) probeLoop(ctx context.Context) {
	for {
		wait := f.cfg.ProbeInterval
		if f.pause.Load() == pauseOutage {
			wait = f.outageProbeWait()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.probeNow:
			t.Stop()
			continue
		case <-f.keyChanged:
			t.Stop()
		case <-t.C:
		}
		kind := f.pause.Load()
		if kind == pauseNone {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
		r := f.client.Probe(pctx)
		cancel()
		switch out := Classify(r, false); {
		case r.Status >= 200 && r.Status < 300:
			f.resume()
		case out.Class == ClassAuth && kind == pauseOutage:
			f.pauseFor(pauseAuth, out.Detail)
		}
	}
}

// outageProbeWait is the wait before the next probe of an outage.
func (f *Forwarder) outageProbeWait() time.Duration {
	limit := f.cfg.ProbeInterval
	if f.cfg.BackoffMax > 0 {
		limit = min(limit, f.cfg.BackoffMax)
	}
	b := backoff.Backoff{Initial: max(f.cfg.BackoffInitial, 100*time.Millisecond), Max: limit}
	return b.Delay(int(f.outageRounds.Load()))
}

// withID puts "id" first in a JSON object, for a PUT whose body must carry the target id.
func withID(payload []byte, id string) []byte {
	if len(payload) < 2 || payload[0] != '{' {
		return payload
	}
	quoted, _ := json.Marshal(id) // JSON's escaping, not Go's: they differ for some runes
	out := make([]byte, 0, len(payload)+len(quoted)+10)
	out = append(out, `{"id":`...)
	out = append(out, quoted...)
	if len(payload) > 2 {
		out = append(out, ',')
	}
	return append(out, payload[1:]...)
}
