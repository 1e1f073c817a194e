package ledger

import (
	"net/http"
	"time"
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
	// Replica is the gateway that made the step (config key replica), where several run
	// against one cluster (docs/cluster.md).
	Replica string `json:"replica,omitempty"`
}

// Entry is the ledger's record of one incident, stored as JSON in its bucket. The exported
// JSON fields up to History are the delivery record of docs/api.md; the rest are the
// gateway's bookkeeping. Its fields and their JSON names are what existing data directories
// hold: add to them, never rename one. The stages change an Entry only through its methods,
// inside Ledger.Update, so that every transition is written once, in this package.
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
	// Warnings are what the newest mapping did not use or fell back on (docs/mapping.md,
	// "Nothing dropped in silence"), replaced by every mapping, replays included.
	Warnings []Warning `json:"warnings,omitempty"`

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
	// UnknownSend is that POST: when it was sent and what an operator needs to find it in
	// LFPSE's own view of the organisation's submissions. Cleared once resolved.
	UnknownSend *InFlight `json:"unknown_send,omitempty"`
	// PossibleDuplicate marks an incident resent after an ambiguous POST.
	PossibleDuplicate bool      `json:"possible_duplicate,omitempty"`
	Redactions        int       `json:"redactions,omitempty"`
	FirstAttemptAt    time.Time `json:"first_attempt_at,omitzero"`
	ReceivedAt        time.Time `json:"received_at,omitzero"`
	UpdatedAt         time.Time `json:"updated_at,omitzero"`
	DeliveredAt       time.Time `json:"delivered_at,omitzero"`
	Reviewed          bool      `json:"reviewed,omitempty"`

	// replica and instance are the gateway changing the entry, set by the ledger before
	// an update's function runs: Note names the replica in history, StartSend the sender in
	// the in-flight marker.
	replica, instance string
}

// MaxWarnings bounds the warnings an entry keeps; the rest are counted in a last one.
const MaxWarnings = 100

// Warning is one thing the mapping of the incident's newest record did not use as sent: a
// field it did not know, a value it fell back on or left out. Field is the incident's JSON
// path and Message says what happened and why, naming the rule, never quoting free text or
// an identifier (the mapper's warnings are written so). Kind classifies it (fhir.WarningKind);
// Fallback marks the kinds that are a guess at what a value means: an "Other" answer, an
// organisation outside the ODS list, a local value taken as the LFPSE code it equals.
type Warning struct {
	Field    string `json:"field"`
	Message  string `json:"message"`
	Kind     string `json:"kind,omitempty"`
	Fallback bool   `json:"fallback,omitempty"`
}

func (w Warning) String() string {
	if w.Field == "" {
		return w.Message
	}
	return w.Field + ": " + w.Message
}

// Fallbacks counts the warnings that are fallbacks.
func Fallbacks(ws []Warning) int {
	n := 0
	for _, w := range ws {
		if w.Fallback {
			n++
		}
	}
	return n
}

// InFlight describes a send whose outcome is not yet known.
type InFlight struct {
	Method      string    `json:"method"`
	PayloadHash string    `json:"payload_hash"`
	RawSeq      uint64    `json:"raw_seq"`
	StartedAt   time.Time `json:"started_at"`
	Revision    int       `json:"revision,omitempty"`
	// Replica and Instance name the gateway process sending it (Instance is new at every
	// start), so that another replica can tell a send still in progress elsewhere from one
	// its sender died in (docs/cluster.md, "Two gateways, one incident"). Empty in markers
	// written before replicas existed: those read as the gateway's own.
	Replica  string `json:"replica,omitempty"`
	Instance string `json:"instance,omitempty"`
	SentAs
}

// SentAs is what a POST told the national service that lets a person find the event there:
// LFPSE's organisation view lists submissions by these. None of it identifies a patient.
type SentAs struct {
	// EventType is the incident's event type (incident, risk, outcome, good_care).
	EventType string `json:"event_type,omitempty"`
	// EventDate is the date (and time, if known) the event happened, as sent.
	EventDate string `json:"event_date,omitempty"`
	// Location is the ODS code of the organisation where it happened, as sent.
	Location string `json:"location,omitempty"`
}

// AwaitingResolution reports whether a POST of this incident had an unknown outcome that no
// operator has resolved yet. Until then nothing more may be POSTed for it.
func (e *Entry) AwaitingResolution() bool { return e.UnknownHash != "" && e.NationalID == "" }

// postInFlight reports whether a POST of the incident was sent and its answer not yet
// recorded: if the gateway stopped meanwhile, the national service may hold the event.
func (e *Entry) postInFlight() bool {
	return e.InFlight != nil && e.InFlight.Method == http.MethodPost && e.NationalID == ""
}

// Note appends a history entry and moves the entry to state.
func (e *Entry) Note(at time.Time, state State, detail, actor string) {
	e.State = state
	e.UpdatedAt = at
	e.History = append(e.History, HistoryEntry{At: at, State: state, Detail: detail, Actor: actor, Replica: e.replica})
	if len(e.History) > MaxHistory {
		e.History = append(e.History[:1], e.History[len(e.History)-MaxHistory+1:]...)
	}
}
