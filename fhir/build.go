package fhir

import (
	"fmt"
	"strings"
	"time"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/fhir/taxonomy"
)

// CodeMapper turns a source's local value for a canonical field ("reporter.role") into an
// LFPSE code of the builder's taxonomy version. ok is false when the source has no mapping.
type CodeMapper interface {
	Code(source, field, value string) (code string, ok bool)
}

// Age encodings for AgeAtTimeOfIncidentDays. LFPSE's samples suggest years*372 + months*31 +
// days; NHS England has not confirmed it, so true days can be chosen instead.
const (
	AgeLFPSE372 = "lfpse372"
	AgeDays     = "days"
)

// Builder maps canonical incidents to LFPSE AdverseEvents of one taxonomy version. It is safe
// for concurrent use once built.
type Builder struct {
	Version     int
	AgeEncoding string
	Codes       CodeMapper
}

// Result is a built resource and what the builder had to do to it.
type Result struct {
	Resource *AdverseEvent
	// Redactions counts NHS-number-shaped strings removed from free text.
	Redactions int
	// Problems are mapping failures; a result with problems must be quarantined, not sent.
	Problems []Problem
}

// eventCodes are LFPSE's event types. "1" and "4" are confirmed in a v6 client; "2" and "3"
// follow the order of the four types (lfpse README §3).
var eventCodes = map[string]string{EventIncident: "1", EventRisk: "2", EventOutcome: "3", EventGoodCare: "4"}

// Build maps in. It never fails outright: anything it cannot map is reported in Problems.
func (b *Builder) Build(in *Incident) *Result {
	res := &Result{}
	v := b.Version
	if v != 5 && v != 6 {
		res.Problems = append(res.Problems, Problem{Field: "national.taxonomy_version", Message: fmt.Sprintf("unsupported taxonomy version %d", v)})
		return res
	}
	ext := func(name string) *complexExt { return newExt(taxonomy.ExtensionURL(v, name)) }
	ae := &AdverseEvent{
		ResourceType: "AdverseEvent",
		Meta:         &fm.Meta{Profile: []string{taxonomy.ProfileURL(v)}},
	}
	evCode := eventCodes[in.EventType]
	evConcept := &fm.CodeableConcept{Coding: []fm.Coding{{Code: &evCode}}}
	if v == 6 {
		ae.Actuality = "actual"
		ae.Event = evConcept
	} else {
		// STU3 has no AdverseEvent.event; where v5 carries the event type is unconfirmed
		// (lfpse README §3), so it goes in type, the nearest STU3 element.
		ae.Type = evConcept
	}
	if in.OccurredAt != "" {
		ae.Date = in.OccurredAt
	}
	desc, n := privacy.RedactText(in.Description)
	res.Redactions += n
	ae.Description = desc

	occurred, occurredErr := ParseDateOrTime(in.OccurredAt)

	// Patients: one contained Patient carrying one patient-information extension each.
	if len(in.Patients) > 0 {
		pat := Contained{ResourceType: "Patient", ID: "patient1"}
		for i, p := range in.Patients {
			prefix := fmt.Sprintf("patients[%d]", i)
			e := ext("patient-information")
			e.integer("PatientSequence", i+1)
			if p.DateOfBirth != "" && occurredErr == nil {
				if dob, err := ParseDate(p.DateOfBirth); err == nil && !dob.After(occurred) {
					y, m, d := AgeYMD(dob, occurred)
					e.integer("AgeAtTimeOfIncidentDays", EncodeAge(b.AgeEncoding, y, m, d, dob, occurred))
					e.code("AgeBracket", AgeBracket(y, m, d))
				}
			}
			if v == 5 {
				e.code("Gender", genderCodes[p.Sex])
			}
			if p.Ethnicity != "" {
				code, ok := nhsEthnicLetters[strings.ToUpper(p.Ethnicity)]
				if !ok {
					code, ok = b.mapCode(in.Source, "patients.ethnicity", p.Ethnicity, valueSetCodes("ethnicity-5"))
				}
				if !ok {
					res.Problems = append(res.Problems, Problem{Field: prefix + ".ethnicity", Message: "value has no LFPSE ethnicity code and no code map for field patients.ethnicity"})
				}
				e.code("PatientEthnicity", code)
			}
			e.code("PhysicalHarm", physicalHarmCodes[p.PhysicalHarm])
			e.code("PsychologicalHarm", psychologicalHarmCodes[p.PsychologicalHarm])
			if p.ClinicalOutcome != "" {
				txt, n := privacy.RedactText(p.ClinicalOutcome)
				res.Redactions += n
				e.str("ClinicalOutcome", txt)
			}
			pat.Extension = append(pat.Extension, e.Extension)
		}
		ae.Contained = append(ae.Contained, pat)
		ae.Subject = ref(pat.ID)
	}

	// Reporter.
	if in.Reporter != (Reporter{}) {
		e := ext("practitioner-details")
		e.code("ReporterType", "3") // a member of staff: trust systems report on behalf of staff
		if r := strings.TrimSpace(in.Reporter.Role); r != "" {
			if code, ok := b.mapCode(in.Source, "reporter.role", r, valueSetCodes("staff-type-5")); ok {
				e.code("ReporterRole", code)
			} else {
				// LFPSE's "Other" answer takes the local label as free text.
				e.code("ReporterRole", "9")
				e.str("ReporterRoleOther", r)
			}
		}
		e.code("ReporterOrganisation", in.Reporter.Organisation)
		ae.Contained = append(ae.Contained, Contained{ResourceType: "Practitioner", ID: "practitioner1", Extension: []fm.Extension{e.Extension}})
		ae.Recorder = ref("practitioner1")
	}

	// Location.
	if in.Location.Organisation != "" {
		e := ext("location-details")
		e.code("LocationKnown", "y")
		e.code("Organisation", in.Location.Organisation)
		ae.Contained = append(ae.Contained, Contained{ResourceType: "Location", ID: "location1", Extension: []fm.Extension{e.Extension}})
		ae.Location = ref("location1")
	}

	if v == 6 {
		core := ext("adverse-event-core")
		core.str("Description", desc)
		ae.Extension = append(ae.Extension, core.Extension)
	}
	if in.ImmediateActions != "" {
		e := ext("adverse-event-outcome")
		txt, n := privacy.RedactText(in.ImmediateActions)
		res.Redactions += n
		e.str("ImmediateActions", txt)
		ae.Extension = append(ae.Extension, e.Extension)
	}
	meta := ext("adverse-event-reference-metadata")
	meta.boolean("DataSharingOptOut", false)
	ae.Extension = append(ae.Extension, meta.Extension)

	res.Resource = ae
	return res
}

