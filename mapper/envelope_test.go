package mapper

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
)

// TestUnreadableRawEnvelopeIsQuarantined: a raw record whose envelope does not parse (here a
// receipt time that is not a time, as a foreign or corrupt writer could leave) is quarantined
// with the header named, and nothing reaches the outbox. Before the envelope the parse error
// was ignored and the receipt time silently became "now", so the record was mapped and sent.
func TestUnreadableRawEnvelopeIsQuarantined(t *testing.T) {
	ctx := context.Background()
	q, l, mp := openMapper(t)
	key := ingest.IncidentKey("datix", "U-1")
	// Written field by field, as the envelope never would.
	hdr := nats.Header{"Psgw-Kind": {ingest.KindIncident}, "Psgw-Source": {"datix"}, "Psgw-Local-Id": {"U-1"},
		"Psgw-Key": {key}, "Psgw-Received-At": {"14/03/2025 10:00"}}
	res, err := q.Publish(ctx, queue.RawSubject(ingest.KindIncident, "datix", key), "r1", body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	mapStored(t, q, mp, res.Seq)
	e, err := l.Get(ctx, ledger.Key("datix", key))
	if err != nil {
		t.Fatal(err)
	}
	if e.State != ledger.StateQuarantined || !strings.Contains(e.LastError, "Psgw-Received-At") || e.LocalID != "U-1" {
		t.Errorf("got %s for %q with last error %q, want quarantined for U-1 naming Psgw-Received-At", e.State, e.LocalID, e.LastError)
	}
	si, err := q.StreamInfo(ctx, queue.OutboxStream)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 0 {
		t.Errorf("got %d outbox messages, want none for a quarantined record", si.State.Msgs)
	}
}
