package fhir

import "time"

// Incident is psgw's canonical patient-safety event, whatever system it came from: the whole
// LFPSE question set, in source-neutral words. The JSON names are the HTTP ingest API's
// (docs/api.md, "Ingest"); docs/incident.schema.json documents them. Only the core fields of the
// contract are required; every other field is optional and, when given, must map.
//
// Coded answers (role, service area, ethnicity, ...) may be a source's local code or label,
// mapped through the source's code maps, or an LFPSE code or display as published. Identifiers
// in Patient are for use inside the gateway only; the builders never copy them into a payload.
type Incident struct {
	Source    string `json:"source"`
	LocalID   string `json:"local_id"`
	Revision  *int   `json:"revision,omitempty"`
	EventType string `json:"event_type"`

	// OccurredAt is an RFC 3339 date-time or a YYYY-MM-DD date.
	OccurredAt string `json:"occurred_at,omitempty"`
	// OccurredEstimated says OccurredAt is the reporter's estimate, not a known date.
	OccurredEstimated bool `json:"occurred_estimated,omitempty"`
	// OccurredApproximately is the reporter's own words for when, when no date is known
	// ("the week before Easter").
	OccurredApproximately string `json:"occurred_approximately,omitempty"`
	// TimeOfDay is when in the day, as a bracket (day shift, night shift, handover, ...).
	TimeOfDay string `json:"time_of_day,omitempty"`
	// ReportedAt is when the event was first reported locally.
	ReportedAt string `json:"reported_at,omitempty"`

	Description      string `json:"description"`
	ImmediateActions string `json:"immediate_actions,omitempty"`

	Patients []Patient `json:"patients,omitempty"`
	Agents   *Agents   `json:"agents,omitempty"`

	// Process is the healthcare process under way (assessment, treatment, discharge, ...).
	Process string `json:"process,omitempty"`
	// DetectionPoint is when the problem was noticed.
	DetectionPoint string `json:"detection_point,omitempty"`
	// SafetyChallenges are the national safety challenges the event touches.
	SafetyChallenges         []string `json:"safety_challenges,omitempty"`
	RadiotherapyIncidentCode string   `json:"radiotherapy_incident_code,omitempty"`
	MarvinReferenceNumber    string   `json:"marvin_reference_number,omitempty"`
	// LevelOfConcern is how worried the reporter is.
	LevelOfConcern string `json:"level_of_concern,omitempty"`
	// OutcomeTypes are the kinds of outcome, for event type outcome.
	OutcomeTypes []string `json:"outcome_types,omitempty"`

	Location Location `json:"location"`
	Reporter Reporter `json:"reporter"`

	Risk       *Risk       `json:"risk,omitempty"`
	GoodCare   *GoodCare   `json:"good_care,omitempty"`
	Governance *Governance `json:"governance,omitempty"`

	// DataSharingOptOut is true when the reporter asked that the report not be shared
	// beyond NHS England. Left out, it is false.
	DataSharingOptOut *bool `json:"data_sharing_opt_out,omitempty"`

	// Warnings are what ParseIncident noticed but did not refuse: fields it does not know,
	// names matched only by ignoring case. The builder passes them on with its own
	// (Result.Warnings, Prepared.Warnings). They are not part of the incident's JSON.
	Warnings []Warning `json:"-"`
	// Received is when the gateway received the incident (ParseOptions.Now). A risk or good
	// care with neither occurred_at nor reported_at gives its patients' ages as at this date.
	Received time.Time `json:"-"`
}

// Patient is one patient involved in an incident.
type Patient struct {
	NHSNumber      string `json:"nhs_number,omitempty"`
	LocalPatientID string `json:"local_patient_id,omitempty"`
	DateOfBirth    string `json:"date_of_birth,omitempty"`
	// AgeYears is the age in whole years at the time of the incident, for sources that know
	// the age but not the date of birth. It is sent as years*372 (docs/mapping.md); 0 is an
	// age (under one year).
	AgeYears *int `json:"age_years,omitempty"`
	// AgeBracket is an age band, for sources that know no more.
	AgeBracket string `json:"age_bracket,omitempty"`
	Sex        string `json:"sex,omitempty"`
	// GenderSameAsAtBirth is yes, no or unknown (taxonomy v6 only).
	GenderSameAsAtBirth string `json:"gender_same_as_at_birth,omitempty"`
	Ethnicity           string `json:"ethnicity,omitempty"`
	PhysicalHarm        string `json:"physical_harm,omitempty"`
	PsychologicalHarm   string `json:"psychological_harm,omitempty"`
	// ClinicalOutcome is free text.
	ClinicalOutcome string `json:"clinical_outcome,omitempty"`
	// OutcomeAssociation is how strongly the incident is linked to the outcome.
	OutcomeAssociation string `json:"outcome_association,omitempty"`
}

