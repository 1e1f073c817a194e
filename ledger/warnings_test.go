package ledger

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/test/wait"
)

// TestRecordMappingKeepsWarnings: every mapping replaces the entry's warnings (a replay
// after a code-map fix clears a fallback), a quarantined record keeps them beside its
// reason, and the history says how many there were, with the first few.
func TestRecordMappingKeepsWarnings(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ws := []Warning{
		{Field: "patients[0].physicalHarm", Message: "unknown field, ignored; did you mean physical_harm?", Kind: "unknown_field"},
		{Field: "reporter.role", Message: `value "Nurse" has no LFPSE code …`, Kind: "other", Fallback: true},
	}
	var e Entry
	if _, err := e.RecordMapping(Mapping{Source: "datix", LocalID: "INC-1", RawSeq: 1, RecordID: "r1", PayloadHash: "h1",
		TaxonomyVersion: 5, Warnings: ws}, false, now); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ws, e.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	want := "mapped to LFPSE taxonomy v5; 2 warnings (1 fallback): patients[0].physicalHarm: unknown field, ignored; did you mean physical_harm? | reporter.role: "
	if got := e.History[len(e.History)-1].Detail; !strings.HasPrefix(got, want) {
		t.Errorf("history detail: got %q, want it to start %q", got, want)
	}

	// A replay of the same record with a code map that now has the value: no warnings.
	if _, err := e.RecordMapping(Mapping{Source: "datix", LocalID: "INC-1", RawSeq: 1, RecordID: "r1", PayloadHash: "h2",
		TaxonomyVersion: 5, Replay: "op"}, true, now); err != nil {
		t.Fatal(err)
	}
	if len(e.Warnings) != 0 {
		t.Errorf("after a replay without warnings: got %v, want none", e.Warnings)
	}

	// A newer record that is quarantined keeps its warnings and its reason apart.
	if _, err := e.RecordMapping(Mapping{Source: "datix", LocalID: "INC-1", RawSeq: 2, RecordID: "r2",
		Problems: "location.service_area: value [11 characters, not shown] has no LFPSE code", Warnings: ws[:1]}, true, now); err != nil {
		t.Fatal(err)
	}
	if e.State != StateQuarantined || len(e.Warnings) != 1 || strings.Contains(e.LastError, "warning") {
		t.Errorf("quarantined: got state %s, warnings %v, last error %q", e.State, e.Warnings, e.LastError)
	}
	if got := e.History[len(e.History)-1].Detail; !strings.HasSuffix(got, "; 1 warning: patients[0].physicalHarm: unknown field, ignored; did you mean physical_harm?") {
		t.Errorf("quarantine history: got %q", got)
	}

	// Many warnings: the entry keeps MaxWarnings, the last counting the rest; the history
	// lists three.
	many := make([]Warning, MaxWarnings+20)
	for i := range many {
		many[i] = Warning{Field: fmt.Sprintf("extra_%d", i), Message: "unknown field, ignored", Kind: "unknown_field"}
	}
	if _, err := e.RecordMapping(Mapping{Source: "datix", LocalID: "INC-1", RawSeq: 3, RecordID: "r3", PayloadHash: "h3",
		TaxonomyVersion: 5, Warnings: many}, true, now); err != nil {
		t.Fatal(err)
	}
	if len(e.Warnings) != MaxWarnings || e.Warnings[MaxWarnings-1].Message != "21 more warnings not kept" {
		t.Errorf("got %d warnings, the last %v; want %d, the last counting 21 more", len(e.Warnings), e.Warnings[len(e.Warnings)-1], MaxWarnings)
	}
	if got := e.History[len(e.History)-1].Detail; !strings.HasSuffix(got, "extra_2: unknown field, ignored | and 117 more") {
		t.Errorf("history of many warnings: got %q", got)
	}
}

