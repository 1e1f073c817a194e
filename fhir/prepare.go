package fhir

import (
	"strings"

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
	// Warnings are Result.Warnings: what was not sent or fell back, with or without a payload.
	Warnings []Warning
}

// Prepare builds the resource, runs the privacy guard over every string in it, and checks
// the result with CheckPayload. Only a payload with no problems is returned, so nothing
// half-built can reach the outbox. It is safe for concurrent use.
func (b *Builder) Prepare(in *Incident) Prepared {
	res := b.build(in) // the compact form: the resource itself never leaves
	out := Prepared{Redactions: res.Redactions, Problems: res.Problems, Warnings: res.Warnings}
	if res.Resource == nil {
		return out
	}
	doc := res.Resource.doc()
	// The builder redacts the fields it knows are free text; this pass catches any string it
	// did not expect to hold one.
	out.Redactions += privacy.RedactResource(doc)
	for _, p := range CheckPayload(b.Version, doc) {
		// A value the builder could not map is already a problem, naming the incident field
		// and the code map; the taxonomy saying the same of the payload adds nothing.
		if (p.Rule == taxonomy.RuleValueSet || p.Rule == taxonomy.RuleODSCode) && quotesAny(p.Message, res.unmapped) {
			continue
		}
		out.Problems = append(out.Problems, Problem{Field: p.Path, Message: p.Message + " (" + p.Rule + ")"})
	}
	if len(out.Problems) > 0 {
		return out
	}
	out.Payload = encodeDoc(make([]byte, 0, 4096), doc)
	return out
}

func quotesAny(msg string, quoted []string) bool {
	for _, q := range quoted {
		if strings.Contains(msg, q) {
			return true
		}
	}
	return false
}
