package fhir

import (
	"strings"
	"sync"

	"github.com/psgw/psgw/fhir/taxonomy"
)

// CodeMapper turns a source's local value for a canonical field ("reporter.role") into an
// LFPSE code of the builder's taxonomy version. ok is false when the source has no mapping.
// Implementations must be safe for concurrent use and should answer from a prepared table:
// the builder asks once per coded answer of every incident.
//
// A CodeMapper that can also tell whether a source maps a field at all (MapsField) lets the
// builder warn when a local value that the map lacks is taken as the LFPSE code it happens
// to equal (WarnCodeAsIs): a local role "1" may mean a doctor there, and LFPSE's 1 is not.
// NewCodeMaps returns one.
type CodeMapper interface {
	Code(source, field, value string) (code string, ok bool)
}

// fieldMapper is the optional part of a CodeMapper (see CodeMapper).
type fieldMapper interface {
	MapsField(source, field string) bool
}

// fieldSpec is one coded question of the incident model: where its answer goes in the
// payload and which answers it takes. Specs are built once, from the embedded v5 taxonomy.
type fieldSpec struct {
	// key names the field in code maps and problems ("location.service_area").
	key string
	// ext is the version-less id of the complex extension ("location-details").
	ext string
	// name is the inner extension's name in v5; name6 its name in v6 when it changed.
	name, name6 string
	// vs is the bound value set. LFPSE's v6 code lists are not held; v5's stand in for
	// fields whose v6 name is unchanged (docs/mapping.md).
	vs *taxonomy.ValueSet
	// other is the companion free-text field ("ReporterRoleOther") and otherCode the value
	// set's "Other" answer ("" when the value set has none but the free text exists).
	other, otherCode string
	// ods marks organisation fields, whose codes come from the ODS list.
	ods bool
	// words are extra accepted spellings (yes, no, ...) for the field's codes.
	words map[string]string
}

// innerName is the field's inner extension name in a taxonomy version.
func (s *fieldSpec) innerName(version int) string {
	if version == 6 && s.name6 != "" {
		return s.name6
	}
	return s.name
}

// otherName is the companion free-text field in a taxonomy version. v6 added an "Other" for
// LocationWithinService (lfpse README §4).
func (s *fieldSpec) otherName(version int) string {
	if s.other == "" && version == 6 && s.name == "LocationWithinService" {
		return "LocationWithinServiceOther"
	}
	return s.other
}

var yesNoWords = map[string]string{
	"yes": "y", "no": "n", "unknown": "u", "true": "y", "false": "n", "y": "y", "n": "n", "u": "u",
	"not known": "u", "don't know": "u",
}

