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
	// Problems name every mapping, taxonomy and privacy rule the incident breaks. Their
	// messages are cleared of the incident's known identifiers and of NHS numbers.
	Problems []Problem
	// Redactions counts the identifiers removed from free text: Redacted.Total().
	Redactions int
	// Warnings are Result.Warnings: what was not sent or fell back, with or without a payload.
	Warnings []Warning
	// Redacted counts them by kind (the label of the redaction metric).
	Redacted privacy.Counts
	// Answers are the payload's coded answers, for the learning data (docs/insights.md);
	// zero when Payload is nil.
	Answers Answers
}

// PrepareOptions are what PrepareWith needs beyond the incident and the Builder.
type PrepareOptions struct {
	// Known are identifiers of the incident's patients that the incident does not hold:
	// their names from the EPR, and any other NHS number, local id or date of birth the
	// demographics store has for them. The incident's own (KnownIdentifiers) are always
	// redacted; these are redacted as well.
	Known privacy.Known
}

// Prepare is PrepareWith with no identifiers beyond the incident's own.
func (b *Builder) Prepare(in *Incident) Prepared {
	return b.PrepareWith(in, PrepareOptions{})
}

// PrepareWith builds the resource, removes from its free text every NHS-number-shaped
// string and every identifier known for the incident's patients (the incident's own and
// opt.Known; privacy.Redactor says in what spellings), and checks the result with
// CheckPayload. Only a payload with no problems is returned, so nothing half-built can reach
// the outbox. It is safe for concurrent use.
func (b *Builder) PrepareWith(in *Incident, opt PrepareOptions) Prepared {
	red := privacy.NewRedactor(mergeKnown(KnownIdentifiers(in), opt.Known))
	out := b.prepare(in, red)
	// A problem or a warning may quote a value the sender put in the wrong field (a code
	// that is also a known local id) or a key: they go to the status page and the API, so
	// they must hold no known identifier either.
	for i := range out.Problems {
		out.Problems[i].Field, _ = red.Text(out.Problems[i].Field)
		out.Problems[i].Message, _ = red.Text(out.Problems[i].Message)
	}
	for i := range out.Warnings {
		out.Warnings[i].Field, _ = red.Text(out.Warnings[i].Field)
		out.Warnings[i].Message, _ = red.Text(out.Warnings[i].Message)
	}
	out.Redactions = out.Redacted.Total()
	return out
}

func (b *Builder) prepare(in *Incident, red *privacy.Redactor) Prepared {
	res := b.build(in) // the compact form: the resource itself never leaves
	out := Prepared{Problems: res.Problems, Warnings: res.Warnings}
	out.Redacted[privacy.KindNHSNumber] = res.Redactions
	if res.Resource == nil {
		return out
	}
	doc := res.Resource.doc()
	// The builder redacts NHS numbers in the fields it knows are free text; this pass catches
	// any string it did not expect to hold one, and removes the known identifiers.
	out.Redacted.Add(red.Resource(doc))
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
	out.Answers = codedAnswersOf(res.Resource, res.exactAgeBands)
	return out
}

// KnownIdentifiers returns the identifiers the incident holds for its patients: their NHS
// numbers, local patient ids and dates of birth (as enriched from the EPR, when it ran).
// PrepareWith always redacts these from free text.
func KnownIdentifiers(in *Incident) privacy.Known {
	var k privacy.Known
	for i := range in.Patients {
		p := &in.Patients[i]
		if p.NHSNumber != "" {
			k.NHSNumbers = append(k.NHSNumbers, p.NHSNumber)
		}
		if p.LocalPatientID != "" {
			k.LocalIDs = append(k.LocalIDs, p.LocalPatientID)
		}
		if p.DateOfBirth != "" {
			k.BirthDates = append(k.BirthDates, p.DateOfBirth)
		}
	}
	return k
}

func mergeKnown(a, b privacy.Known) privacy.Known {
	return privacy.Known{
		NHSNumbers: append(a.NHSNumbers, b.NHSNumbers...),
		LocalIDs:   append(a.LocalIDs, b.LocalIDs...),
		BirthDates: append(a.BirthDates, b.BirthDates...),
		Names:      append(a.Names, b.Names...),
	}
}

func quotesAny(msg string, quoted []string) bool {
	for _, q := range quoted {
		if strings.Contains(msg, q) {
			return true
		}
	}
	return false
}