// Agents are the things involved in the event. Each part that is present counts as an
// involved agent; None says explicitly that none of them was.
type Agents struct {
	None              bool               `json:"none,omitempty"`
	Medications       []Medication       `json:"medications,omitempty"`
	MedicationProblem *MedicationProblem `json:"medication_problem,omitempty"`
	Devices           []Device           `json:"devices,omitempty"`
	DeviceProblem     *DeviceProblem     `json:"device_problem,omitempty"`
	ITSystems         *ITSystems         `json:"it_systems,omitempty"`
	Buildings         *Facilities        `json:"buildings,omitempty"`
	Estates           *Facilities        `json:"estates,omitempty"`
	Blood             *Blood             `json:"blood,omitempty"`
	BloodProducts     *BloodProducts     `json:"blood_products,omitempty"`
	Tissues           *Tissues           `json:"tissues,omitempty"`
	People            *People            `json:"people,omitempty"`
	// Report numbers of other national schemes the event was also reported to.
	SabreReportNumber   string `json:"sabre_report_number,omitempty"`
	ShotReportNumber    string `json:"shot_report_number,omitempty"`
	NHSBTReportNumber   string `json:"nhsbt_report_number,omitempty"`
	YellowCardReference string `json:"yellow_card_reference,omitempty"`
}

// Medication is one medicine involved.
type Medication struct {
	// Name is the medicine as the source names it.
	Name string `json:"name,omitempty"`
	// VTM and VMP are NHS dm+d ids and names, where known (sent in taxonomy v6).
	VTMCode string `json:"vtm_code,omitempty"`
	VTMName string `json:"vtm_name,omitempty"`
	VMPCode string `json:"vmp_code,omitempty"`
	VMPName string `json:"vmp_name,omitempty"`
	// Administered is yes, no or unknown: whether the medicine reached the patient. LFPSE
	// has no question for it, so it is not sent (a warning says so; docs/mapping.md).
	Administered string `json:"administered,omitempty"`
	// AdministeredByDevice is yes, no or unknown: whether the medicine was given using a
	// device, LFPSE's MedicationAdministration question.
	AdministeredByDevice string `json:"administered_by_device,omitempty"`
}

// MedicationProblem is what went wrong with medication.
type MedicationProblem struct {
	Factors         []string `json:"factors,omitempty"`
	TooMuch         []string `json:"too_much,omitempty"`
	TooLittle       []string `json:"too_little,omitempty"`
	Processes       []string `json:"processes,omitempty"`
	WrongMedication []string `json:"wrong_medication,omitempty"`
	Packaging       []string `json:"packaging,omitempty"`
	Reactions       []string `json:"reactions,omitempty"`
	Description     string   `json:"description,omitempty"`
}

// Device is one medical device involved.
type Device struct {
	// Type is the kind of device (infusion pump, bed rail, ...).
	Type string `json:"type,omitempty"`
}

// DeviceProblem is what went wrong with devices.
type DeviceProblem struct {
	Factors           []string `json:"factors,omitempty"`
	UsedUnnecessarily []string `json:"used_unnecessarily,omitempty"`
	Insufficient      []string `json:"insufficient,omitempty"`
	WrongUsage        []string `json:"wrong_usage,omitempty"`
	Broken            []string `json:"broken,omitempty"`
	Description       string   `json:"description,omitempty"`
}

// ITSystems is an IT system or software involved.
type ITSystems struct {
	Factors     []string `json:"factors,omitempty"`
	Description string   `json:"description,omitempty"`
}

// Facilities is buildings and infrastructure, or estates services, involved.
type Facilities struct {
	// Types are which buildings or services (lifts, water supply; cleaning, catering, ...).
	Types       []string `json:"types,omitempty"`
	Factors     []string `json:"factors,omitempty"`
	NotUsed     []string `json:"not_used,omitempty"`
	Wrong       []string `json:"wrong,omitempty"`
	Description string   `json:"description,omitempty"`
}

// Blood is blood involved.
type Blood struct {
	Factors     []string `json:"factors,omitempty"`
	TooMuch     []string `json:"too_much,omitempty"`
	TooLittle   []string `json:"too_little,omitempty"`
	Wrong       []string `json:"wrong,omitempty"`
	NotUsed     []string `json:"not_used,omitempty"`
	Damaged     []string `json:"damaged,omitempty"`
	Description string   `json:"description,omitempty"`
}

// BloodProducts is blood products involved.
type BloodProducts struct {
	Details string `json:"details,omitempty"`
	Brand   string `json:"brand,omitempty"`
	Batch   string `json:"batch,omitempty"`
	Blood
}

// Tissues is tissues or organs for transplant involved.
type Tissues struct {
	Factors     []string `json:"factors,omitempty"`
	TooMuch     []string `json:"too_much,omitempty"`
	TooLittle   []string `json:"too_little,omitempty"`
	Wrong       []string `json:"wrong,omitempty"`
	Damaged     []string `json:"damaged,omitempty"`
	NotUsed     []string `json:"not_used,omitempty"`
	Description string   `json:"description,omitempty"`
}