// specDefs lists every coded field: code-map key, version-less extension id, v5 inner name
// and v6 inner name where it differs.
var specDefs = []struct{ key, ext, name, name6 string }{
	{"time_of_day", "adverse-event-estimated-date", "EstimatedTime", ""},
	{"process", "adverse-event-process", "Process", "HealthcareProcess"},
	{"detection_point", "detection-factors", "DetectionPoint", ""},
	{"safety_challenges", "adverse-event-safety-challenges", "SafetyChallenges", ""},
	{"level_of_concern", "adverse-event-classification", "LevelOfConcern", ""},
	{"outcome_types", "adverse-event-outcome", "OutcomeType", ""},
	{"patients.ethnicity", "patient-information", "PatientEthnicity", ""},
	{"patients.age_bracket", "patient-information", "AgeBracket", ""},
	{"patients.outcome_association", "patient-information", "StrengthOfAssociation", ""},
	{"location.organisation", "location-details", "Organisation", ""},
	{"location.service_area", "location-details", "ServiceArea", ""},
	{"location.within_service", "location-details", "LocationWithinService", ""},
	{"location.specialty", "location-details", "ResponsibleSpecialty", ""},
	{"risk.location_at_risk", "location-details", "LocationAtRisk", ""},
	{"reporter.role", "practitioner-details", "ReporterRole", ""},
	{"reporter.organisation", "practitioner-details", "ReporterOrganisation", ""},
	{"reporter.involvement", "practitioner-details", "ReporterInvolvement", ""},
	{"risk.themes", "adverse-event-risk-details", "RiskTheme", ""},
	{"risk.imminent", "adverse-event-risk-details", "RiskImminent", ""},
	{"risk.service_areas", "adverse-event-risk-details", "RiskServiceArea", ""},
	{"risk.timeframe", "adverse-event-risk-details", "RiskTimeframe", ""},
	{"good_care.detection_factor", "adverse-event-went-well", "GoodCareDetectionFactor", ""},
	{"governance.cqc_criteria", "adverse-event-governance", "CqcCriteria", ""},
	{"governance.never_event_type", "adverse-event-governance", "NeverEventType", ""},
	{"agents.medications.administered_by_device", "medication-administration", "MedicationAdministration", ""},
	{"agents.devices.type", "adverse-event-device-details", "DeviceType", ""},
	{"agents.people.actions_by", "adverse-event-agent", "InvolvedPersonsActions", ""},
	{"agents.buildings.types", "adverse-event-agent", "BuildingsInfrastructure", ""},
	{"agents.estates.types", "adverse-event-agent", "EstatesServices", ""},
	{"agents.medication_problem.factors", "adverse-event-problem-medication", "DrugInvolvementFactors", ""},
	{"agents.medication_problem.too_much", "adverse-event-problem-medication", "DrugUsedTooMuch", ""},
	{"agents.medication_problem.too_little", "adverse-event-problem-medication", "DrugInsufficientDetails", ""},
	{"agents.medication_problem.processes", "adverse-event-problem-medication", "InvolvedProcesses", ""},
	{"agents.medication_problem.wrong_medication", "adverse-event-problem-medication", "MedicationAdministeredIncorrectly", ""},
	{"agents.medication_problem.packaging", "adverse-event-problem-medication", "ProblemMedicationPackaging", ""},
	{"agents.medication_problem.reactions", "adverse-event-problem-medication", "DrugReaction", ""},
	{"agents.device_problem.factors", "adverse-event-problem-devices", "DeviceInvolvementFactors", ""},
	{"agents.device_problem.used_unnecessarily", "adverse-event-problem-devices", "DeviceUsedUnnecessarily", ""},
	{"agents.device_problem.insufficient", "adverse-event-problem-devices", "DeviceInsufficientDetails", ""},
	{"agents.device_problem.wrong_usage", "adverse-event-problem-devices", "DeviceWrongUsageDetails", ""},
	{"agents.device_problem.broken", "adverse-event-problem-devices", "DeviceBrokenDetails", ""},
	{"agents.it_systems.factors", "adverse-event-problem-it-systems", "ITSystemsInvolvementFactors", ""},
	{"agents.buildings.factors", "adverse-event-problem-buildings-infrastructure", "BuildingsInfrastructureInvolved", ""},
	{"agents.buildings.not_used", "adverse-event-problem-buildings-infrastructure", "BuildingsInfrastructureNotUsed", ""},
	{"agents.buildings.wrong", "adverse-event-problem-buildings-infrastructure", "WrongBuildingsInfrastructure", ""},
	{"agents.estates.factors", "adverse-event-problem-estates-services", "EstatesServicesInvolved", ""},
	{"agents.estates.not_used", "adverse-event-problem-estates-services", "EstatesServicesNotUsed", ""},
	{"agents.estates.wrong", "adverse-event-problem-estates-services", "WrongEstatesServices", ""},
	{"agents.blood.factors", "adverse-event-problem-blood", "BloodInvolved", ""},
	{"agents.blood.too_much", "adverse-event-problem-blood", "TooMuchBloodUsed", ""},
	{"agents.blood.too_little", "adverse-event-problem-blood", "TooLittleBloodUsed", ""},
	{"agents.blood.wrong", "adverse-event-problem-blood", "WrongBlood", ""},
	{"agents.blood.not_used", "adverse-event-problem-blood", "BloodWasNotUsed", ""},
	{"agents.blood.damaged", "adverse-event-problem-blood", "DamagedBlood", ""},
	{"agents.blood_products.factors", "adverse-event-problem-blood-products", "BloodProductsInvolved", ""},
	{"agents.blood_products.too_much", "adverse-event-problem-blood-products", "TooMuchBloodProducts", ""},
	{"agents.blood_products.too_little", "adverse-event-problem-blood-products", "TooLittleBloodProducts", ""},
	{"agents.blood_products.wrong", "adverse-event-problem-blood-products", "WrongBloodProducts", ""},
	{"agents.blood_products.not_used", "adverse-event-problem-blood-products", "BloodProductsNotUsed", ""},
	{"agents.blood_products.damaged", "adverse-event-problem-blood-products", "DamagedBloodProducts", ""},
	{"agents.tissues.factors", "adverse-event-problem-tissues-organs", "TissueOrgansInvolvementFactors", ""},
	{"agents.tissues.too_much", "adverse-event-problem-tissues-organs", "TissueOrgansUsedTooMuch", ""},
	{"agents.tissues.too_little", "adverse-event-problem-tissues-organs", "TissueOrgansInsufficientDetails", ""},
	{"agents.tissues.wrong", "adverse-event-problem-tissues-organs", "TissueOrgansWrongDetails", ""},
	{"agents.tissues.damaged", "adverse-event-problem-tissues-organs", "TissuesOrgansDamagedDetails", ""},
	{"agents.tissues.not_used", "adverse-event-problem-tissues-organs", "TissueOrgansNotUsed", ""},
	{"agents.people.involvement", "adverse-event-problem-people", "PeopleInvolvementFactors", ""},
	{"agents.people.actions", "adverse-event-problem-people", "PeopleActionFactors", ""},
	{"agents.people.too_much", "adverse-event-problem-people", "PeopleActionTooMuch", ""},
	{"agents.people.unavailable", "adverse-event-problem-people", "PeopleUnavailableDetails", ""},
	{"agents.people.too_little", "adverse-event-problem-people", "PeopleInsufficientActionDetails", ""},
	{"agents.people.wrong", "adverse-event-problem-people", "PeopleWrongActionDetails", ""},
	{"agents.people.omitted", "adverse-event-problem-people", "PeopleOmittedActionDetails", ""},
}

