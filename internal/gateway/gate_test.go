package gateway

import (
	"context"
	"errors"
	"testing"

	"github.com/psgw/psgw/ingest"
)

// TestStoreGateRefusesNamingTheCause: until it is opened the gate stores nothing and refuses
// every record as unavailable, naming the cause the queue last gave (a failure it could not
// name reads as the store not answering yet), so that an adapter answers 503 / AE with it.
func TestStoreGateRefusesNamingTheCause(t *testing.T) {
	g := newStoreGate()
	rec := ingest.Record{Kind: ingest.KindIncident, Source: "s", Key: "k", ID: "id"}
	for _, tc := range []struct{ reported, want string }{
		{"", causeStarting}, // nothing reported yet
		{"server unreachable", "server unreachable"},
		{"no JetStream quorum", "no JetStream quorum"},
	} {
		if tc.reported != "" {
			g.wait(tc.reported)
		}
		_, err := g.Publish(context.Background(), rec)
		if !errors.Is(err, ingest.ErrUnavailable) || ingest.UnavailableCause(err) != tc.want {
			t.Errorf("reported %q: got %v (cause %q), want ErrUnavailable naming %q", tc.reported, err, ingest.UnavailableCause(err), tc.want)
		}
		if g.Cause() != tc.want {
			t.Errorf("reported %q: Cause() = %q, want %q", tc.reported, g.Cause(), tc.want)
		}
	}
	g.wait("")
	if got := g.Cause(); got != "the store does not answer yet" {
		t.Errorf("an unnamed failure: Cause() = %q", got)
	}
}
