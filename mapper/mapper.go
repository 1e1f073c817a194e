// Package mapper is the stage between the raw stream and the outbox: it reads each raw
// incident record, enriches it, maps it to the LFPSE resource, runs the validation and privacy
// guard, records the outcome in the delivery ledger (whose rules, in package ledger, decide
// what it does to the incident), and puts valid payloads in the outbox. Because the raw record
// is kept, the same stage re-maps an incident on replay, so a fixed code map takes effect.
package mapper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/insights"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
)

// Enricher fills in what the incident system lacks (date of birth, sex, ethnicity) from the
// gateway's patient store (docs/mapping.md, "Demographics from the EPR"). It must not add
// identifiers to the incident; it returns those the store holds for the incident's patients
// (names, local ids, dates of birth), which the mapping removes from the free text and keeps
// nowhere. rawSeq is the incident's sequence in the raw stream: records stored before it (an
// ADT message sent just before the incident) are the ones the enrichment should already see.
// An error means "cannot enrich now": the record is retried later. The patients package
// implements it.
type Enricher interface {
	Enrich(ctx context.Context, in *fhir.Incident, rawSeq uint64) (privacy.Known, error)
}

// NoEnrichment is the Enricher used until a patient store is configured.
type NoEnrichment struct{}

// Enrich does nothing.
func (NoEnrichment) Enrich(context.Context, *fhir.Incident, uint64) (privacy.Known, error) {
	return privacy.Known{}, nil
}

// Facts is the learning store as the mapper writes it (insights.Store): one identifier-free
// fact per incident, from the record the ledger now holds (docs/insights.md). Delete and Keys
// serve RebuildInsights.
type Facts interface {
	Put(ctx context.Context, key string, f insights.Fact) error
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, fn func(key string)) error
}

// Mapper consumes raw incident records. Run it once.
type Mapper struct {
	q        *queue.Queue
	ledger   *ledger.Ledger
	builder  *fhir.Builder
	enricher Enricher
	facts    Facts
	// heldReason is set when no national endpoint is configured: mapped incidents wait in
	// the outbox in state held, with the reason.
	heldReason string
	workers    int
	metrics    *Metrics
	log        zerolog.Logger
	now        func() time.Time
}

// Options configure a Mapper.
type Options struct {
	Builder  *fhir.Builder
	Enricher Enricher
	// Facts, when set, gets the learning store's fact of every incident mapped.
	Facts Facts
	// HeldReason, when set, marks queued incidents as held with this reason (no national
	// endpoint configured): they wait in the outbox.
	HeldReason string
	// Workers is how many incidents are mapped in parallel (default 16). Mapping is mostly
	// waiting for two durable writes (the ledger and the outbox), not CPU, so more workers
	// than cores keep the writes overlapping (docs/performance.md).
	Workers int
	// Metrics, when set, count mapped, quarantined and redacted records.
	Metrics *Metrics
	Logger  zerolog.Logger
}

// New builds a mapper.
func New(q *queue.Queue, l *ledger.Ledger, o Options) *Mapper {
	if o.Enricher == nil {
		o.Enricher = NoEnrichment{}
	}
	if o.Workers < 1 {
		o.Workers = 16
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return &Mapper{q: q, ledger: l, builder: o.Builder, enricher: o.Enricher, facts: o.Facts,
		heldReason: o.HeldReason, workers: o.Workers, metrics: o.Metrics, log: o.Logger, now: time.Now}
}

const consumerName = "mapper"

// ackWait is the mapper consumer's AckWait.
const ackWait = 15 * time.Second

// Run maps records until ctx is cancelled.
func (mp *Mapper) Run(ctx context.Context) error {
	cons, err := mp.q.Consumer(ctx, queue.RawStream, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "maps raw incidents to LFPSE resources",
		FilterSubject: queue.RawSubject(ingest.KindIncident, "*", "*"),
		AckPolicy:     jetstream.AckExplicitPolicy,
		// A record being mapped when the gateway was killed shows as received until it comes
		// back after AckWait. While the gateway runs, Dispatch reports every record it holds
		// in progress, so a long enrichment wait or a queue of records behind one incident
		// does not get them delivered twice.
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
	})
	if err != nil {
		return err
	}
	// Records of one incident (one subject) are mapped one at a time in the order received,
	// while different incidents are mapped in parallel; one waiting for its enrichment holds
	// up only itself.
	return queue.Dispatch(ctx, cons, queue.DispatchOptions{
		Workers: mp.workers,
		MaxHeld: 256,
		AckWait: ackWait,
		Logger:  mp.log,
	}, mp.process)
}

