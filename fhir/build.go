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
	// PlaceholderBirthDates are dates of birth (YYYY-MM-DD) that source systems record when
	// the real one is not known. Such a date gives no age, with a warning. nil means
	// DefaultPlaceholderBirthDates; an empty, non-nil list means none.
	PlaceholderBirthDates []string
	// AgeBracketOnly sends every age as its AgeBracket, never AgeAtTimeOfIncidentDays, from
	// which with the incident's date the date of birth can be worked out (the privacy setting
	// mapping.age_precision: bracket). It is a choice, so it gives no warning, except for an
	// age_years of 0, which has no bracket.
	AgeBracketOnly bool
	// QuarantineFallbacks, when not nil, names the sources whose fallbacks
	// (WarningKind.Fallback: an "Other" answer, an organisation outside the ODS list, a
	// local value taken as the LFPSE code it equals) are problems, so that their incidents
	// are quarantined instead of sent. nil means no source's are. It must be safe for
	// concurrent use.
	QuarantineFallbacks func(source string) bool
	// QuoteValues quotes every coded value in problems and warnings as it was sent (NHS
	// numbers still redacted). Without it, which is how the gateway maps, a value is quoted
	// only when it reads as a code (privacy.QuoteCode), since reasons and warnings are shown
	// on the status page, in the API and the CLI, and a coded field may hold a name. psgw map
	// sets it: the operator running it holds the record and needs the value for a code map.
	QuoteValues bool
}

// DefaultPlaceholderBirthDates are the dates of birth that PAS and incident systems commonly
// use for "not known" (docs/mapping.md).
var DefaultPlaceholderBirthDates = []string{"1900-01-01", "1800-01-01"}

// MaxAgeYears is the oldest age psgw believes. A date of birth that gives more is a
// placeholder or a typing error, and no age is sent (docs/mapping.md).
const MaxAgeYears = 120

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
	// Warnings are the incident's own (Incident.Warnings, from ParseIncident) followed by
	// the builder's: fields not sent and values fallen back on, each naming the incident
	// field. A result with warnings is sent; the warnings belong in the delivery record.
	Warnings []Warning
	// unmapped are the values that had no code, quoted as the taxonomy quotes them: its
	// value-set complaints about them repeat a problem already listed.
	unmapped []string
	// exactAgeBands are the age bands of the exact ages sent (AgeAtTimeOfIncidentDays), for
	// Answers; a bracket sent as such is read from the payload.
	exactAgeBands []string
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
// reported in Problems, naming the incident field, the value and the code map to fix, and
// anything it leaves out or falls back on, in Warnings. It does not modify in.
func (b *Builder) Build(in *Incident) *Result {
	res := b.build(in)
	if res.Resource != nil {
		res.Resource.materialize()
	}
	return res
}

// Warnings returns the warnings that mapping in would give (Result.Warnings), for an ingest
// API that answers them before the incident is mapped (httppush.Config.MapWarnings). The
// fallbacks of a source that quarantines them are warnings here too, so that the sender
// hears of them at once; problems are not included. Enrichment may add warnings later. As
// in PrepareWith, the warnings hold none of the incident's own identifiers.
func (b *Builder) Warnings(in *Incident) []Warning {
	if b.QuarantineFallbacks != nil {
		c := *b
		c.QuarantineFallbacks = nil
		b = &c
	}
	ws := b.build(in).Warnings
	if len(ws) == 0 {
		return ws
	}
	red := privacy.NewRedactor(KnownIdentifiers(in))
	for i := range ws {
		ws[i].Field, _ = red.Text(ws[i].Field)
		ws[i].Message, _ = red.Text(ws[i].Message)
	}
	return ws
}

