package fhir

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/fhir/taxonomy"
)

// Builder maps canonical incidents to LFPSE AdverseEvents of one taxonomy version. It is safe
// for concurrent use once built; its code tables are shared and built once per process.
type Builder struct {
	// Version is the taxonomy version, 5 or 6.
	Version int
	// AgeEncoding is AgeLFPSE372 (the default when empty) or AgeDays.
	AgeEncoding string
	// Codes are the sources' code maps; nil means LFPSE codes and labels only.
	Codes CodeMapper
}

// Result is a built resource and what the builder had to do to it.
type Result struct {
	// Resource is nil only when the builder could not start (unsupported version). With
	// Problems it is what would have been sent, unmapped values left in place, for people
	// to look at; it must never be sent.
	Resource *AdverseEvent
	// Redactions counts NHS-number-shaped strings removed from free text.
	Redactions int
	// Problems are mapping failures; a result with problems must be quarantined, not sent.
	Problems []Problem
	// unmapped are the values that had no code, quoted as the taxonomy quotes them: its
	// value-set complaints about them repeat a problem already listed.
	unmapped []string
}

// build is the state of one Build call.
type build struct {
	b   *Builder
	v   int
	in  *Incident
	res *Result
	ae  map[string]*complexExt // the AdverseEvent's extensions by version-less id
}

// Build maps in. It never fails outright and never panics: anything it cannot map is
// reported in Problems, naming the incident field, the value and the code map to fix.
func (b *Builder) Build(in *Incident) *Result {
	res := b.build(in)
	if res.Resource != nil {
		res.Resource.materialize()
	}
	return res
}

// build is Build with the complex extensions left in their compact form (AdverseEvent.parts).
func (b *Builder) build(in *Incident) *Result {
	res := &Result{}
	v := b.Version
	if v != 5 && v != 6 {
		res.Problems = append(res.Problems, Problem{Field: "national.taxonomy_version", Message: fmt.Sprintf("unsupported taxonomy version %d", v)})
		return res
	}
	st := &build{b: b, v: v, in: in, res: res, ae: make(map[string]*complexExt, 12)}
	ae := &AdverseEvent{
		ResourceType: "AdverseEvent",
		Meta:         &fm.Meta{Profile: []string{taxonomy.ProfileURL(v)}},
		Date:         in.OccurredAt,
		Description:  st.redact(in.Description),
	}
	code, ok := eventCodes[in.EventType]
	if !ok {
		// ParseIncident refuses these; a caller that skipped it still gets no guessed type.
		st.problem("event_type", "must be incident, risk, outcome or good_care")
		code = in.EventType
	}
	ev := &fm.CodeableConcept{Coding: []fm.Coding{{Code: &code}}}
	if v == 6 {
		ae.Actuality = "actual"
		ae.Event = ev
		st.ext("adverse-event-core").str("Description", ae.Description)
	} else {
		// STU3 has no AdverseEvent.event; where v5 carries the event type is unconfirmed
		// (lfpse README §3), so it goes in type, the nearest STU3 element.
		ae.Type = ev
	}

	st.dates()
	st.patients(ae)
	st.reporter(ae)
	st.location(ae)
	st.agents(ae)
	st.questions()
	res.Resource = ae
	ae.parts = st.ordered()
	return res
}

// ext returns the AdverseEvent's complex extension with the version-less id, creating it.
func (st *build) ext(id string) *complexExt {
	e, ok := st.ae[id]
	if !ok {
		e = newExt(taxonomy.ExtensionURL(st.v, id))
		st.ae[id] = e
	}
	return e
}

// aeOrder is the taxonomy's order of the AdverseEvent's extensions, v6's core one first.
var aeOrder = []string{
	"adverse-event-core",
	"adverse-event-estimated-date", "adverse-event-agent", "adverse-event-outcome",
	"adverse-event-process", "adverse-event-risk-details", "adverse-event-went-well",
	"detection-factors", "adverse-event-classification", "adverse-event-reference-metadata",
	"adverse-event-safety-challenges", "adverse-event-governance",
	"adverse-event-problem-buildings-infrastructure", "adverse-event-problem-estates-services",
	"adverse-event-problem-blood", "adverse-event-problem-blood-products",
	"adverse-event-problem-medication", "adverse-event-problem-people",
	"adverse-event-problem-devices", "adverse-event-problem-tissues-organs",
	"adverse-event-problem-it-systems",
}