// process maps one raw record and acknowledges it, or hands it back.
func (mp *Mapper) process(ctx context.Context, m jetstream.Msg) {
	if ctx.Err() != nil {
		_ = m.NakWithDelay(queue.ShutdownNakDelay)
		return
	}
	if err := mp.handle(ctx, m); err != nil {
		if ctx.Err() != nil {
			_ = m.NakWithDelay(queue.ShutdownNakDelay)
			return
		}
		mp.log.Warn().Err(err).Msg("mapping step failed; will retry")
		_ = m.NakWithDelay(2 * time.Second)
		return
	}
	_ = m.Ack()
}

func (mp *Mapper) handle(ctx context.Context, m jetstream.Msg) error {
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("reading message metadata: %w", err)
	}
	return mp.Map(ctx, Raw{Seq: md.Sequence.Stream, Header: m.Headers(), Data: m.Data()}, "")
}

// Raw is one raw record as read from the stream: its sequence, its envelope's headers and
// the record.
type Raw struct {
	Seq    uint64
	Header nats.Header
	Data   []byte
}

// Map maps one raw record and records the outcome. replay is empty for the normal path, or
// names the operator who asked for a replay, which forces a fresh outbox message.
func (mp *Mapper) Map(ctx context.Context, raw Raw, replay string) error {
	return mp.mapRecord(ctx, raw, replay, false)
}

// reading is one raw record read and mapped: the incident (nil when it could not be read),
// the payload or the problems, and what enrichment knew of its patients.
type reading struct {
	env      queue.RawEnvelope
	received time.Time
	in       *fhir.Incident
	prep     fhir.Prepared
	opt      fhir.PrepareOptions
	problems []fhir.Problem
}

// read reads and maps a raw record without recording anything. ok is false for a record with
// no source or key in its envelope, which nothing can be recorded against.
func (mp *Mapper) read(ctx context.Context, raw Raw) (r reading, ok bool, err error) {
	env, envErr := queue.ReadRawEnvelope(raw.Header)
	if env.Source == "" || env.Key == "" {
		return r, false, nil
	}
	r.env, r.received = env, env.ReceivedAt
	if r.received.IsZero() {
		r.received = mp.now()
	}
	received := r.received

	var in *fhir.Incident
	var problems []fhir.Problem
	switch {
	case envErr != nil:
		// Its envelope cannot be trusted: quarantined, naming the header, rather than guessed.
		problems = []fhir.Problem{{Message: "the stored record's envelope is unreadable: " + envErr.Error()}}
	default:
		// Every incident in the raw stream was read by its adapter, whose byte checks are not
		// repeated for the same bytes (docs/privacy.md, "Hostile input"); the source's code
		// maps are applied afresh, so a fixed map and a replay deliver what an older map could
		// not read (rederived).
		in, problems = fhir.DecodeAccepted(raw.Data, fhir.ParseOptions{Now: received, Codes: mp.builder.Codes})
		in, problems = rederived(env, in, problems)
	}
	var prep fhir.Prepared
	var opt fhir.PrepareOptions
	if len(problems) == 0 {
		known, err := mp.enricher.Enrich(ctx, in, raw.Seq)
		if err != nil {
			return r, false, fmt.Errorf("enriching incident: %w", err)
		}
		opt.Known = known
		prep = mp.builder.PrepareWith(in, opt)
		problems = prep.Problems
		if limit := mp.q.MaxPayload() - 64<<10; len(problems) == 0 && int64(len(prep.Payload)) > limit {
			// Publishing it would fail every time; say so instead of retrying for ever.
			problems = []fhir.Problem{{Message: fmt.Sprintf("the mapped resource is %d bytes, more than the %d the queue takes in one message; shorten the incident's free text", len(prep.Payload), limit)}}
			prep.Payload = nil
		}
	} else if in != nil {
		prep.Warnings = in.Warnings // the fields it did not know, beside why it cannot be read
	}
	r.in, r.prep, r.opt, r.problems = in, prep, opt, problems
	return r, true, nil
}

