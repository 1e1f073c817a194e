package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestResolveDeliveredKeepsNationalID: an incident that already holds a national id (here a
// delivered one whose amendment then failed) is never given another one by a resolve; the same
// id is accepted. An incident with none takes the id it is given.
func TestResolveDeliveredKeepsNationalID(t *testing.T) {
	ctx := context.Background()
	l := openAt(t, t.TempDir())
	put := func(key string, fn func(e *Entry)) {
		t.Helper()
		if _, err := l.Update(ctx, key, func(e *Entry, _ bool) error {
			e.Source, e.LocalID, e.Revision, e.RawSeq, e.PayloadHash = "datix", key, 2, 9, "h2"
			fn(e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("held", func(e *Entry) {
		e.NationalID, e.NationalReference, e.DeliveredHash, e.DeliveredRevision = "nat-1", "W1", "h1", 1
		e.Note(time.Now(), StateFailed, "HTTP 503 on PUT; retries used up", "")
	})
	put("none", func(e *Entry) {
		e.UnknownHash = "h2"
		e.Note(time.Now(), StateUnknown, "lost response", "")
	})

	tests := []struct {
		name, key, nationalID string
		wantErr               bool
		wantID                string
	}{
		{name: "different id refused", key: "held", nationalID: "nat-2", wantErr: true, wantID: "nat-1"},
		{name: "same id accepted", key: "held", nationalID: " nat-1 ", wantID: "nat-1"},
		{name: "no id yet takes it", key: "none", nationalID: "nat-9", wantID: "nat-9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := l.ResolveDelivered(ctx, tc.key, tc.nationalID, "", "alice (operator)")
			if tc.wantErr {
				if !errors.Is(err, ErrNotResolvable) {
					t.Fatalf("got error %v, want ErrNotResolvable", err)
				}
				if !strings.Contains(err.Error(), "already holds national id nat-1") {
					t.Errorf("got message %q, want it to name the id already held", err)
				}
			} else if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			e, err := l.Get(ctx, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if e.NationalID != tc.wantID {
				t.Errorf("got national id %q, want %q", e.NationalID, tc.wantID)
			}
			if tc.wantErr && e.State != StateFailed {
				t.Errorf("got state %s after a refused resolve, want it unchanged (failed)", e.State)
			}
		})
	}
}