// specs indexes specDefs by key. It panics at first use if specDefs and the embedded
// taxonomy disagree, which a unit test catches before any release.
var specs = sync.OnceValue(func() map[string]*fieldSpec {
	tax := taxonomy.V5()
	out := make(map[string]*fieldSpec, len(specDefs))
	for _, d := range specDefs {
		ext, ok := tax.ExtensionByID(d.ext + "-5")
		if !ok {
			panic("fhir: taxonomy has no extension " + d.ext)
		}
		f, ok := ext.Field(d.name)
		if !ok || f.ValueSet == "" {
			panic("fhir: taxonomy has no coded field " + d.ext + "#" + d.name)
		}
		vs, _ := tax.ValueSet(f.ValueSet)
		s := &fieldSpec{key: d.key, ext: d.ext, name: d.name, name6: d.name6, vs: vs, ods: f.ValueSet == "ods-codes-5"}
		if of, ok := ext.Field(d.name + "Other"); ok && of.Type == "string" {
			s.other = of.Name
			if c, ok := vs.CodeForDisplay("Other"); ok {
				s.otherCode = c
			}
		}
		switch {
		case f.ValueSet == "yes-no-unknown-codes-5":
			s.words = yesNoWords
		case d.key == "patients.ethnicity":
			s.words = ethnicLetters
		}
		out[d.key] = s
	}
	return out
})

func spec(key string) *fieldSpec {
	s, ok := specs()[key]
	if !ok {
		panic("fhir: no field spec " + key)
	}
	return s
}

