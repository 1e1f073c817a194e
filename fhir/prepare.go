package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/fhir/taxonomy"
)

// Prepared is a payload ready for the outbox, or the reasons it may not go.
type Prepared struct {
	// Payload is the AdverseEvent JSON; nil when Problems is not empty.
	Payload []byte
	// Problems name every mapping, taxonomy and privacy rule the incident breaks.
	Problems []Problem
	// Redactions counts NHS-number-shaped strings removed from free text.
	Redactions int
}

// Prepare builds the resource, runs the privacy guard over every string in it, and validates
// the result against the taxonomy. Only a payload with no problems is returned, so nothing
// half-built can reach the outbox.
func (b *Builder) Prepare(in *Incident) Prepared {
	res := b.Build(in)
	out := Prepared{Redactions: res.Redactions, Problems: res.Problems}
	if res.Resource == nil {
		return out
	}
	raw, err := json.Marshal(res.Resource)
	if err != nil {
		out.Problems = append(out.Problems, Problem{Message: fmt.Sprintf("encoding resource: %v", err)})
		return out
	}
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(&doc); err != nil {
		out.Problems = append(out.Problems, Problem{Message: fmt.Sprintf("decoding resource: %v", err)})
		return out
	}
	// The builder redacts the fields it knows are free text; this pass catches any string it
	// did not expect to hold one.
	out.Redactions += privacy.RedactResource(doc)
	for _, p := range taxonomy.Validate(b.Version, doc) {
		out.Problems = append(out.Problems, Problem{Field: p.Path, Message: p.Message + " (" + p.Rule + ")"})
	}
	if len(out.Problems) > 0 {
		return out
	}
	payload, err := json.Marshal(doc)
	if err != nil {
		out.Problems = append(out.Problems, Problem{Message: fmt.Sprintf("encoding payload: %v", err)})
		return out
	}
	out.Payload = payload
	return out
}
