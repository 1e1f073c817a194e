package fhir

import (
	"bytes"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on the optional fields of the model. Coded answers are short local codes or labels;
// lists are multi-select answers, which LFPSE caps at 100.
const (
	MaxCodeValue = 200
	MaxListItems = 100
	MaxAgents    = 100
)

var dmdPattern = regexp.MustCompile(`^[0-9]{6,18}$`)

// checker adds field-named problems.
type checker func(field, format string, args ...any)

func (add checker) code(field, v string) {
	switch n := utf8.RuneCountInString(v); {
	case n > MaxCodeValue:
		add(field, "must be at most %d characters, got %d", MaxCodeValue, n)
	case strings.ContainsFunc(v, isControl):
		add(field, "must not contain control characters")
	}
}

func (add checker) codes(field string, vs []string) {
	if len(vs) > MaxListItems {
		add(field, "must have at most %d entries, got %d", MaxListItems, len(vs))
		return
	}
	for i, v := range vs {
		if strings.TrimSpace(v) == "" {
			add(field+"["+strconv.Itoa(i)+"]", "must not be empty")
			continue
		}
		add.code(field+"["+strconv.Itoa(i)+"]", v)
	}
}

func (add checker) text(field, v string) {
	if n := utf8.RuneCountInString(v); n > MaxFreeText {
		add(field, "must be at most %d characters, got %d", MaxFreeText, n)
	}
}

func (add checker) yesNo(field, v string) {
	if _, ok := yesNoWords[strings.ToLower(strings.TrimSpace(v))]; v != "" && !ok {
		add(field, "must be yes, no or unknown")
	}
}

// validateDetails checks the optional fields beyond the core of docs/api.md ("Ingest"): lengths,
// list sizes and shapes. Whether a coded value maps is decided when the incident is mapped, against
// the source's code maps, so that a fixed map can be replayed.
func (in *Incident) validateDetails(add checker) {
	add.text("occurred_approximately", in.OccurredApproximately)
	add.code("time_of_day", in.TimeOfDay)
	add.code("process", in.Process)
	add.code("detection_point", in.DetectionPoint)
	add.codes("safety_challenges", in.SafetyChallenges)
	add.code("radiotherapy_incident_code", in.RadiotherapyIncidentCode)
	add.code("marvin_reference_number", in.MarvinReferenceNumber)
	add.code("level_of_concern", in.LevelOfConcern)
	add.codes("outcome_types", in.OutcomeTypes)
	add.code("location.service_area", in.Location.ServiceArea)
	add.code("location.within_service", in.Location.WithinService)
	add.code("location.specialty", in.Location.Specialty)
	add.code("reporter.involvement", in.Reporter.Involvement)
	for i := range in.Patients {
		if i >= MaxPatients {
			break
		}
		p := &in.Patients[i]
		prefix := "patients[" + strconv.Itoa(i) + "]"
		if p.AgeYears != nil && (*p.AgeYears < 0 || *p.AgeYears > 150) {
			add(prefix+".age_years", "must be 0 to 150")
		}
		add.code(prefix+".age_bracket", p.AgeBracket)
		add.yesNo(prefix+".gender_same_as_at_birth", p.GenderSameAsAtBirth)
		add.code(prefix+".outcome_association", p.OutcomeAssociation)
	}
	if r := in.Risk; r != nil {
		add.text("risk.description", r.Description)
		add.codes("risk.themes", r.Themes)
		add.code("risk.imminent", r.Imminent)
		add.codes("risk.service_areas", r.ServiceAreas)
		add.text("risk.population", r.Population)
		add.code("risk.timeframe", r.Timeframe)
		add.code("risk.location_at_risk", r.LocationAtRisk)
	}
	if g := in.GoodCare; g != nil {
		add.text("good_care.strengths", g.Strengths)
		add.text("good_care.how_future_occurrence", g.HowFutureOccurrence)
		add.code("good_care.detection_factor", g.DetectionFactor)
		add.text("good_care.went_well", g.WentWell)
	}
	if g := in.Governance; g != nil {
		add.code("governance.never_event_type", g.NeverEventType)
		add.codes("governance.cqc_criteria", g.CQCCriteria)
	}
	if a := in.Agents; a != nil {
		a.validate(add)
	}
}

func (a *Agents) validate(add checker) {
	if len(a.Medications) > MaxAgents {
		add("agents.medications", "must have at most %d entries, got %d", MaxAgents, len(a.Medications))
	} else {
		for i, m := range a.Medications {
			p := "agents.medications[" + strconv.Itoa(i) + "]"
			add.code(p+".name", m.Name)
			add.code(p+".vtm_name", m.VTMName)
			add.code(p+".vmp_name", m.VMPName)
			for _, c := range []struct{ f, v string }{{".vtm_code", m.VTMCode}, {".vmp_code", m.VMPCode}} {
				if c.v != "" && !dmdPattern.MatchString(c.v) {
					add(p+c.f, "must be an NHS dm+d id: 6 to 18 digits")
				}
			}
			add.yesNo(p+".administered", m.Administered)
			add.yesNo(p+".administered_by_device", m.AdministeredByDevice)
		}
	}
	if len(a.Devices) > MaxAgents {
		add("agents.devices", "must have at most %d entries, got %d", MaxAgents, len(a.Devices))
	} else {
		for i, d := range a.Devices {
			add.code("agents.devices["+strconv.Itoa(i)+"].type", d.Type)
		}
	}
	lists := func(prefix string, named map[string][]string) {
		names := make([]string, 0, len(named))
		for name := range named {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			add.codes(prefix+name, named[name])
		}
	}
	if p := a.MedicationProblem; p != nil {
		lists("agents.medication_problem.", map[string][]string{"factors": p.Factors, "too_much": p.TooMuch,
			"too_little": p.TooLittle, "processes": p.Processes, "wrong_medication": p.WrongMedication,
			"packaging": p.Packaging, "reactions": p.Reactions})
		add.text("agents.medication_problem.description", p.Description)
	}
	if p := a.DeviceProblem; p != nil {
		lists("agents.device_problem.", map[string][]string{"factors": p.Factors, "used_unnecessarily": p.UsedUnnecessarily,
			"insufficient": p.Insufficient, "wrong_usage": p.WrongUsage, "broken": p.Broken})
		add.text("agents.device_problem.description", p.Description)
	}
	if p := a.ITSystems; p != nil {
		add.codes("agents.it_systems.factors", p.Factors)
		add.text("agents.it_systems.description", p.Description)
	}
	for _, f := range []struct {
		name string
		p    *Facilities
	}{{"buildings", a.Buildings}, {"estates", a.Estates}} {
		if f.p != nil {
			lists("agents."+f.name+".", map[string][]string{"types": f.p.Types, "factors": f.p.Factors, "not_used": f.p.NotUsed, "wrong": f.p.Wrong})
			add.text("agents."+f.name+".description", f.p.Description)
		}
	}
	bloodLists := func(prefix string, b *Blood) {
		lists(prefix, map[string][]string{"factors": b.Factors, "too_much": b.TooMuch, "too_little": b.TooLittle,
			"wrong": b.Wrong, "not_used": b.NotUsed, "damaged": b.Damaged})
		add.text(prefix+"description", b.Description)
	}
	if a.Blood != nil {
		bloodLists("agents.blood.", a.Blood)
	}
	if p := a.BloodProducts; p != nil {
		bloodLists("agents.blood_products.", &p.Blood)
		add.text("agents.blood_products.details", p.Details)
		add.code("agents.blood_products.brand", p.Brand)
		add.code("agents.blood_products.batch", p.Batch)
	}
	if p := a.Tissues; p != nil {
		lists("agents.tissues.", map[string][]string{"factors": p.Factors, "too_much": p.TooMuch, "too_little": p.TooLittle,
			"wrong": p.Wrong, "damaged": p.Damaged, "not_used": p.NotUsed})
		add.text("agents.tissues.description", p.Description)
	}
	if p := a.People; p != nil {
		lists("agents.people.", map[string][]string{"actions_by": p.ActionsBy, "involvement": p.Involvement,
			"actions": p.Actions, "too_much": p.TooMuch, "unavailable": p.Unavailable, "too_little": p.TooLittle,
			"wrong": p.Wrong, "omitted": p.Omitted})
		add.text("agents.people.involvement_description", p.InvolvementDescription)
		add.text("agents.people.actions_description", p.ActionsDescription)
	}
	for _, r := range []struct{ f, v string }{{"sabre_report_number", a.SabreReportNumber}, {"shot_report_number", a.ShotReportNumber},
		{"nhsbt_report_number", a.NHSBTReportNumber}, {"yellow_card_reference", a.YellowCardReference}} {
		add.code("agents."+r.f, r.v)
	}
}

// Mixed encodings. A body that is not UTF-8 or that holds text decoded in the wrong
// character set (Windows-1252 read as UTF-8 and encoded again: "Ã©" for "é", "â€™" for "’")
// would reach the national service garbled, so it is refused with the fields named.

// suspectBytes are byte sequences that only garbled text contains, found without decoding:
// U+FFFD, C1 controls (U+0080-U+009F), the lead of double-encoded Latin-1 ("Ã", "Â" then a
// continuation), "â€", and JSON \u escapes, which could spell any of them.
var suspectBytes = [][]byte{
	{0xEF, 0xBF, 0xBD}, {0xC2, 0x80}, {0xC2, 0x81}, {0xC2, 0x82}, {0xC2, 0x83}, {0xC2, 0x84},
	{0xC2, 0x85}, {0xC2, 0x86}, {0xC2, 0x87}, {0xC2, 0x88}, {0xC2, 0x89}, {0xC2, 0x8A},
	{0xC2, 0x8B}, {0xC2, 0x8C}, {0xC2, 0x8D}, {0xC2, 0x8E}, {0xC2, 0x8F}, {0xC2, 0x90},
	{0xC2, 0x91}, {0xC2, 0x92}, {0xC2, 0x93}, {0xC2, 0x94}, {0xC2, 0x95}, {0xC2, 0x96},
	{0xC2, 0x97}, {0xC2, 0x98}, {0xC2, 0x99}, {0xC2, 0x9A}, {0xC2, 0x9B}, {0xC2, 0x9C},
	{0xC2, 0x9D}, {0xC2, 0x9E}, {0xC2, 0x9F}, {0xC3, 0x83, 0xC2}, {0xC3, 0x82, 0xC2},
	{0xC3, 0xA2, 0xE2, 0x82, 0xAC}, []byte(`\u`),
}

func mayHoldMixedEncoding(data []byte) bool {
	if !utf8.Valid(data) {
		return true
	}
	for _, s := range suspectBytes {
		if bytes.Contains(data, s) {
			return true
		}
	}
	return false
}

// garbled says why s is not clean text, or "".
func garbled(s string) string {
	prev := rune(0)
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return "is not valid UTF-8 or holds a replacement character: the text mixes encodings; send UTF-8 only"
		case r >= 0x80 && r <= 0x9F:
			return "holds C1 control characters: the text mixes encodings (Windows-1252 read as Latin-1?); send UTF-8 only"
		case (prev == 'Ã' || prev == 'Â') && r >= 0x80 && r <= 0xBF,
			prev == 'â' && r == '€':
			return "looks double-encoded (UTF-8 read as Windows-1252 and encoded again); send UTF-8 only"
		}
		prev = r
	}
	return ""
}