// build is Build with the complex extensions left in their compact form (AdverseEvent.parts).
func (b *Builder) build(in *Incident) *Result {
	res := &Result{}
	if len(in.Warnings) > 0 {
		res.Warnings = append(res.Warnings, in.Warnings...)
	}
	v := b.Version
	if v != 5 && v != 6 {
		res.Problems = append(res.Problems, Problem{Field: "national.taxonomy_version", Message: fmt.Sprintf("unsupported taxonomy version %d", v)})
		return res
	}
	st := &build{b: b, v: v, in: in, res: res, ae: make(map[string]*complexExt, 12)}
	ae := &AdverseEvent{
		ResourceType: "AdverseEvent",
		Meta:         &fm.Meta{Profile: []string{taxonomy.ProfileURL(v)}},
		Date:         ukDateTime(in.OccurredAt),
		Description:  st.freeText("description", in.Description),
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

// ukDateTime is occurred_at as sent to LFPSE: a date as it is, a date-time on the UK wall
// clock (docs/mapping.md, "Dates"). Anything unreadable is left as it is, for the payload
// check to refuse.
func ukDateTime(s string) string {
	if len(s) <= len(time.DateOnly) {
		return s
	}
	t, err := ParseDateOrTime(s)
	if err != nil {
		return s
	}
	return UKTime(t).Format(time.RFC3339Nano)
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

// warn adds a warning, or for a fallback of a source that quarantines them
// (Builder.QuarantineFallbacks), a problem.
func (st *build) warn(field string, kind WarningKind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if kind.Fallback() && st.b.QuarantineFallbacks != nil && st.b.QuarantineFallbacks(st.in.Source) {
		st.problem(field, "%s (this source's fallbacks are quarantined)", msg)
		return
	}
	st.res.Warnings = append(st.res.Warnings, Warning{Field: field, Message: msg, Kind: kind})
}

// freeText prepares free text from field for the payload: characters FHIR strings may not
// hold and bidirectional overrides removed (CleanText, with a warning), then NHS numbers
// redacted and counted.
func (st *build) freeText(field, s string) string {
	s, n := CleanText(s)
	if n > 0 {
		st.warn(field, WarnText, "%d control or bidirectional-override %s removed: FHIR text may not hold them",
			n, plural(n, "character", "characters"))
	}
	out, r := privacy.RedactText(s)
	st.res.Redactions += r
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// text adds a free-text answer from the incident's field.
func (st *build) text(e *complexExt, field, name, v string) {
	if strings.TrimSpace(v) != "" {
		e.str(name, st.freeText(field, v))
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
	mapKey := func() string { return fmt.Sprintf("sources.%s.code_maps[%q][\"%d\"]", st.in.Source, s.key, st.v) }
	switch how {
	case resolved:
		e.code(name, code)
	case resolvedAsIs:
		e.code(name, code)
		display, _ := s.vs.Display(code)
		st.warn(field, WarnCodeAsIs, "value %s is not in the source's code map for the field, but is the LFPSE code for %s, and was sent as that; if it means something else locally, map it in %s",
			st.quote(value), strconv.Quote(display), mapKey())
	case toOther:
		e.code(name, code)
		e.appendStr(s.otherName(st.v), st.freeText(field, value))
		if s.ods {
			st.warn(field, WarnUnknownODS, "%s is not in the taxonomy's list of ODS organisation codes (new, merged or mistyped?): sent as free text in %s, so LFPSE may not attribute the event to the organisation",
				st.quote(value), s.otherName(st.v))
		} else {
			sent := "sent"
			if code != "" {
				sent = "sent as \"Other\" (" + code + ") with the value"
			}
			st.warn(field, WarnOther, "value %s has no LFPSE code in value set %s: %s as free text in %s; map it in %s",
				st.quote(value), s.vs.ID, sent, s.otherName(st.v), mapKey())
		}
	default:
		// As the payload check quotes it (checkCode, taxonomy's own): its complaint about
		// the same value is dropped (prepare).
		st.res.unmapped = append(st.res.unmapped, privacy.QuoteCode(value))
		e.code(name, value)
		st.problem(field, "value %s has no LFPSE code in value set %s and the field has no \"Other\" answer; map it in %s",
			st.quote(value), s.vs.ID, mapKey())
	}
}

func (st *build) codedList(e *complexExt, field string, s *fieldSpec, values []string) {
	for i, v := range values {
		st.coded(e, field+"["+strconv.Itoa(i)+"]", s, v)
	}
}

// quote renders a value from a coded field for a problem or a warning: as
// privacy.QuoteCode does, or with Builder.QuoteValues as it was sent (quoteValue).
func (st *build) quote(s string) string {
	switch {
	case st.b.QuoteValues:
		return quoteValue(s)
	case privacy.CodeLike(s):
		return privacy.QuoteCode(s)
	}
	return "[" + strconv.Itoa(utf8.RuneCountInString(s)) + " characters, not shown: psgw map on the record shows it]"
}

// quoteValue renders a value in full for a message that only the person who holds the
// value sees (a code map in the config, psgw map's record): NHS numbers redacted, long
// values cut.
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
	st.text(e, "occurred_approximately", "ApproximateDate", in.OccurredApproximately)
	st.coded(e, "time_of_day", spec("time_of_day"), in.TimeOfDay)
	if !in.OccurredEstimated && len(in.OccurredAt) > len(time.DateOnly) {
		if t, err := ParseDateOrTime(in.OccurredAt); err == nil {
			e.time("PreciseTime", UKTime(t).Format(time.TimeOnly))
		}
	}
}

// ageDate is the date patients' ages are counted to: occurred_at, else for a risk or good
// care that has none, reported_at, else the date the gateway received the incident
// (docs/mapping.md). ok is false when there is none of them.
func (st *build) ageDate() (at time.Time, ok bool) {
	for _, s := range []string{st.in.OccurredAt, st.in.ReportedAt} {
		if s == "" {
			continue
		}
		t, err := ParseDateOrTime(s)
		return t, err == nil
	}
	if !st.in.Received.IsZero() {
		return st.in.Received, true
	}
	return time.Time{}, false
}

func (st *build) patients(ae *AdverseEvent) {
	in := st.in
	pat := Contained{ResourceType: "Patient", ID: "patient1"}
	if len(in.Patients) == 0 {
		if st.v == 6 {
			// R4 AdverseEvent.subject is 1..1: with no patient, an empty contained Patient,
			// as the public v6 client sends (docs/mapping.md).
			ae.Contained = append(ae.Contained, pat)
			ae.Subject = ref(pat.ID)
		}
		return
	}
	at, atOK := st.ageDate()
	for i := range in.Patients {
		p := &in.Patients[i]
		prefix := "patients[" + strconv.Itoa(i) + "]"
		e := newExt(taxonomy.ExtensionURL(st.v, "patient-information"))
		e.integer("PatientSequence", i+1)
		st.age(e, prefix, p, at, atOK)
		st.sex(e, prefix, p)
		st.coded(e, prefix+".ethnicity", spec("patients.ethnicity"), p.Ethnicity)
		st.harm(e, prefix, p)
		st.text(e, prefix+".clinical_outcome", "ClinicalOutcome", p.ClinicalOutcome)
		if p.OutcomeAssociation != "" && !severeOutcome(p) {
			st.warn(prefix+".outcome_association", WarnNotSent, "not sent: LFPSE asks the strength of association only for severe or fatal physical harm or severe psychological harm")
		} else {
			st.coded(e, prefix+".outcome_association", spec("patients.outcome_association"), p.OutcomeAssociation)
		}
		pat.parts = append(pat.parts, e)
	}
	ae.Contained = append(ae.Contained, pat)
	ae.Subject = ref(pat.ID)
}

// harm adds the patient's physical and psychological harm. LFPSE does not ask about the
// psychological harm of a patient who died, so beside fatal physical harm it is not sent
// (the public v6 client's logic; docs/mapping.md).
func (st *build) harm(e *complexExt, prefix string, p *Patient) {
	e.code("PhysicalHarm", physicalHarmCodes[p.PhysicalHarm])
	if p.PhysicalHarm == "fatal" && p.PsychologicalHarm != "" {
		st.warn(prefix+".psychological_harm", WarnNotSent, "not sent: LFPSE does not ask the psychological harm of a patient whose physical harm was fatal")
		return
	}
	e.code("PsychologicalHarm", psychologicalHarmCodes[p.PsychologicalHarm])
}

// severeOutcome reports whether LFPSE asks the strength of association for the patient:
// severe or fatal physical harm, or severe psychological harm (the public v6 client's logic).
func severeOutcome(p *Patient) bool {
	return p.PhysicalHarm == "severe" || p.PhysicalHarm == "fatal" || p.PsychologicalHarm == "severe"
}

// age adds the patient's age at the incident. AgeAtTimeOfIncidentDays carries an exact age:
// from the date of birth, counted to the incident's UK calendar date (CalendarDate), or from
// age_years as years*372. AgeBracket is sent only when the exact age is not known (the public
// v6 client's logic), or instead of it when the Builder says so (AgeBracketOnly). A date of
// birth that cannot be right (a placeholder, after the incident, more than MaxAgeYears
// before it) gives no age and a warning, never a wrong one; the enricher fills dates of birth
// in after ParseIncident, so the builder cannot rely on its rules.
func (st *build) age(e *complexExt, prefix string, p *Patient, at time.Time, atOK bool) {
	sent, years := false, 0 // an age from date_of_birth or age_years is sent
	if p.DateOfBirth != "" {
		switch {
		case !atOK:
			st.warn(prefix+".date_of_birth", WarnAge, "no age sent: the event has no date to count it to")
		default:
			if y, ok := st.ageFromBirth(e, prefix, p.DateOfBirth, at); ok {
				sent, years = true, y
			}
		}
	}
	if p.AgeYears != nil {
		sent = st.ageYears(e, prefix, *p.AgeYears, sent, years) || sent
	}
	switch {
	case sent && p.AgeBracket != "":
		st.warn(prefix+".age_bracket", WarnNotSent, "not sent: the age from date_of_birth or age_years is sent, and LFPSE takes AgeBracket only when the age is unknown")
	case !sent:
		st.coded(e, prefix+".age_bracket", spec("patients.age_bracket"), p.AgeBracket)
	}
}

// ageYears adds the age from age_years, unless one from the date of birth was sent (fromBirth,
// of birthYears whole years), and reports whether it added one.
func (st *build) ageYears(e *complexExt, prefix string, y int, fromBirth bool, birthYears int) bool {
	field := prefix + ".age_years"
	bracketOnly := st.b.AgeBracketOnly || st.b.AgeEncoding == AgeDays
	switch {
	case fromBirth && y != birthYears:
		st.warn(field, WarnAge, "not sent: the age from date_of_birth is sent, and differs from it")
		return false
	case fromBirth:
		return false
	case y < 0 || y > MaxAgeYears:
		st.warn(field, WarnAge, "not sent: over %d years is not a believable age", MaxAgeYears)
		return false
	case bracketOnly && y == 0:
		st.warn(field, WarnAge, "not sent: under one year the age bracket depends on months psgw does not know; give date_of_birth")
		return false
	case bracketOnly:
		e.code("AgeBracket", AgeBracket(y, 0))
		if !st.b.AgeBracketOnly {
			st.warn(field, WarnAge, "sent as AgeBracket only: the days encoding (mapping.age_encoding) cannot carry whole years exactly; give date_of_birth for an exact age")
		}
		return true
	}
	e.integer("AgeAtTimeOfIncidentDays", y*372)
	if y > 0 {
		// Under one year the band depends on months that are not known.
		st.res.exactAgeBands = append(st.res.exactAgeBands, AgeBracket(y, 0))
	}
	if y == 0 {
		st.warn(field, WarnAge, "sent as AgeAtTimeOfIncidentDays 0 (0 whole years): months and days under one year are not known; give date_of_birth for an exact age")
	}
	return true
}

// ageFromBirth adds AgeAtTimeOfIncidentDays (or with AgeBracketOnly, AgeBracket) for a
// patient born on dateOfBirth, counted to at's UK calendar date, and returns the age in whole
// years; ok is false, with a warning, when the date cannot give a believable age.
func (st *build) ageFromBirth(e *complexExt, prefix, dateOfBirth string, at time.Time) (years int, ok bool) {
	field := prefix + ".date_of_birth"
	dob, err := ParseDate(dateOfBirth)
	switch {
	case err != nil:
		st.warn(field, WarnAge, "no age sent: not a real date in the form YYYY-MM-DD")
		return 0, false
	case st.placeholder(dateOfBirth):
		// The date is not quoted: even a placeholder is a date of birth in the record.
		st.warn(field, WarnAge, "no age sent: it is a placeholder date that source systems record for an unknown date of birth (mapping placeholder list)")
		return 0, false
	case BornAfter(dob, at):
		st.warn(field, WarnAge, "no age sent: it is after the date of the event")
		return 0, false
	}
	y, m, d := AgeYMD(dob, at)
	if y > MaxAgeYears {
		st.warn(field, WarnAge, "no age sent: it gives more than %d years, so it is a placeholder or a typing error", MaxAgeYears)
		return 0, false
	}
	if st.b.AgeBracketOnly {
		e.code("AgeBracket", AgeBracket(y, AgeInDays(dob, at)))
		return y, true
	}
	age := EncodeAge(st.b.AgeEncoding, y, m, d, dob, at)
	if age < 0 {
		// Unreachable after BornAfter; kept so that no change to the age rules can send one.
		st.warn(field, WarnAge, "no age sent: it gives a negative age")
		return 0, false
	}
	e.integer("AgeAtTimeOfIncidentDays", age)
	st.res.exactAgeBands = append(st.res.exactAgeBands, AgeBracket(y, AgeInDays(dob, at)))
	return y, true
}

func (st *build) placeholder(dob string) bool {
	list := st.b.PlaceholderBirthDates
	if list == nil {
		list = DefaultPlaceholderBirthDates
	}
	for _, p := range list {
		if p == dob {
			return true
		}
	}
	return false
}

// sex sends the patient's sex: v5 Gender; v6 GenderIdentity, whose code list has not been
// published to psgw, so it takes the source's code map for version 6, else the gender codes
// the public v6 client sends there (sexCodes; docs/mapping.md). gender_same_as_at_birth is
// v6's GenderSameAsAtBirth; v5 has no such question.
func (st *build) sex(e *complexExt, prefix string, p *Patient) {
	if p.Sex != "" {
		name := "Gender"
		if st.v == 6 {
			name = "GenderIdentity"
		}
		code, ok := "", false
		if st.b.Codes != nil {
			code, ok = st.b.Codes.Code(st.in.Source, "patients.sex", p.Sex)
			if word, isWord := sexCodes[code]; ok && isWord {
				// A map of the source's own words ("Female": female) names psgw's word:
				// its code is the default's.
				code = word
			}
		}
		if !ok {
			code, ok = sexCodes[strings.ToLower(strings.TrimSpace(p.Sex))]
		}
		if ok {
			e.code(name, code)
		} else {
			st.warn(prefix+".sex", WarnSex, "not sent: value %s has no %s code; map it in sources.%s.code_maps[\"patients.sex\"][\"%d\"]",
				st.quote(p.Sex), name, st.in.Source, st.v)
		}
	}
	if p.GenderSameAsAtBirth == "" {
		return
	}
	if st.v == 5 {
		st.warn(prefix+".gender_same_as_at_birth", WarnNotSent, "not sent: taxonomy v5 has no such question (v6 GenderSameAsAtBirth)")
		return
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
		st.text(e, "radiotherapy_incident_code", "RadiotherapyIncidentCode", in.RadiotherapyIncidentCode)
		st.text(e, "marvin_reference_number", "MarvinReferenceNumber", in.MarvinReferenceNumber)
	}
	cls := st.ext("adverse-event-classification")
	st.coded(cls, "level_of_concern", spec("level_of_concern"), in.LevelOfConcern)
	if in.EventType == EventIncident {
		cls.code("PatientSafetyIncidentHasOccurred", "y")
	}

	out := st.ext("adverse-event-outcome")
	st.text(out, "immediate_actions", "ImmediateActions", in.ImmediateActions)
	st.codedList(out, "outcome_types", spec("outcome_types"), in.OutcomeTypes)

	if r := in.Risk; r != nil && (r.Description != "" || len(r.Themes) > 0 || r.Imminent != "" ||
		len(r.ServiceAreas) > 0 || r.Population != "" || r.Timeframe != "") {
		e := st.ext("adverse-event-risk-details")
		st.text(e, "risk.description", "RiskDescription", r.Description)
		st.codedList(e, "risk.themes", spec("risk.themes"), r.Themes)
		if r.Imminent == "" {
			st.problem("risk.imminent", "is required with risk details (RiskImminent is mandatory): yes, no or unknown")
		}
		st.coded(e, "risk.imminent", spec("risk.imminent"), r.Imminent)
		st.codedList(e, "risk.service_areas", spec("risk.service_areas"), r.ServiceAreas)
		st.text(e, "risk.population", "RiskPopulation", r.Population)
		st.coded(e, "risk.timeframe", spec("risk.timeframe"), r.Timeframe)
	}
	if g := in.GoodCare; g != nil {
		st.text(out, "good_care.went_well", "WentWell", g.WentWell)
		if g.Strengths != "" || g.HowFutureOccurrence != "" || g.DetectionFactor != "" {
			e := st.ext("adverse-event-went-well")
			st.text(e, "good_care.strengths", "StrengthsOfCare", g.Strengths)
			if strings.TrimSpace(g.HowFutureOccurrence) == "" {
				st.problem("good_care.how_future_occurrence", "is required with good care details (HowFutureOccurrence is mandatory)")
			}
			st.text(e, "good_care.how_future_occurrence", "HowFutureOccurrence", g.HowFutureOccurrence)
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
