package fhir

import (
	"slices"
	"strings"

	"github.com/psgw/psgw/fhir/taxonomy"
)

// Answers are the coded answers of a payload psgw sends, for the gateway's own learning data
// (docs/insights.md): what the national service was told, in the ingest API's words where it
// has them (event type, harm, the kinds of agent) and as LFPSE codes where it has none
// (service area, reporter role, age band; ODS codes for organisations). They hold no free
// text, no identifier and no exact age: only coded answers and age bands.
type Answers struct {
	// EventType is incident, risk, outcome or good_care.
	EventType string
	// PhysicalHarm and PsychologicalHarm are each patient's harm as sent (none, low, ...),
	// in patient order; "" where none was sent.
	PhysicalHarm, PsychologicalHarm []string
	// AgeBands are the AgeBracket codes (age-bracket-5) of the patients whose age was sent,
	// whether the payload carried the bracket or the exact age it stands for.
	AgeBands []string
	// Organisation, ServiceArea, WithinService and Specialty are the location-details
	// answers; ReporterRole and ReporterOrganisation the practitioner-details ones.
	Organisation, ServiceArea, WithinService, Specialty string
	ReporterRole, ReporterOrganisation                  string
	// Agents are the kinds of agent involved as the ingest API names them (medications,
	// devices, it_systems, buildings, estates, blood, blood_products, tissues), or "none".
	Agents []string
}

// agentWords names the agent-type codes the builder sends by the Agents fields they come from.
var agentWords = map[string]string{
	agentMedications: "medications", agentDevices: "devices", agentITSystems: "it_systems",
	agentBuildings: "buildings", agentEstates: "estates", agentBlood: "blood",
	agentBloodProducts: "blood_products", agentTissues: "tissues", agentNone: "none",
}

// AgentKinds are the values Answers.Agents takes, in the order the taxonomy lists the kinds.
var AgentKinds = []string{"medications", "devices", "it_systems", "buildings", "estates", "blood", "blood_products", "tissues", "none"}

// codedAnswersOf reads the coded answers from a built resource in its compact form, before it is
// encoded: no JSON is read back.
func codedAnswersOf(ae *AdverseEvent, bands []string) Answers {
	a := Answers{AgeBands: slices.Clone(bands)}
	if ae.Event != nil && len(ae.Event.Coding) > 0 && ae.Event.Coding[0].Code != nil {
		a.EventType = coreValues["event_type"].codes[*ae.Event.Coding[0].Code]
	}
	each := func(parts []*complexExt, fn func(id string, it *innerExt)) {
		for _, p := range parts {
			id := extensionID(p.url)
			for j := range p.items {
				if p.items[j].kind == valueCode {
					fn(id, &p.items[j])
				}
			}
		}
	}
	each(ae.parts, func(id string, it *innerExt) {
		if id == "adverse-event-agent" && it.name == "InvolvedAgents" {
			if w, ok := agentWords[it.str]; ok && !slices.Contains(a.Agents, w) {
				a.Agents = append(a.Agents, w)
			}
		}
	})
	for i := range ae.Contained {
		for _, p := range ae.Contained[i].parts {
			if extensionID(p.url) == "patient-information" {
				a.patient(p)
			}
		}
		each(ae.Contained[i].parts, func(id string, it *innerExt) {
			switch id + "#" + it.name {
			case "location-details#Organisation":
				a.Organisation = it.str
			case "location-details#ServiceArea":
				a.ServiceArea = it.str
			case "location-details#LocationWithinService":
				a.WithinService = it.str
			case "location-details#ResponsibleSpecialty":
				a.Specialty = it.str
			case "practitioner-details#ReporterRole":
				a.ReporterRole = it.str
			case "practitioner-details#ReporterOrganisation":
				a.ReporterOrganisation = it.str
			}
		})
	}
	return a
}

// patient adds one patient-information extension's harms.
func (a *Answers) patient(p *complexExt) {
	phys, psych := "", ""
	for j := range p.items {
		it := &p.items[j]
		switch it.name {
		case "PhysicalHarm":
			phys = coreValues["patients.physical_harm"].codes[it.str]
		case "PsychologicalHarm":
			psych = coreValues["patients.psychological_harm"].codes[it.str]
		case "AgeBracket":
			a.AgeBands = append(a.AgeBands, it.str)
		}
	}
	a.PhysicalHarm = append(a.PhysicalHarm, phys)
	a.PsychologicalHarm = append(a.PsychologicalHarm, psych)
}

// extensionID is the version-less id of an outer extension url ("location-details").
func extensionID(url string) string {
	id := url[strings.LastIndexByte(url, '/')+1:]
	if i := strings.LastIndexByte(id, '-'); i > 0 {
		id = id[:i]
	}
	return id
}

// AgeBandLabel is the taxonomy's name of an AgeBracket code, or "" for one it does not hold.
func AgeBandLabel(code string) string { return codeLabel("patients.age_bracket", code) }

// ServiceAreaLabel, RoleLabel, WithinServiceLabel and SpecialtyLabel name an LFPSE code of
// those fields as the taxonomy (v5) does, or "" for one it does not hold.
func ServiceAreaLabel(code string) string   { return codeLabel("location.service_area", code) }
func RoleLabel(code string) string          { return codeLabel("reporter.role", code) }
func WithinServiceLabel(code string) string { return codeLabel("location.within_service", code) }
func SpecialtyLabel(code string) string     { return codeLabel("location.specialty", code) }

// OrganisationLabel is the ODS list's name of an organisation, or "".
func OrganisationLabel(code string) string { return taxonomy.V5().ODSName(code) }

func codeLabel(key, code string) string {
	d, _ := spec(key).vs.Display(code)
	return d
}