// FieldKeys returns the code-map keys the builder asks a CodeMapper about, and those of the
// core fields whose local words a map translates (event_type, patients.physical_harm,
// patients.psychological_harm; see translateValues), so configuration can refuse a misspelt
// one.
func FieldKeys() []string {
	out := make([]string, 0, len(specDefs)+1)
	for _, d := range specDefs {
		out = append(out, d.key)
	}
	return append(out, "patients.sex", "event_type", "patients.physical_harm", "patients.psychological_harm")
}

// resolution is what a local value became.
type resolution int

const (
	resolved     resolution = iota // an LFPSE code
	resolvedAsIs                   // an LFPSE code the value equals, though the source maps the field
	toOther                        // the "Other" answer with the value as free text
	unmapped                       // nothing: the incident must be quarantined
)

// resolve finds the LFPSE code for value: the source's code map, then an LFPSE code as is,
// then the field's accepted words, then an LFPSE display. Lookups are map reads only.
func (b *Builder) resolve(source string, s *fieldSpec, value string) (string, resolution) {
	if b.Codes != nil {
		if c, ok := b.Codes.Code(source, s.key, value); ok {
			return c, resolved
		}
	}
	if s.ods {
		if taxonomy.V5().IsODSCode(value) {
			return value, resolved
		}
	} else {
		if s.vs.Has(value) {
			// A source that maps the field sends local codes; one its map lacks may mean
			// something else there. A source that maps nothing sends LFPSE codes.
			if fm, ok := b.Codes.(fieldMapper); ok && fm.MapsField(source, s.key) {
				return value, resolvedAsIs
			}
			return value, resolved
		}
		if c, ok := s.words[strings.ToLower(strings.TrimSpace(value))]; ok {
			return c, resolved
		}
		if c, ok := s.vs.CodeForDisplay(value); ok {
			return c, resolved
		}
	}
	if s.otherName(b.Version) != "" {
		return s.otherCode, toOther
	}
	return "", unmapped
}

// sexCodes are gender-5 codes for the ingest API's sex values: "Female", "Male", "I don't
// know" and "Withheld, not specified or other". v6 replaced Gender with GenderIdentity, whose
// code list psgw has not seen; the public v6 client fills GenderIdentity from the same
// gender question with these codes, so they are v6's default too, a source's code map for
// version 6 winning (docs/mapping.md).
var sexCodes = map[string]string{"female": "1", "male": "2", "unknown": "3", "other": "4"}

var physicalHarmCodes = map[string]string{"none": "5", "low": "4", "moderate": "3", "severe": "2", "fatal": "1"}

var psychologicalHarmCodes = map[string]string{"none": "4", "low": "3", "moderate": "2", "severe": "1"}

// nhsEthnicLetters maps NHS Data Dictionary ethnic categories, which EPR feeds send in PID-22,
// to ethnicity-5 codes.
// Keys are lower case, as resolve looks words up.
var ethnicLetters = map[string]string{
	"a": "11", "b": "12", "c": "13", "d": "21", "e": "22", "f": "23", "g": "24",
	"h": "31", "j": "32", "k": "33", "l": "35", "m": "42", "n": "41", "p": "43",
	"r": "34", "s": "51", "z": "52", "99": "52",
}

// eventCodes are LFPSE's event types. "1" and "4" are confirmed in a v6 client; "2" and "3"
// follow the order of the four types (lfpse README §3).
var eventCodes = map[string]string{EventIncident: "1", EventRisk: "2", EventOutcome: "3", EventGoodCare: "4"}

// EventTypeOfCode is the event type (EventIncident, …) whose LFPSE code is code, or "" for a
// code that is not one.
func EventTypeOfCode(code string) string {
	for word, c := range eventCodes {
		if c == code {
			return word
		}
	}
	return ""
}

// Agent-type codes (agent-type-5) for the parts of Agents.
const (
	agentMedications   = "4"
	agentDevices       = "3"
	agentITSystems     = "9"
	agentBuildings     = "13"
	agentEstates       = "14"
	agentBlood         = "11"
	agentBloodProducts = "12"
	agentTissues       = "8"
	agentNone          = "10"
)
