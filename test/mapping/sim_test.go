package mapping

import (
	"encoding/json"
	"testing"

	"github.com/psgw/psgw/fhir"
)

// TestGoldenPayloadsAccepted sends every golden payload the gateway would send to the
// simulator, which must store it.
func TestGoldenPayloadsAccepted(t *testing.T) {
	n := newNational(t)
	sent := 0
	for _, c := range goldenCases(t) {
		in, problems := fhir.ParseIncident(c.input, fhir.ParseOptions{Now: now})
		if len(problems) > 0 {
			continue
		}
		prep := c.builder().Prepare(in)
		if len(prep.Problems) > 0 {
			continue
		}
		sent++
		if status, body := n.post(prep.Payload); status != 201 {
			t.Errorf("%s: got status %d, want 201: %s", c.name, status, body)
		}
	}
	if sent < 10 {
		t.Errorf("got %d valid golden cases, want at least 10", sent)
	}
}

// TestQuarantinedRefused is the simulator's strictness: every golden case that reaches the
// builder but is quarantined there is built again with validation skipped, as a careless
// gateway would send it, and the simulator must refuse it with 4xx. Cases refused at ingest
// (bad dates, too many patients, mixed encodings) never reach a builder and have no payload.
func TestQuarantinedRefused(t *testing.T) {
	n := newNational(t)
	checked := 0
	for _, c := range goldenCases(t) {
		in, problems := fhir.ParseIncident(c.input, fhir.ParseOptions{Now: now})
		if len(problems) > 0 {
			continue
		}
		b := c.builder()
		if prep := b.Prepare(in); len(prep.Problems) == 0 {
			continue
		}
		res := b.Build(in)
		if res.Resource == nil {
			continue // no resource at all: an unsupported taxonomy version
		}
		payload, err := json.Marshal(res.Resource)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		if status, _ := n.post(payload); status < 400 || status > 499 {
			t.Errorf("%s: the gateway quarantines it, but the simulator answered %d, want 4xx", c.name, status)
		}
	}
	if checked < 5 {
		t.Errorf("got %d quarantined cases that reach the builder, want at least 5", checked)
	}
}
