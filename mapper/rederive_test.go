package mapper

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
)

// TestMapperRederivesInsteadOfTrustingAStoredReason is issue 16's replay defect: a CSV row
// refused for a word its source's code maps lacked kept the refusal in its envelope, so a
// fixed code map and a replay quarantined it again. Now the mapper reads every record afresh
// with the current code maps: such a row is delivered once the map has the word, whether it
// was stored with a reason (by an older gateway) or without one; a record that is not an
// incident at all (a ragged row) keeps the reason it was stored with; and a record's problems
// are given after where it was read.
func TestMapperRederivesInsteadOfTrustingAStoredReason(t *testing.T) {
	ctx := context.Background()
	q, l, before := openMapper(t)
	fixed := New(q, l, Options{Logger: zerolog.Nop(), Builder: &fhir.Builder{Version: 5, Codes: fhir.NewCodeMaps(5, fhir.SourceCodeMaps{
		"datix": {"event_type": {"*": {"Near miss": "incident"}}},
	})}})
	nearMiss := func(id string) []byte {
		return bytes.Replace(bytes.Replace(body, []byte(`"U-1"`), []byte(`"`+id+`"`), 1), []byte(`"incident"`), []byte(`"Near miss"`), 1)
	}
	store := func(env queue.RawEnvelope, data []byte) uint64 {
		env.Kind, env.Source, env.Key, env.RecordID = ingest.KindIncident, "datix", ingest.IncidentKey("datix", env.LocalID), "r-"+env.LocalID
		res, err := q.PublishRaw(ctx, env, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		return res.Seq
	}
	state := func(id string) *ledger.Entry {
		e, err := l.Get(ctx, ledger.Key("datix", ingest.IncidentKey("datix", id)))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	remap := func(mp *Mapper, seq uint64) {
		raw, err := q.RawMessage(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := mp.Map(ctx, Raw{Seq: seq, Header: raw.Header, Data: raw.Data}, "alice"); err != nil {
			t.Fatal(err)
		}
	}

	old := store(queue.RawEnvelope{LocalID: "W-OLD", RejectReason: "file a.csv line 2: event_type: must be incident, risk, outcome or good_care"}, nearMiss("W-OLD"))
	fresh := store(queue.RawEnvelope{LocalID: "W-NEW", Origin: "file b.csv line 7"}, nearMiss("W-NEW"))
	ragged := store(queue.RawEnvelope{LocalID: "W-RAG", RejectReason: "file b.csv line 9: has 5 fields, the header has 14"},
		[]byte(`{"source":"datix","file":"b.csv","line":9,"reason":"has 5 fields","cells":["W-RAG","Near miss"]}`))
	for _, seq := range []uint64{old, fresh, ragged} {
		mapStored(t, q, before, seq)
	}
	if e := state("W-NEW"); e.State != ledger.StateQuarantined || !strings.HasPrefix(e.LastError, "file b.csv line 7: event_type: must be incident") {
		t.Errorf("W-NEW before the fix: got %s, %q; want quarantined with its file and line first", e.State, e.LastError)
	}
	for _, seq := range []uint64{old, fresh, ragged} {
		remap(fixed, seq)
	}
	for _, id := range []string{"W-OLD", "W-NEW"} {
		if e := state(id); e.State == ledger.StateQuarantined {
			t.Errorf("%s after the code map fix and a replay: still quarantined with %q", id, e.LastError)
		}
	}
	if e := state("W-RAG"); e.State != ledger.StateQuarantined || !strings.Contains(e.LastError, "has 5 fields, the header has 14") {
		t.Errorf("the ragged row: got %s, %q; want quarantined with its stored reason", e.State, e.LastError)
	}
}
