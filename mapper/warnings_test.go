package mapper

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
)

// namesFromEPR is an Enricher standing in for the demographics store: it knows the
// patient's name.
type namesFromEPR struct{ names []string }

func (e namesFromEPR) Enrich(context.Context, *fhir.Incident, uint64) (privacy.Known, error) {
	return privacy.Known{Names: e.names}, nil
}

// TestMapperKeepsWarningsAndRemovesTheEPRsNames: the stored record is read as ingest
// accepted it; its misspelt field and its fallback are in the delivery record's warnings and
// the warnings metric; the name the demographics store holds is removed from the payload and
// counted by kind; and a replay, which maps the record again with the same names, gives the
// same payload and counts nothing twice.
func TestMapperKeepsWarningsAndRemovesTheEPRsNames(t *testing.T) {
	ctx := context.Background()
	q, l, _ := openMapper(t)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	mp := New(q, l, Options{Builder: &fhir.Builder{Version: 5}, Enricher: namesFromEPR{[]string{"Zebediah Quillfeather"}},
		Metrics: metrics, Logger: zerolog.Nop()})
	data := []byte(`{"source":"datix","local_id":"W-1","event_type":"incident","occurred_at":"2025-03-14",
		"description":"Mr Quillfeather (Zebediah) fell on the ward.","location":{"organisation":"RRK"},
		"reporter":{"role":"Porter"},"patients":[{"nhs_number":"9434765919","physicalHarm":"severe"}]}`)
	if _, ps := fhir.ParseIncident(data, fhir.ParseOptions{Now: time.Now()}); len(ps) > 0 {
		t.Fatal(ps)
	}
	key := ingest.IncidentKey("datix", "W-1")
	res, err := q.PublishRaw(ctx, queue.RawEnvelope{Kind: ingest.KindIncident, Source: "datix", LocalID: "W-1", Key: key, RecordID: "r1"}, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	mapStored(t, q, mp, res.Seq)
	lkey := ledger.Key("datix", key)
	e, err := l.Get(ctx, lkey)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, w := range e.Warnings {
		fields = append(fields, w.Kind+" "+w.Field)
	}
	got := strings.Join(fields, ", ")
	for _, want := range []string{"unknown_field patients[0].physicalHarm", "other reporter.role"} {
		if !strings.Contains(got, want) {
			t.Errorf("record's warnings: got %s, want %s among them", got, want)
		}
	}
	if ledger.Fallbacks(e.Warnings) != 1 || !strings.Contains(e.History[len(e.History)-1].Detail, "2 identifiers redacted from free text (2 names)") {
		t.Errorf("got %d fallbacks and history %q", ledger.Fallbacks(e.Warnings), e.History[len(e.History)-1].Detail)
	}
	firstHash := e.PayloadHash

	check := func(when string) {
		t.Helper()
		for _, tc := range []struct {
			c    prometheus.Counter
			want float64
		}{
			{metrics.Warnings.WithLabelValues("datix", "unknown_field"), 1},
			{metrics.Warnings.WithLabelValues("datix", "other"), 1},
			{metrics.Redactions.WithLabelValues("name"), 2},
			{metrics.Redactions.WithLabelValues("nhs_number"), 0},
		} {
			var m dto.Metric
			if err := tc.c.Write(&m); err != nil {
				t.Fatal(err)
			}
			if got := m.GetCounter().GetValue(); got != tc.want {
				t.Errorf("%s: %s: got %v, want %v", when, tc.c.Desc(), got, tc.want)
			}
		}
	}
	check("after mapping")

	e, err = mp.Replay(ctx, lkey, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if e.PayloadHash != firstHash || len(e.Warnings) != 2 {
		t.Errorf("replay: got hash %s and %d warnings, want %s and 2", e.PayloadHash, len(e.Warnings), firstHash)
	}
	check("after a replay")

	// The outbox holds the payload without the name.
	cons, err := q.Consumer(ctx, queue.OutboxStream, jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p := string(m.Data()); strings.Contains(p, "Quillfeather") || strings.Contains(p, "Zebediah") || !strings.Contains(p, "fell on the ward") {
		t.Errorf("outbox payload: %s", p)
	}
}
