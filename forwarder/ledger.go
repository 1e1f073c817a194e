package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/queue"
)

// State is where an incident is on its way to the national service (CONTRACT §2).
type State string

// The delivery states.
const (
	StateReceived    State = "received"
	StateQueued      State = "queued"
	StateDelivering  State = "delivering"
	StateDelivered   State = "delivered"
	StateRetrying    State = "retrying"
	StateRejected    State = "rejected"
	StateQuarantined State = "quarantined"
	StateHeld        State = "held"
	StateUnknown     State = "unknown"
	StateFailed      State = "failed"
)

// MaxHistory bounds an entry's history so that a flapping incident cannot grow its ledger entry
// without limit; the oldest entries after the first are dropped.
const MaxHistory = 100

// HistoryEntry is one step in an incident's life.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	State  State     `json:"state"`
	Detail string    `json:"detail,omitempty"`
	Actor  string    `json:"actor,omitempty"`
}

// Entry is the ledger's record of one incident. The exported JSON fields up to History are
// CONTRACT §2's delivery record; the rest are the gateway's bookkeeping.
type Entry struct {
	Source            string         `json:"source"`
	LocalID           string         `json:"local_id"`
	Revision          int            `json:"revision"`
	State             State          `json:"state"`
	NationalID        string         `json:"national_id"`
	NationalReference string         `json:"national_reference"`
	NationalVersion   string         `json:"national_version,omitempty"`
	Attempts          int            `json:"attempts"`
	LastError         string         `json:"last_error"`
	History           []HistoryEntry `json:"history"`

	// RawSeq is the raw stream sequence of the newest record mapped for this incident.
	RawSeq uint64 `json:"raw_seq,omitempty"`
	// ContentHash identifies the newest raw content, to spot re-sends without a revision.
	ContentHash string `json:"content_hash,omitempty"`
	// PayloadHash is the hash of the payload last put in the outbox.
	PayloadHash string `json:"payload_hash,omitempty"`
	// DeliveredHash and DeliveredRevision describe what the national service holds now.
	DeliveredHash     string `json:"delivered_hash,omitempty"`
	DeliveredRevision int    `json:"delivered_revision,omitempty"`
	// InFlight is set just before a send and cleared once its outcome is known. Finding it set
	// means the gateway stopped mid-send, so the outcome is unknown.
	InFlight *InFlight `json:"in_flight,omitempty"`
	// UnknownHash is the payload hash of the POST whose outcome is unknown, so that resolving
	// it as delivered records what the national service holds.
	UnknownHash string `json:"unknown_hash,omitempty"`
	// PossibleDuplicate marks an incident resent after an ambiguous POST.
	PossibleDuplicate bool      `json:"possible_duplicate,omitempty"`
	Redactions        int       `json:"redactions,omitempty"`
	FirstAttemptAt    time.Time `json:"first_attempt_at,omitzero"`
	ReceivedAt        time.Time `json:"received_at,omitzero"`
	UpdatedAt         time.Time `json:"updated_at,omitzero"`
	DeliveredAt       time.Time `json:"delivered_at,omitzero"`
	Reviewed          bool      `json:"reviewed,omitempty"`
}

// InFlight describes a send whose outcome is not yet known.
type InFlight struct {
	Method      string    `json:"method"`
	PayloadHash string    `json:"payload_hash"`
	RawSeq      uint64    `json:"raw_seq"`
	StartedAt   time.Time `json:"started_at"`
}

// AwaitingResolution reports whether a POST of this incident had an unknown outcome that no
// operator has resolved yet. Until then nothing more may be POSTed for it.
func (e *Entry) AwaitingResolution() bool { return e.UnknownHash != "" && e.NationalID == "" }

// Note appends a history entry and moves the entry to state.
func (e *Entry) Note(at time.Time, state State, detail, actor string) {
	e.State = state
	e.UpdatedAt = at
	e.History = append(e.History, HistoryEntry{At: at, State: state, Detail: detail, Actor: actor})
	if len(e.History) > MaxHistory {
		e.History = append(e.History[:1], e.History[len(e.History)-MaxHistory+1:]...)
	}
}

// Ledger is the delivery ledger: one JetStream KV entry per incident, keyed by
// "<source>.<incident key>". Updates are compare-and-set, so the mapper and the forwarder
// never overwrite each other's changes. Safe for concurrent use.
type Ledger struct {
	kv  jetstream.KeyValue
	now func() time.Time
	// absent, when set, says quickly that a key has no entry (see SetAbsentHint).
	absent func(key string) bool
}

// SetAbsentHint gives the ledger a quick way to tell that a key has no entry, without a read:
// absent(key) returns true only if the key had no entry a moment ago (the gateway's status
// index, which follows the ledger by a watch, answers it), and false whenever it does not
// know. It may miss a write of the last few milliseconds, so it is used only where that is
// harmless: Update starts a new key with a create, which fails and falls back to a read if the
// entry is there after all; LookupRecent is documented for its callers. Call it before the
// ledger is used concurrently.
func (l *Ledger) SetAbsentHint(absent func(key string) bool) { l.absent = absent }

// NewLedger wraps the bucket.
func NewLedger(kv jetstream.KeyValue, now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{kv: kv, now: now}
}