// People is what people did or failed to do.
type People struct {
	// ActionsBy says whose actions were involved (staff, other patients, family, ...).
	ActionsBy              []string `json:"actions_by,omitempty"`
	Involvement            []string `json:"involvement,omitempty"`
	Actions                []string `json:"actions,omitempty"`
	TooMuch                []string `json:"too_much,omitempty"`
	Unavailable            []string `json:"unavailable,omitempty"`
	TooLittle              []string `json:"too_little,omitempty"`
	Wrong                  []string `json:"wrong,omitempty"`
	Omitted                []string `json:"omitted,omitempty"`
	InvolvementDescription string   `json:"involvement_description,omitempty"`
	ActionsDescription     string   `json:"actions_description,omitempty"`
}

// Location is where the incident happened.
type Location struct {
	// Organisation is the ODS code of the organisation.
	Organisation string `json:"organisation,omitempty"`
	// ServiceArea is the kind of service (acute, mental health, GP, ...).
	ServiceArea string `json:"service_area,omitempty"`
	// WithinService is the kind of place (hospital, private home, ...).
	WithinService string `json:"within_service,omitempty"`
	// Specialty is the responsible specialty.
	Specialty string `json:"specialty,omitempty"`
}

// Reporter is who reported the incident. Never a name or contact details: LFPSE's
// ReporterContact is deliberately not part of the model.
type Reporter struct {
	// Role is a local or LFPSE code for the reporter's staff role.
	Role string `json:"role,omitempty"`
	// Organisation is the ODS code of the reporting organisation.
	Organisation string `json:"organisation,omitempty"`
	// Involvement is how the reporter knows of the event (witness, was told, gave the care, ...).
	Involvement string `json:"involvement,omitempty"`
}

// Risk is the detail of a risk: something that could cause harm in future.
type Risk struct {
	Description  string   `json:"description,omitempty"`
	Themes       []string `json:"themes,omitempty"`
	Imminent     string   `json:"imminent,omitempty"`
	ServiceAreas []string `json:"service_areas,omitempty"`
	Population   string   `json:"population,omitempty"`
	Timeframe    string   `json:"timeframe,omitempty"`
	// LocationAtRisk is whose organisation the risk lies in (mine, another, widespread).
	LocationAtRisk string `json:"location_at_risk,omitempty"`
}

// GoodCare is the detail of good care, for learning from what went well.
type GoodCare struct {
	Strengths           string `json:"strengths,omitempty"`
	HowFutureOccurrence string `json:"how_future_occurrence,omitempty"`
	DetectionFactor     string `json:"detection_factor,omitempty"`
	// WentWell is free text on what went well around an incident or outcome.
	WentWell string `json:"went_well,omitempty"`
}

// Governance are the flags that drive local and national follow-up.
type Governance struct {
	NeverEvent                 *bool    `json:"never_event,omitempty"`
	NeverEventType             string   `json:"never_event_type,omitempty"`
	SeriousIncident            *bool    `json:"serious_incident,omitempty"`
	DutyOfCandour              *bool    `json:"duty_of_candour,omitempty"`
	CQCNotify                  *bool    `json:"cqc_notify,omitempty"`
	CQCCriteria                []string `json:"cqc_criteria,omitempty"`
	LocalAuthoritySafeguarding *bool    `json:"local_authority_safeguarding,omitempty"`
	HSIBNotify                 *bool    `json:"hsib_notify,omitempty"`
	MentalHealthActDesignation *bool    `json:"mental_health_act_designation,omitempty"`
	DeprivationOfLiberty       *bool    `json:"deprivation_of_liberty,omitempty"`
}

// Event types (docs/api.md, "Ingest").
const (
	EventIncident = "incident"
	EventRisk     = "risk"
	EventOutcome  = "outcome"
	EventGoodCare = "good_care"
)

// MaxRevision is the highest revision an incident may carry: 2^53-1, the largest integer
// that every JSON reader takes exactly (an IEEE 754 double; JavaScript's
// Number.MAX_SAFE_INTEGER). A larger one would read as another number in some sending
// systems' tools, and left unbounded, a count from 2^63-1 wrapped to a negative revision,
// after which revision 2 looked newer (docs/privacy.md, "Hostile input"). The ingest API
// says only "≥ 1", and sources do use large numbers (a timestamp as the revision).
const MaxRevision = 1<<53 - 1

// NextRevision is the revision of an amendment sent without one, after an incident whose
// revision is current: current+1, at least 1, and never more than MaxRevision. An amendment
// after MaxRevision keeps MaxRevision: it is still mapped and sent, and no count can wrap and
// make an older revision look newer.
func NextRevision(current int) int {
	switch {
	case current < 1:
		return 1
	case current >= MaxRevision:
		return MaxRevision
	}
	return current + 1
}

// RevisionOr returns the incident's revision, or def when it has none.
func (in *Incident) RevisionOr(def int) int {
	if in.Revision == nil {
		return def
	}
	return *in.Revision
}