// ordered returns the non-empty extensions in a fixed order, so the same incident always
// gives the same bytes (the outbox and the ledger hash them).
func (st *build) ordered() []*complexExt {
	out := make([]*complexExt, 0, len(st.ae))
	for _, id := range aeOrder {
		if e, ok := st.ae[id]; ok && !e.empty() {
			out = append(out, e)
		}
	}
	return out
}

func (st *build) problem(field, format string, args ...any) {
	st.res.Problems = append(st.res.Problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// redact clears NHS numbers from free text bound for the payload and counts them.
func (st *build) redact(s string) string {
	out, n := privacy.RedactText(s)
	st.res.Redactions += n
	return out
}

// text adds a free-text answer.
func (st *build) text(e *complexExt, name, v string) {
	if strings.TrimSpace(v) != "" {
		e.str(name, st.redact(v))
	}
}

// coded adds the LFPSE code for one local value of a coded field, or its "Other" answer, or
// reports it. An unmapped value is left in the resource as is: that resource is only ever
// shown (psgw map) or refused, and the taxonomy check then refuses it too.
func (st *build) coded(e *complexExt, field string, s *fieldSpec, value string) {
	value = strings.TrimSpace(value)
	if value == "" {
		return
	}
	code, how := st.b.resolve(st.in.Source, s, value)
	name := s.innerName(st.v)
	switch how {
	case resolved:
		e.code(name, code)
	case toOther:
		e.code(name, code)
		e.appendStr(s.otherName(st.v), st.redact(value))
	default:
		st.res.unmapped = append(st.res.unmapped, strconv.Quote(value))
		e.code(name, value)
		st.problem(field, "value %s has no LFPSE code in value set %s and the field has no \"Other\" answer; map it in sources.%s.code_maps[%q][\"%d\"]",
			quoteValue(value), s.vs.ID, st.in.Source, s.key, st.v)
	}
}

func (st *build) codedList(e *complexExt, field string, s *fieldSpec, values []string) {
	for i, v := range values {
		st.coded(e, field+"["+strconv.Itoa(i)+"]", s, v)
	}
}

// quoteValue renders a local code for a problem message: NHS numbers redacted, long values
// cut. Local codes are not patient data, but a mis-filled field might be.
func quoteValue(s string) string {
	s, _ = privacy.RedactText(s)
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "..."
	}
	return strconv.Quote(s)
}

func (st *build) dates() {
	in := st.in
	e := st.ext("adverse-event-estimated-date")
	if in.ReportedAt != "" && in.OccurredAt != "" {
		o, err1 := ParseDateOrTime(in.OccurredAt)
		r, err2 := ParseDateOrTime(in.ReportedAt)
		if err1 == nil && err2 == nil {
			e.code("IncidentOccurredToday", map[bool]string{true: "y", false: "n"}[sameDay(o, r)])
		}
	}
	st.text(e, "ApproximateDate", in.OccurredApproximately)
	st.coded(e, "time_of_day", spec("time_of_day"), in.TimeOfDay)
	if !in.OccurredEstimated && len(in.OccurredAt) > len(time.DateOnly) {
		if t, err := time.Parse(time.RFC3339Nano, in.OccurredAt); err == nil {
			e.time("PreciseTime", t.Format(time.TimeOnly))
		}
	}
}

func (st *build) patients(ae *AdverseEvent) {
	in := st.in
	if len(in.Patients) == 0 {
		return
	}
	occurred, occurredErr := ParseDateOrTime(in.OccurredAt)
	pat := Contained{ResourceType: "Patient", ID: "patient1"}
	for i := range in.Patients {
		p := &in.Patients[i]
		prefix := "patients[" + strconv.Itoa(i) + "]"
		e := newExt(taxonomy.ExtensionURL(st.v, "patient-information"))
		e.integer("PatientSequence", i+1)
		bracket := ""
		if p.DateOfBirth != "" && occurredErr == nil {
			bracket = st.age(e, prefix, p.DateOfBirth, occurred)
		}
		// Under one year the bracket depends on days psgw does not know.
		if bracket == "" && p.AgeYears != nil && *p.AgeYears > 0 {
			bracket = AgeBracket(*p.AgeYears, 0)
		}
		if bracket != "" {
			e.code("AgeBracket", bracket)
		} else {
			st.coded(e, prefix+".age_bracket", spec("patients.age_bracket"), p.AgeBracket)
		}
		st.sex(e, p)
		st.coded(e, prefix+".ethnicity", spec("patients.ethnicity"), p.Ethnicity)
		e.code("PhysicalHarm", physicalHarmCodes[p.PhysicalHarm])
		e.code("PsychologicalHarm", psychologicalHarmCodes[p.PsychologicalHarm])
		st.text(e, "ClinicalOutcome", p.ClinicalOutcome)
		st.coded(e, prefix+".outcome_association", spec("patients.outcome_association"), p.OutcomeAssociation)
		pat.parts = append(pat.parts, e)
	}
	ae.Contained = append(ae.Contained, pat)
	ae.Subject = ref(pat.ID)
}

// age adds AgeAtTimeOfIncidentDays for a patient born on dob, counted to the incident's
// calendar date as written in occurred_at (CalendarDate), and returns the age bracket. A
// birth date that is not a date, or is after the incident's date, gives no age and a
// problem: ParseIncident refuses both, but the enricher fills in dates of birth after it,
// and a negative age must never be sent.
func (st *build) age(e *complexExt, prefix, dateOfBirth string, occurred time.Time) string {
	dob, err := ParseDate(dateOfBirth)
	switch {
	case err != nil:
		st.problem(prefix+".date_of_birth", "must be a real date in the form YYYY-MM-DD")
		return ""
	case BornAfter(dob, occurred):
		st.problem(prefix+".date_of_birth", "must not be after occurred_at")
		return ""
	}
	y, m, d := AgeYMD(dob, occurred)
	age := EncodeAge(st.b.AgeEncoding, y, m, d, dob, occurred)
	bracket := AgeBracket(y, AgeInDays(dob, occurred))
	if age < 0 || bracket == "" {
		// Unreachable after BornAfter; kept so that no change to the age rules can send one.
		st.problem(prefix+".date_of_birth", "gives a negative age at occurred_at")
		return ""
	}
	e.integer("AgeAtTimeOfIncidentDays", age)
	return bracket
}

// sex sends v5 Gender from the ingest API's sex. v6's GenderIdentity codes are unknown (lfpse
// README §4), so there it is sent only when the source maps the value for version 6.
func (st *build) sex(e *complexExt, p *Patient) {
	if st.v == 5 {
		e.code("Gender", sexCodes[p.Sex])
		return
	}
	if p.Sex != "" && st.b.Codes != nil {
		if c, ok := st.b.Codes.Code(st.in.Source, "patients.sex", p.Sex); ok {
			e.code("GenderIdentity", c)
		}
	}
	// ParseIncident has refused any other value.
	e.code("GenderSameAsAtBirth", yesNoWords[strings.ToLower(p.GenderSameAsAtBirth)])
}

func (st *build) reporter(ae *AdverseEvent) {
	r := st.in.Reporter
	if r == (Reporter{}) {
		return
	}
	e := newExt(taxonomy.ExtensionURL(st.v, "practitioner-details"))
	e.code("ReporterType", "3") // a member of staff: trust systems report on behalf of staff
	st.coded(e, "reporter.role", spec("reporter.role"), r.Role)
	st.coded(e, "reporter.involvement", spec("reporter.involvement"), r.Involvement)
	st.coded(e, "reporter.organisation", spec("reporter.organisation"), r.Organisation)
	ae.Contained = append(ae.Contained, Contained{ResourceType: "Practitioner", ID: "practitioner1", parts: []*complexExt{e}})
	ae.Recorder = ref("practitioner1")
}

func (st *build) location(ae *AdverseEvent) {
	l := st.in.Location
	atRisk := ""
	if st.in.Risk != nil {
		atRisk = st.in.Risk.LocationAtRisk
	}
	if l == (Location{}) && atRisk == "" {
		return
	}
	e := newExt(taxonomy.ExtensionURL(st.v, "location-details"))
	if l != (Location{}) {
		e.code("LocationKnown", "y")
	}
	st.coded(e, "location.organisation", spec("location.organisation"), l.Organisation)
	st.coded(e, "location.service_area", spec("location.service_area"), l.ServiceArea)
	st.coded(e, "location.within_service", spec("location.within_service"), l.WithinService)
	st.coded(e, "location.specialty", spec("location.specialty"), l.Specialty)
	st.coded(e, "risk.location_at_risk", spec("risk.location_at_risk"), atRisk)
	ae.Contained = append(ae.Contained, Contained{ResourceType: "Location", ID: "location1", parts: []*complexExt{e}})
	ae.Location = ref("location1")
}

// questions maps the AdverseEvent-level answers outside dates, agents and people.
func (st *build) questions() {
	in := st.in
	if in.Process != "" {
		st.coded(st.ext("adverse-event-process"), "process", spec("process"), in.Process)
	}
	if in.DetectionPoint != "" {
		st.coded(st.ext("detection-factors"), "detection_point", spec("detection_point"), in.DetectionPoint)
	}
	if len(in.SafetyChallenges) > 0 || in.RadiotherapyIncidentCode != "" || in.MarvinReferenceNumber != "" {
		e := st.ext("adverse-event-safety-challenges")
		if len(in.SafetyChallenges) == 0 {
			st.problem("safety_challenges", "is required when radiotherapy_incident_code or marvin_reference_number is given (SafetyChallenges is mandatory)")
		}
		st.codedList(e, "safety_challenges", spec("safety_challenges"), in.SafetyChallenges)
		st.text(e, "RadiotherapyIncidentCode", in.RadiotherapyIncidentCode)
		st.text(e, "MarvinReferenceNumber", in.MarvinReferenceNumber)
	}
	cls := st.ext("adverse-event-classification")
	st.coded(cls, "level_of_concern", spec("level_of_concern"), in.LevelOfConcern)
	if in.EventType == EventIncident {
		cls.code("PatientSafetyIncidentHasOccurred", "y")
	}

	out := st.ext("adverse-event-outcome")
	st.text(out, "ImmediateActions", in.ImmediateActions)
	st.codedList(out, "outcome_types", spec("outcome_types"), in.OutcomeTypes)

	if r := in.Risk; r != nil && (r.Description != "" || len(r.Themes) > 0 || r.Imminent != "" ||
		len(r.ServiceAreas) > 0 || r.Population != "" || r.Timeframe != "") {
		e := st.ext("adverse-event-risk-details")
		st.text(e, "RiskDescription", r.Description)
		st.codedList(e, "risk.themes", spec("risk.themes"), r.Themes)
		if r.Imminent == "" {
			st.problem("risk.imminent", "is required with risk details (RiskImminent is mandatory): yes, no or unknown")
		}
		st.coded(e, "risk.imminent", spec("risk.imminent"), r.Imminent)
		st.codedList(e, "risk.service_areas", spec("risk.service_areas"), r.ServiceAreas)
		st.text(e, "RiskPopulation", r.Population)
		st.coded(e, "risk.timeframe", spec("risk.timeframe"), r.Timeframe)
	}
	if g := in.GoodCare; g != nil {
		st.text(out, "WentWell", g.WentWell)
		if g.Strengths != "" || g.HowFutureOccurrence != "" || g.DetectionFactor != "" {
			e := st.ext("adverse-event-went-well")
			st.text(e, "StrengthsOfCare", g.Strengths)
			if strings.TrimSpace(g.HowFutureOccurrence) == "" {
				st.problem("good_care.how_future_occurrence", "is required with good care details (HowFutureOccurrence is mandatory)")
			}
			st.text(e, "HowFutureOccurrence", g.HowFutureOccurrence)
			st.coded(e, "good_care.detection_factor", spec("good_care.detection_factor"), g.DetectionFactor)
		}
	}
	if g := in.Governance; g != nil {
		e := st.ext("adverse-event-governance")
		e.boolean("DutyOfCandour", g.DutyOfCandour)
		e.boolean("CqcNotify", g.CQCNotify)
		st.codedList(e, "governance.cqc_criteria", spec("governance.cqc_criteria"), g.CQCCriteria)
		e.boolean("LocalAuthoritySafeguarding", g.LocalAuthoritySafeguarding)
		e.boolean("NeverEvent", g.NeverEvent)
		e.boolean("SeriousIncident", g.SeriousIncident)
		e.boolean("HsibNotify", g.HSIBNotify)
		st.coded(e, "governance.never_event_type", spec("governance.never_event_type"), g.NeverEventType)
		e.boolean("DesignationsMentalHealth", g.MentalHealthActDesignation)
		e.boolean("DeprivationOfLiberty", g.DeprivationOfLiberty)
	}
	optOut := false
	if in.DataSharingOptOut != nil {
		optOut = *in.DataSharingOptOut
	}
	st.ext("adverse-event-reference-metadata").boolean("DataSharingOptOut", &optOut)
}
