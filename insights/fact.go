package insights

import (
	"slices"
	"time"

	"github.com/psgw/psgw/fhir"
)

// Fact is what the learning store keeps of one incident, as JSON in its bucket. Every field is
// a coded answer, a source name, a calendar date or a state: nothing in it can name a patient
// or quote what a reporter wrote (docs/insights.md, "What a fact holds"). Add fields; never
// rename one, since stored facts carry these names.
type Fact struct {
	Source   string `json:"source"`
	Revision int    `json:"revision,omitempty"`
	// EventType is incident, risk, outcome or good_care; "" when the record could not be read.
	EventType string `json:"event_type,omitempty"`
	// PhysicalHarm and PsychologicalHarm are the most severe harm sent for any of the
	// incident's patients (none, low, moderate, severe, fatal); "" when none was sent.
	PhysicalHarm      string `json:"physical_harm,omitempty"`
	PsychologicalHarm string `json:"psychological_harm,omitempty"`
	Patients          int    `json:"patients,omitempty"`
	// AgeBands are the patients' LFPSE age brackets (age-bracket-5 codes), never an age.
	AgeBands []string `json:"age_bands,omitempty"`
	// Organisation is an ODS code; ServiceArea, WithinService, Specialty and ReporterRole
	// are LFPSE codes, as sent.
	Organisation  string `json:"organisation,omitempty"`
	ServiceArea   string `json:"service_area,omitempty"`
	WithinService string `json:"within_service,omitempty"`
	Specialty     string `json:"specialty,omitempty"`
	ReporterRole  string `json:"reporter_role,omitempty"`
	// Agents are the kinds of agent involved (fhir.AgentKinds).
	Agents []string `json:"agents,omitempty"`
	// The dates are UK calendar dates, YYYY-MM-DD: when it occurred and was first reported
	// (as the source said), when the gateway received it and when it was delivered.
	Occurred  string `json:"occurred,omitempty"`
	Reported  string `json:"reported,omitempty"`
	Received  string `json:"received,omitempty"`
	Delivered string `json:"delivered,omitempty"`
	// State is the delivery state (ledger.State) when the fact was written: the one its
	// mapping gave, or the ledger's at a rebuild. The index answers with the ledger's current
	// state instead (Store.Observe).
	State string `json:"state,omitempty"`
}

// harmOrder ranks harms, least first, to keep an incident's most severe.
var harmOrder = []string{"", "none", "low", "moderate", "severe", "fatal"}

func worse(a, b string) string {
	if slices.Index(harmOrder, b) > slices.Index(harmOrder, a) {
		return b
	}
	return a
}

// FactOf is the fact of an incident: in as mapped (nil when its record could not be read), a
// the coded answers of its payload (zero when it was not sent), when the gateway received it
// and the delivery state its mapping gave. Only in's dates and event type are read from in:
// identifiers and free text never reach a Fact.
func FactOf(source string, in *fhir.Incident, a fhir.Answers, received time.Time, state string) Fact {
	f := Fact{Source: source, State: state, Received: day(received),
		EventType: a.EventType, Organisation: a.Organisation, ServiceArea: a.ServiceArea,
		WithinService: a.WithinService, Specialty: a.Specialty, ReporterRole: a.ReporterRole,
		Patients: len(a.PhysicalHarm)}
	for _, h := range a.PhysicalHarm {
		f.PhysicalHarm = worse(f.PhysicalHarm, h)
	}
	for _, h := range a.PsychologicalHarm {
		f.PsychologicalHarm = worse(f.PsychologicalHarm, h)
	}
	for _, b := range a.AgeBands {
		if b != "" && !slices.Contains(f.AgeBands, b) {
			f.AgeBands = append(f.AgeBands, b)
		}
	}
	f.Agents = slices.Clone(a.Agents)
	if in != nil {
		f.Revision = in.RevisionOr(0)
		f.Occurred, f.Reported = dateOf(in.OccurredAt), dateOf(in.ReportedAt)
		if f.EventType == "" && slices.Contains(eventTypes, in.EventType) {
			f.EventType = in.EventType // a quarantined incident still has a readable type
		}
		if f.Patients == 0 {
			f.Patients = len(in.Patients)
		}
	}
	return f
}

var eventTypes = []string{fhir.EventIncident, fhir.EventRisk, fhir.EventOutcome, fhir.EventGoodCare}

// dateOf is the UK calendar date of an RFC 3339 date-time or a date; "" for anything else.
func dateOf(s string) string {
	if s == "" {
		return ""
	}
	if len(s) == len(time.DateOnly) {
		if _, err := fhir.ParseDate(s); err != nil {
			return ""
		}
		return s
	}
	t, err := fhir.ParseDateOrTime(s)
	if err != nil {
		return ""
	}
	return day(t)
}

// day is t's UK calendar date, "" for the zero time.
func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fhir.CalendarDate(t).Format(time.DateOnly)
}