// mapCode resolves a local value: the source's code map first, then an LFPSE code given as
// is, then an LFPSE display label (case-insensitive).
func (b *Builder) mapCode(source, field, value string, known map[string]string) (string, bool) {
	if b.Codes != nil {
		if c, ok := b.Codes.Code(source, field, value); ok {
			return c, true
		}
	}
	if _, ok := known[value]; ok {
		return value, true
	}
	for code, label := range known {
		if strings.EqualFold(label, value) {
			return code, true
		}
	}
	return "", false
}

// AgeYMD is the whole years, months and days from dob to at, as a person counts birthdays.
func AgeYMD(dob, at time.Time) (years, months, days int) {
	y1, m1, d1 := dob.Date()
	y2, m2, d2 := at.Date()
	years = y2 - y1
	months = int(m2) - int(m1)
	days = d2 - d1
	if days < 0 {
		months--
		// Borrow the length of the month before at's month.
		days += time.Date(y2, m2, 0, 0, 0, 0, 0, time.UTC).Day()
	}
	if months < 0 {
		years--
		months += 12
	}
	return years, months, days
}

// EncodeAge gives AgeAtTimeOfIncidentDays in the chosen encoding.
func EncodeAge(encoding string, y, m, d int, dob, at time.Time) int {
	if encoding == AgeDays {
		a := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		b := time.Date(dob.Year(), dob.Month(), dob.Day(), 0, 0, 0, 0, time.UTC)
		return int(a.Sub(b).Hours() / 24)
	}
	return y*372 + m*31 + d
}

// AgeBracket is the age-brackets-5 code for an age.
func AgeBracket(y, m, d int) string {
	switch {
	case y == 0 && m == 0 && d <= 14:
		return "1"
	case y == 0 && m == 0:
		return "2"
	case y == 0:
		return "3"
	case y <= 4:
		return "4"
	case y <= 9:
		return "5"
	case y <= 15:
		return "6"
	case y <= 17:
		return "7"
	case y <= 25:
		return "8"
	case y <= 45:
		return "9"
	case y <= 65:
		return "10"
	case y <= 85:
		return "11"
	default:
		return "12"
	}
}

var genderCodes = map[string]string{"female": "1", "male": "2", "unknown": "3", "other": "4"}

var physicalHarmCodes = map[string]string{"none": "5", "low": "4", "moderate": "3", "severe": "2", "fatal": "1"}

var psychologicalHarmCodes = map[string]string{"none": "4", "low": "3", "moderate": "2", "severe": "1"}

// valueSetCodes returns a v5 value set as code → display. The v6 code lists have not been
// published in a form psgw holds, so v5's stand in where the field is unchanged.
func valueSetCodes(id string) map[string]string {
	m := map[string]string{}
	if vs, ok := taxonomy.V5().ValueSet(id); ok {
		for _, c := range vs.Codes {
			m[c.Code] = c.Display
		}
	}
	return m
}

// nhsEthnicLetters maps NHS Data Dictionary ethnic categories, which EPR feeds send in PID-22,
// to ethnicity-5 codes.
var nhsEthnicLetters = map[string]string{
	"A": "11", "B": "12", "C": "13", "D": "21", "E": "22", "F": "23", "G": "24",
	"H": "31", "J": "32", "K": "33", "L": "35", "M": "42", "N": "41", "P": "43",
	"R": "34", "S": "51", "Z": "52", "99": "52",
}