// TestRecordMappingRedactionsByKind: the history says what kind of identifier was removed,
// and the entry counts them all.
func TestRecordMappingRedactionsByKind(t *testing.T) {
	var c privacy.Counts
	c[privacy.KindNHSNumber], c[privacy.KindName] = 1, 2
	var e Entry
	if _, err := e.RecordMapping(Mapping{Source: "datix", LocalID: "INC-1", RawSeq: 1, RecordID: "r1", PayloadHash: "h1",
		TaxonomyVersion: 6, Redacted: c}, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := "mapped to LFPSE taxonomy v6; 3 identifiers redacted from free text (1 NHS number, 2 names)"
	if got := e.History[len(e.History)-1].Detail; got != want || e.Redactions != 3 {
		t.Errorf("got %q and %d redactions, want %q and 3", got, e.Redactions, want)
	}
}

// TestRevisionNeverWraps: a record without a revision after the largest revision a source
// may send keeps that revision (issue 15, item 7); it used to overflow, after which
// revision 2 looked newer.
func TestRevisionNeverWraps(t *testing.T) {
	now := time.Now().UTC()
	e := Entry{Source: "datix", LocalID: "INC-1", Revision: fhir.MaxRevision, RawSeq: 10, ContentHash: "r1"}
	e.Note(now, StateDelivered, "POST created national id n1", "")
	if _, err := e.RecordMapping(Mapping{Source: "datix", LocalID: "INC-1", RawSeq: 11, RecordID: "r2", PayloadHash: "h2"}, true, now); err != nil {
		t.Fatal(err)
	}
	if e.Revision != fhir.MaxRevision {
		t.Fatalf("revision after a record without one: got %d, want %d", e.Revision, fhir.MaxRevision)
	}
	if _, err := e.RecordMapping(Mapping{Source: "datix", LocalID: "INC-1", RawSeq: 12, RecordID: "r3", Revision: 2, PayloadHash: "h3"}, true, now); err != nil {
		t.Fatal(err)
	}
	if e.Revision != fhir.MaxRevision || !strings.Contains(e.History[len(e.History)-1].Detail, "revision 2 ignored") {
		t.Errorf("revision 2 after the largest: got revision %d, history %q; want it ignored", e.Revision, e.History[len(e.History)-1].Detail)
	}
}

// TestIndexKeepsWideRevisionsAndSourceCounts: the index keeps revisions beyond 32 bits (it
// truncated 2^33 to 0) and counts each source's incidents mapped with warnings and with
// fallbacks, read by a watch and by a listing alike.
func TestIndexKeepsWideRevisionsAndSourceCounts(t *testing.T) {
	ctx := context.Background()
	l := openAt(t, t.TempDir())
	put := func(key string, rev int, ws ...Warning) {
		t.Helper()
		if _, err := l.Update(ctx, key, func(e *Entry, _ bool) error {
			e.Source, e.LocalID, e.Revision, e.Warnings = strings.SplitN(key, ".", 2)[0], key, rev, ws
			e.Note(time.Now().UTC(), StateQueued, "mapped", "")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	fallback := Warning{Field: "reporter.role", Message: "sent as Other", Kind: "other", Fallback: true}
	unknown := Warning{Field: "x", Message: "unknown field, ignored", Kind: "unknown_field"}
	put("datix.a", 1<<33, fallback)
	put("datix.b", 2, unknown)
	put("datix.c", 3)
	put("csv.d", 4, unknown, fallback)
	want := map[string]SourceCounts{"datix": {Incidents: 3, Warned: 2, Fallbacks: 1}, "csv": {Incidents: 1, Warned: 1, Fallbacks: 1}}

	check := func(how string) {
		t.Helper()
		c, err := l.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, c.Sources); diff != "" {
			t.Errorf("%s: source counts (-want +got):\n%s", how, diff)
		}
		p, err := l.Search(ctx, Query{LocalID: "datix.a"})
		if err != nil || len(p.Items) != 1 || p.Items[0].Revision != 1<<33 {
			t.Errorf("%s: search: got %+v, %v; want revision %d", how, p.Items, err, 1<<33)
		}
	}
	check("listing")

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.RunIndex(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	wait.For(t, 10*time.Second, "the index loaded", func() (bool, string) {
		c, err := l.Counts(ctx)
		return err == nil && !c.Loading && c.Sources["datix"].Incidents == 3, fmt.Sprintf("%+v %v", c, err)
	})
	check("watch")

	// A newer mapping without warnings takes the incident out of the counts.
	put("datix.a", 1<<33+1)
	wait.Until(t, 10*time.Second, "no fallbacks counted", func() bool {
		c, _ := l.Counts(ctx)
		return c.Sources["datix"].Fallbacks == 0
	})
	want["datix"] = SourceCounts{Incidents: 3, Warned: 1}
	c, _ := l.Counts(ctx)
	if diff := cmp.Diff(want, c.Sources); diff != "" {
		t.Errorf("after the update: (-want +got):\n%s", diff)
	}
}