// ErrNotFound means the ledger has no entry for the incident.
var ErrNotFound = errors.New("no ledger entry")

// ErrNoChange, returned by an Update function, means there is nothing to write; Update then
// returns the entry as read, without error.
var ErrNoChange = errors.New("no change")

// LedgerKey is the bucket key of an incident.
func LedgerKey(source, incidentKey string) string { return source + "." + incidentKey }

// Get returns the entry for key.
func (l *Ledger) Get(ctx context.Context, key string) (*Entry, error) {
	kve, err := l.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("reading ledger entry: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return nil, fmt.Errorf("decoding ledger entry: %w", err)
	}
	return &e, nil
}

// LookupRecent is Get, except that a key the absence hint (SetAbsentHint) says has no entry is
// answered ErrNotFound without a read. An entry written in the last few milliseconds may be
// missed, so the answer is one Get could have given a moment earlier: use it only where that
// is an acceptable answer, such as spotting a record re-sent long after it was mapped.
func (l *Ledger) LookupRecent(ctx context.Context, key string) (*Entry, error) {
	if l.absent != nil && l.absent(key) {
		return nil, ErrNotFound
	}
	return l.Get(ctx, key)
}

// Update applies fn to the entry for key (a zero Entry with ok false when there is none) and
// writes the result with compare-and-set, retrying on conflict. fn may be called more than
// once and must not have side effects. Returning ErrNoChange skips the write.
func (l *Ledger) Update(ctx context.Context, key string, fn func(e *Entry, exists bool) error) (*Entry, error) {
	var snap *snapshot
	if l.absent != nil && l.absent(key) {
		// Most updates of a new incident's key are its first: try the create without reading.
		// If the entry is there after all the create fails as a conflict and update reads it.
		snap = &snapshot{}
	}
	e, _, err := l.update(ctx, key, snap, fn)
	return e, err
}

// snapshot is an entry as last read or written, with its revision. Passed to update, it
// stands in for the first read: if the entry changed since, the compare-and-set fails and
// update reads it afresh, so a stale snapshot costs a retry, never a lost change.
type snapshot struct {
	data   []byte
	rev    uint64
	exists bool
}

// read returns the entry for key with its snapshot, or a zero entry with exists false.
func (l *Ledger) read(ctx context.Context, key string) (*Entry, *snapshot, error) {
	kve, err := l.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return &Entry{}, &snapshot{}, nil
		}
		return nil, nil, fmt.Errorf("reading ledger entry: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return nil, nil, fmt.Errorf("decoding ledger entry: %w", err)
	}
	return &e, &snapshot{data: kve.Value(), rev: kve.Revision(), exists: true}, nil
}

// update is Update starting from snap (nil: read first), returning the snapshot of what it
// wrote, for the next update of the same entry.
func (l *Ledger) update(ctx context.Context, key string, snap *snapshot, fn func(e *Entry, exists bool) error) (*Entry, *snapshot, error) {
	for attempt := 0; ; attempt++ {
		var e Entry
		cur := snap
		snap = nil
		if cur == nil {
			kve, err := l.kv.Get(ctx, key)
			switch {
			case err == nil:
				cur = &snapshot{data: kve.Value(), rev: kve.Revision(), exists: true}
			case errors.Is(err, jetstream.ErrKeyNotFound):
				cur = &snapshot{}
			default:
				return nil, nil, fmt.Errorf("reading ledger entry: %w", err)
			}
		}
		if cur.exists {
			if err := json.Unmarshal(cur.data, &e); err != nil {
				return nil, nil, fmt.Errorf("decoding ledger entry: %w", err)
			}
		}
		if err := fn(&e, cur.exists); err != nil {
			if errors.Is(err, ErrNoChange) {
				return &e, cur, nil
			}
			return nil, nil, err
		}
		data, err := json.Marshal(&e)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding ledger entry: %w", err)
		}
		var rev uint64
		if cur.exists {
			rev, err = l.kv.Update(ctx, key, data, cur.rev)
		} else {
			rev, err = l.kv.Create(ctx, key, data)
		}
		if err == nil {
			return &e, &snapshot{data: data, rev: rev, exists: true}, nil
		}
		if !isConflict(err) || attempt >= 50 {
			return nil, nil, fmt.Errorf("writing ledger entry: %w", err)
		}
		if err := conflictPause(ctx, attempt); err != nil {
			return nil, nil, err
		}
	}
}

// conflictPause spreads writers that keep losing the compare-and-set on one entry: the first
// retries go at once, since a conflict is usually one other writer, and later ones wait a
// random few milliseconds so that a crowd of writers stops colliding in lockstep.
func conflictPause(ctx context.Context, attempt int) error {
	if attempt < 2 {
		return nil
	}
	if err := queue.Sleep(ctx, rand.N(time.Duration(min(attempt, 10))*time.Millisecond)); err != nil {
		return fmt.Errorf("writing ledger entry: %w", err)
	}
	return nil
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}

// List calls fn for every entry, in key order, until fn returns false.
func (l *Ledger) List(ctx context.Context, fn func(key string, e *Entry) bool) error {
	lister, err := l.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("listing ledger: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		e, err := l.Get(ctx, key)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return err
		}
		if !fn(key, e) {
			return nil
		}
	}
	return nil
}