// mapRecord is Map; resend allows a replay of an incident waiting on an unknown POST.
func (mp *Mapper) mapRecord(ctx context.Context, raw Raw, replay string, resend bool) error {
	r, ok, err := mp.read(ctx, raw)
	if err != nil {
		return err
	}
	if !ok {
		// No incident to record it against: report it, since it can never be mapped.
		mp.log.Error().Uint64("seq", raw.Seq).Msg("raw record without source headers; skipped")
		return nil
	}
	env, received, in, prep, opt, problems := r.env, r.received, r.in, r.prep, r.opt, r.problems
	m := ledger.Mapping{Source: env.Source, LocalID: env.LocalID, ReceivedAt: received, RawSeq: raw.Seq, RecordID: env.RecordID,
		Redacted: prep.Redacted, Warnings: ledgerWarnings(prep.Warnings), TaxonomyVersion: mp.builder.Version,
		Replay: replay, Resend: resend, HeldReason: mp.heldReason}
	if len(problems) == 0 {
		sum := sha256.Sum256(prep.Payload)
		m.PayloadHash = hex.EncodeToString(sum[:16])
	} else {
		m.Problems = joinProblems(problems)
	}
	if in != nil {
		m.Revision = in.RevisionOr(0)
	}

	entry, res, err := mp.ledger.Map(ctx, ledger.Key(env.Source, env.Key), m)
	if err != nil {
		return err
	}
	if res.NewRecord {
		// Counted once per record, as the ledger counts them: a replay says the same again.
		mp.metrics.countWarnings(env.Source, prep.Warnings)
	}
	if res.Quarantined {
		mp.metrics.Quarantined.Inc()
	}
	if mp.facts != nil && entry.RawSeq == raw.Seq {
		// The ledger holds this record now (a new one, a replay, or one redelivered after a
		// crash before its fact was written): its fact is the incident's.
		if err := mp.facts.Put(ctx, ledger.Key(env.Source, env.Key), r.fact(entry)); err != nil {
			return err
		}
	}
	if !res.Publish {
		// Quarantined, superseded, waiting on an unknown send, or, in a store restored from a
		// backup, a record the backup's ledger had not seen (docs/architecture.md, "2. Map").
		return nil
	}
	msgID := "raw-" + strconv.FormatUint(raw.Seq, 10)
	if replay != "" {
		msgID += "-replay-" + strconv.FormatInt(mp.now().UnixNano(), 36)
	}
	payload := prep.Payload
	if payload == nil {
		// A redelivery found the ledger already written; map again to rebuild the payload,
		// with the same identifiers removed, or its hash would differ.
		if in == nil {
			return errors.New("cannot rebuild payload of an unparseable record")
		}
		payload = mp.builder.PrepareWith(in, opt).Payload
	}
	out := queue.OutboxEnvelope{Source: env.Source, Key: env.Key, RawSeq: raw.Seq, Revision: entry.Revision,
		PayloadHash: entry.PayloadHash, Replay: replay}
	if _, err := mp.q.PublishOutbox(ctx, out, msgID, payload); err != nil {
		return fmt.Errorf("publishing to outbox: %w", err)
	}
	if !res.Republish {
		mp.metrics.Mapped.Inc()
	}
	if res.NewRecord {
		mp.metrics.countRedactions(prep.Redacted)
	}
	return nil
}

// fact is the learning store's fact of the record, which entry now holds.
func (r reading) fact(entry *ledger.Entry) insights.Fact {
	f := insights.FactOf(r.env.Source, r.in, r.prep.Answers, r.received, string(entry.State))
	f.Revision = entry.Revision
	if !entry.DeliveredAt.IsZero() && entry.State == ledger.StateDelivered {
		f.Delivered = fhir.CalendarDate(entry.DeliveredAt).Format(time.DateOnly)
	}
	return f
}

// ledgerWarnings are the mapping's warnings as the delivery record keeps them.
func ledgerWarnings(ws []fhir.Warning) []ledger.Warning {
	if len(ws) == 0 {
		return nil
	}
	out := make([]ledger.Warning, len(ws))
	for i, w := range ws {
		out[i] = ledger.Warning{Field: w.Field, Message: w.Message, Kind: string(w.Kind), Fallback: w.Kind.Fallback()}
	}
	return out
}

// rederived decides, for a record read afresh as in with problems, what the mapper goes on
// with. The record is mapped whenever it reads as its envelope's incident without a problem,
// whatever reason it was stored with: a reason an adapter gave, or a problem the source's
// code maps then had (a word they lacked), may no longer hold, and a replay after the fix
// must deliver it. Otherwise a stored reject reason stands (what the adapter found reading
// the source record: a ragged CSV row is not an incident at all), and else the problems just
// found, after where the record was read (Origin).
func rederived(env queue.RawEnvelope, in *fhir.Incident, problems []fhir.Problem) (*fhir.Incident, []fhir.Problem) {
	sameIncident := in != nil && in.Source == env.Source && in.LocalID == env.LocalID
	switch {
	case sameIncident && len(problems) == 0:
		return in, nil
	case env.RejectReason != "":
		return nil, []fhir.Problem{{Message: env.RejectReason}}
	case env.Origin != "" && len(problems) > 0:
		problems = append([]fhir.Problem(nil), problems...)
		problems[0] = fhir.Problem{Message: env.Origin + ": " + problems[0].String()}
	}
	return in, problems
}

func joinProblems(ps []fhir.Problem) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}
