package fhir

// Incident is psgw's canonical patient-safety event, whatever system it came from. The JSON
// names are the HTTP ingest API's (CONTRACT §2). Identifiers in Patient are for use inside the
// gateway only; the builders never copy them into a payload.
type Incident struct {
	Source           string    `json:"source"`
	LocalID          string    `json:"local_id"`
	Revision         *int      `json:"revision,omitempty"`
	EventType        string    `json:"event_type"`
	OccurredAt       string    `json:"occurred_at,omitempty"`
	ReportedAt       string    `json:"reported_at,omitempty"`
	Description      string    `json:"description"`
	ImmediateActions string    `json:"immediate_actions,omitempty"`
	Patients         []Patient `json:"patients,omitempty"`
	Location         Location  `json:"location"`
	Reporter         Reporter  `json:"reporter"`
}

// Patient is one patient involved in an incident.
type Patient struct {
	NHSNumber         string `json:"nhs_number,omitempty"`
	LocalPatientID    string `json:"local_patient_id,omitempty"`
	DateOfBirth       string `json:"date_of_birth,omitempty"`
	Sex               string `json:"sex,omitempty"`
	Ethnicity         string `json:"ethnicity,omitempty"`
	PhysicalHarm      string `json:"physical_harm,omitempty"`
	PsychologicalHarm string `json:"psychological_harm,omitempty"`
	ClinicalOutcome   string `json:"clinical_outcome,omitempty"`
}

// Location is where the incident happened.
type Location struct {
	// Organisation is the ODS code of the organisation.
	Organisation string `json:"organisation,omitempty"`
}

// Reporter is who reported the incident.
type Reporter struct {
	// Role is a local or LFPSE code for the reporter's staff role.
	Role string `json:"role,omitempty"`
	// Organisation is the ODS code of the reporting organisation.
	Organisation string `json:"organisation,omitempty"`
}

// Event types (CONTRACT §2).
const (
	EventIncident = "incident"
	EventRisk     = "risk"
	EventOutcome  = "outcome"
	EventGoodCare = "good_care"
)

// RevisionOr returns the incident's revision, or def when it has none.
func (in *Incident) RevisionOr(def int) int {
	if in.Revision == nil {
		return def
	}
	return *in.Revision
}
