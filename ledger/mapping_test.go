package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRecordMapping: the rules of docs/architecture.md "2. Map" and docs/delivery.md "No
// duplicates from re-sends", one transition at a time on an entry that holds revision 2 of
// an incident (raw sequence 10, record id r2).
func TestRecordMapping(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	held := func() Entry {
		e := Entry{Source: "datix", LocalID: "INC-1", Revision: 2, RawSeq: 10, ContentHash: "r2", PayloadHash: "h2"}
		e.Note(now.Add(-time.Hour), StateDelivered, "POST created national id n1", "")
		return e
	}
	valid := Mapping{Source: "datix", LocalID: "INC-1", RecordID: "r3", PayloadHash: "h3", TaxonomyVersion: 5}
	with := func(m Mapping, f func(*Mapping)) Mapping { f(&m); return m }
	tests := []struct {
		name      string
		entry     func() Entry
		exists    bool
		m         Mapping
		wantErr   error
		wantState State
		wantRev   int
		want      Mapped
		detail    string // in the last history entry
	}{
		{name: "a new incident is queued as revision 1", entry: func() Entry { return Entry{} },
			m: with(valid, func(m *Mapping) { m.RawSeq = 1 }), wantState: StateQueued, wantRev: 1,
			want: Mapped{Publish: true, NewRecord: true}, detail: "mapped to LFPSE taxonomy v5"},
		{name: "an older record redelivered changes nothing", entry: held, exists: true,
			m: with(valid, func(m *Mapping) { m.RawSeq = 9 }), wantErr: ErrNoChange, wantState: StateDelivered, wantRev: 2},
		{name: "the same record redelivered while queued is published again", entry: func() Entry {
			e := held()
			e.Note(now, StateQueued, "mapped", "")
			return e
		}, exists: true, m: with(valid, func(m *Mapping) { m.RawSeq = 10 }), wantErr: ErrNoChange, wantState: StateQueued, wantRev: 2,
			want: Mapped{Publish: true, Republish: true}},
		{name: "a re-send after the window changes nothing", entry: held, exists: true,
			m: with(valid, func(m *Mapping) { m.RawSeq, m.RecordID = 11, "r2" }), wantErr: ErrNoChange, wantState: StateDelivered, wantRev: 2},
		{name: "an older explicit revision is only noted", entry: held, exists: true,
			m: with(valid, func(m *Mapping) { m.RawSeq, m.Revision = 11, 1 }), wantState: StateDelivered, wantRev: 2,
			detail: "revision 1 ignored: revision 2 is newer"},
		{name: "a newer record without a revision is the next revision", entry: held, exists: true,
			m: with(valid, func(m *Mapping) { m.RawSeq = 11 }), wantState: StateQueued, wantRev: 3,
			want: Mapped{Publish: true, NewRecord: true}},
		{name: "a record that does not map is quarantined", entry: held, exists: true,
			m:         with(valid, func(m *Mapping) { m.RawSeq, m.PayloadHash, m.Problems = 11, "", "occurred_at: required" }),
			wantState: StateQuarantined, wantRev: 3, want: Mapped{Quarantined: true, NewRecord: true}, detail: "occurred_at: required"},
		{name: "with no endpoint it is held", entry: held, exists: true,
			m: with(valid, func(m *Mapping) { m.RawSeq, m.HeldReason = 11, "no national endpoint" }), wantState: StateHeld, wantRev: 3,
			want: Mapped{Publish: true, NewRecord: true}, detail: "no national endpoint"},
		{name: "a newer revision waits behind an unknown POST", entry: func() Entry {
			e := Entry{Source: "datix", LocalID: "INC-1", Revision: 1, RawSeq: 10, UnknownHash: "h1"}
			e.Note(now, StateUnknown, "lost response", "")
			return e
		}, exists: true, m: with(valid, func(m *Mapping) { m.RawSeq = 11 }), wantState: StateUnknown, wantRev: 2,
			want: Mapped{NewRecord: true}, detail: "waits until the earlier unknown send is resolved"},
		{name: "a replay of an unknown POST is refused", entry: func() Entry {
			e := Entry{Source: "datix", LocalID: "INC-1", Revision: 1, RawSeq: 10, UnknownHash: "h1"}
			e.Note(now, StateUnknown, "lost response", "")
			return e
		}, exists: true, m: with(valid, func(m *Mapping) { m.RawSeq, m.Replay = 10, "alice (operator)" }), wantErr: ErrAwaitingResolution,
			wantState: StateUnknown, wantRev: 1},
		{name: "a replay of a delivered incident queues it again", entry: held, exists: true,
			m: with(valid, func(m *Mapping) { m.RawSeq, m.Replay = 10, "alice (operator)" }), wantState: StateQueued, wantRev: 2,
			want: Mapped{Publish: true}, detail: "replayed: mapped to LFPSE taxonomy v5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.entry()
			got, err := e.RecordMapping(tc.m, tc.exists, now)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if e.State != tc.wantState || e.Revision != tc.wantRev {
				t.Errorf("got %s revision %d, want %s revision %d", e.State, e.Revision, tc.wantState, tc.wantRev)
			}
			if last := e.History[len(e.History)-1]; tc.detail != "" && !strings.Contains(last.Detail, tc.detail) {
				t.Errorf("got last history %q, want it to say %q", last.Detail, tc.detail)
			}
			if tc.m.Replay != "" && tc.wantErr == nil && e.History[len(e.History)-1].Actor != tc.m.Replay {
				t.Errorf("a replay's history names no actor: %+v", e.History[len(e.History)-1])
			}
		})
	}
}

// TestAccountsFor: the re-send rule the publisher asks before storing a record.
func TestAccountsFor(t *testing.T) {
	e := &Entry{Revision: 3, ContentHash: "datix.k.r3"}
	for _, tc := range []struct {
		id       string
		revision int
		want     bool
	}{
		{"datix.k.r3", 3, true},   // the newest, sent again
		{"datix.k.r2", 2, true},   // an older explicit revision
		{"datix.k.r4", 4, false},  // a newer one
		{"datix.k.hab", 0, false}, // without a revision, other content: an amendment
	} {
		if got := e.AccountsFor(tc.id, tc.revision); got != tc.want {
			t.Errorf("AccountsFor(%q, %d): got %v, want %v", tc.id, tc.revision, got, tc.want)
		}
	}
}
