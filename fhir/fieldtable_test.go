package fhir

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/psgw/psgw/fhir/taxonomy"
)

// fieldRow says where one input field of the incident (docs/incident.schema.json) goes: the
// LFPSE answers (inner extension names, or AdverseEvent elements written "AdverseEvent.x")
// it fills in each taxonomy version, or why it is not sent. The rows are the source of the
// field table in docs/mapping.md (TestFieldTable writes and checks it) and of the property
// test (TestEveryFieldArrivesOrIsWarned), which checks the builder against them.
type fieldRow struct {
	field  string   // schema path, arrays written "[]": "patients[].sex"
	v5, v6 []string // answers it fills; the first is the question, the rest free text or companions
	// why it is not sent (in a version whose list is empty), or what psgw uses it for.
	notSent5, notSent6 string
	// used marks fields psgw uses without sending them as an answer of their own
	// (identifiers, keys): the property test does not look for them in the payload.
	used bool
	note string
}

// codedRow is the row of a coded field of specDefs: its question in each version, then its
// "Other" free text where there is one.
func codedRow(field string) fieldRow {
	key := strings.ReplaceAll(field, "[]", "")
	s := spec(key)
	r := fieldRow{field: field}
	for _, v := range []int{5, 6} {
		answers := []string{s.innerName(v)}
		if o := s.otherName(v); o != "" {
			answers = append(answers, o)
		}
		if v == 5 {
			r.v5 = answers
		} else {
			r.v6 = answers
		}
	}
	return r
}

func withNote(r fieldRow, note string) fieldRow {
	r.note = note
	return r
}

func both(field string, answers ...string) fieldRow {
	return fieldRow{field: field, v5: answers, v6: answers}
}

const (
	notePublicClient = "as the public v6 client does"
)

// fieldRows lists every input field. TestFieldTable fails when the schema has a field
// without a row, or a row names a field the schema lacks.
func fieldRows() []fieldRow {
	rows := []fieldRow{
		{field: "source", used: true, notSent5: "not sent: it names the sending system, whose code maps apply", notSent6: "same"},
		{field: "local_id", used: true, notSent5: "not sent: the incident's key in the gateway (delivery record, duplicates, amendments)", notSent6: "same"},
		{field: "revision", used: true, notSent5: "not sent: orders amendments; a higher revision is sent as a PUT of the same national record", notSent6: "same"},
		{field: "event_type", v5: []string{"AdverseEvent.type"}, v6: []string{"AdverseEvent.event", "AdverseEvent.actuality"},
			note: "codes 1 incident, 2 risk, 3 outcome, 4 good care; v5's carrier is uncertain (below); v6 also sends actuality \"actual\""},
		{field: "occurred_at", v5: []string{"AdverseEvent.date", "PreciseTime"}, v6: []string{"AdverseEvent.date", "PreciseTime"},
			note: "a date-time is sent on the UK wall clock (Europe/London) and gives PreciseTime unless occurred_estimated"},
		{field: "occurred_estimated", used: true, notSent5: "not sent as such: an estimated date sends no PreciseTime", notSent6: "same"},
		both("occurred_approximately", "ApproximateDate"),
		codedRow("time_of_day"),
		{field: "reported_at", v5: []string{"IncidentOccurredToday"}, v6: []string{"IncidentOccurredToday"}, used: true,
			note: "y when occurred_at is on the same UK date, else n; without occurred_at, not sent, and for a risk or good care it is the date ages are counted to"},
		{field: "description", v5: []string{"AdverseEvent.description"}, v6: []string{"AdverseEvent.description", "Description"}},
		both("immediate_actions", "ImmediateActions"),
		codedRow("process"),
		codedRow("detection_point"),
		codedRow("safety_challenges"),
		both("radiotherapy_incident_code", "RadiotherapyIncidentCode"),
		both("marvin_reference_number", "MarvinReferenceNumber"),
		codedRow("level_of_concern"),
		codedRow("outcome_types"),
		{field: "data_sharing_opt_out", v5: []string{"DataSharingOptOut"}, v6: []string{"DataSharingOptOut"}, note: "false when absent (the answer is mandatory)"},

		{field: "patients[].nhs_number", used: true, notSent5: "never sent: finds the patient in the EPR demographics store (docs/mapping.md, Demographics)", notSent6: "same"},
		{field: "patients[].local_patient_id", used: true, notSent5: "never sent: finds the patient in the EPR demographics store", notSent6: "same"},
		{field: "patients[].date_of_birth", v5: []string{"AgeAtTimeOfIncidentDays"}, v6: []string{"AgeAtTimeOfIncidentDays"},
			note: "never sent itself: gives the exact age at the incident's UK date; none, with a warning, for a placeholder date, a date after the event or an age over 120"},
		{field: "patients[].age_years", v5: []string{"AgeAtTimeOfIncidentDays", "AgeBracket"}, v6: []string{"AgeAtTimeOfIncidentDays", "AgeBracket"},
			note: "years×372 when there is no usable date of birth; 0 is an age; with mapping.age_encoding days, the bracket only"},
		{field: "patients[].age_bracket", v5: []string{"AgeBracket"}, v6: []string{"AgeBracket"}, note: "only when the exact age is unknown, " + notePublicClient},
		{field: "patients[].sex", v5: []string{"Gender"}, v6: []string{"GenderIdentity"},
			note: "female 1, male 2, unknown 3, other 4 (gender-5); in v6 the same codes by default, " + notePublicClient + ", a v6 code map winning"},
		{field: "patients[].gender_same_as_at_birth", v6: []string{"GenderSameAsAtBirth"}, notSent5: "not sent: v5 has no such question (warning)"},
		codedRow("patients[].ethnicity"),
		both("patients[].physical_harm", "PhysicalHarm"),
		{field: "patients[].psychological_harm", v5: []string{"PsychologicalHarm"}, v6: []string{"PsychologicalHarm"},
			note: "not sent beside fatal physical harm (warning), " + notePublicClient},
		both("patients[].clinical_outcome", "ClinicalOutcome"),
		withNote(codedRow("patients[].outcome_association"), "only beside severe or fatal physical harm or severe psychological harm (warning otherwise), "+notePublicClient),

		{field: "agents.none", v5: []string{"InvolvedAgents"}, v6: []string{"InvolvedAgents"}, note: "code 10 (none of the above) when no agent kind is given; ignored, with a warning, beside one"},
		{field: "agents.medications[].name", v5: []string{"DrugsInvolved"}, v6: []string{"DrugsInvolved"}, note: "each medication also sends InvolvedAgents 4"},
		{field: "agents.medications[].administered", notSent5: "not sent: LFPSE has no question for whether the medicine reached the patient; MedicationAdministration asks whether a device gave it (warning)", notSent6: "same"},
		{field: "agents.medications[].administered_by_device", v5: []string{"MedicationAdministration"}, v6: []string{"MedicationAdministration"},
			note: "in a contained Medication, pointed at from suspectEntity"},
		{field: "agents.medications[].vtm_code", v6: []string{"VTMCode"}, notSent5: "not sent: v5 has no dm+d question (warning)"},
		{field: "agents.medications[].vtm_name", v6: []string{"VTMString"}, notSent5: "not sent: v5 has no dm+d question (warning)"},
		{field: "agents.medications[].vmp_code", v6: []string{"VMPCode"}, notSent5: "not sent: v5 has no dm+d question (warning)"},
		{field: "agents.medications[].vmp_name", v6: []string{"VMPString"}, notSent5: "not sent: v5 has no dm+d question (warning)"},
		both("agents.medication_problem.description", "ProblemDescriptionDrugs"),
		codedRow("agents.devices[].type"),
		both("agents.device_problem.description", "ProblemDescriptionDevices"),
		both("agents.it_systems.description", "ProblemDescriptionSystemsSoftware"),
		both("agents.buildings.description", "BuildingsInfrastructureProblem"),
		both("agents.estates.description", "EstatesServicesProblem"),
		both("agents.blood.description", "BloodProblem"),
		both("agents.blood_products.details", "BloodProductsDetails"),
		both("agents.blood_products.brand", "BloodProductsBrand"),
		both("agents.blood_products.batch", "BloodProductsBatch"),
		both("agents.blood_products.description", "BloodProductsProblem"),
		both("agents.tissues.description", "ProblemDescriptionTissuesOrgans"),
		both("agents.people.involvement_description", "ProblemDescriptionInvolvement"),
		both("agents.people.actions_description", "ProblemDescriptionActions"),
		both("agents.sabre_report_number", "SabreReportNumber"),
		both("agents.shot_report_number", "ShotReportNumber"),
		both("agents.nhsbt_report_number", "NhsbtReportNumber"),
		both("agents.yellow_card_reference", "YellowCardReference"),

		codedRow("location.organisation"),
		codedRow("location.service_area"),
		codedRow("location.within_service"),
		codedRow("location.specialty"),
		codedRow("reporter.role"),
		codedRow("reporter.organisation"),
		codedRow("reporter.involvement"),

		both("risk.description", "RiskDescription"),
		codedRow("risk.themes"),
		codedRow("risk.imminent"),
		codedRow("risk.service_areas"),
		both("risk.population", "RiskPopulation"),
		codedRow("risk.timeframe"),
		codedRow("risk.location_at_risk"),

		both("good_care.strengths", "StrengthsOfCare"),
		both("good_care.how_future_occurrence", "HowFutureOccurrence"),
		codedRow("good_care.detection_factor"),
		both("good_care.went_well", "WentWell"),

		both("governance.never_event", "NeverEvent"),
		codedRow("governance.never_event_type"),
		both("governance.serious_incident", "SeriousIncident"),
		both("governance.duty_of_candour", "DutyOfCandour"),
		both("governance.cqc_notify", "CqcNotify"),
		codedRow("governance.cqc_criteria"),
		both("governance.local_authority_safeguarding", "LocalAuthoritySafeguarding"),
		both("governance.hsib_notify", "HsibNotify"),
		both("governance.mental_health_act_designation", "DesignationsMentalHealth"),
		both("governance.deprivation_of_liberty", "DeprivationOfLiberty"),
	}
	have := map[string]bool{}
	for _, r := range rows {
		have[r.field] = true
	}
	// The agent problem lists are all coded fields of specDefs.
	for _, d := range specDefs {
		f := d.key
		for _, arr := range []string{"patients", "agents.medications", "agents.devices"} {
			if strings.HasPrefix(f, arr+".") {
				f = arr + "[]" + strings.TrimPrefix(f, arr)
			}
		}
		if !have[f] && strings.HasPrefix(f, "agents.") {
			rows = append(rows, codedRow(f))
			have[f] = true
		}
	}
	for i, r := range rows {
		if r.field == "agents.people.actions_by" || strings.HasSuffix(r.field, ".types") {
			rows[i].note = "in adverse-event-agent, beside the agent kind in InvolvedAgents"
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].field < rows[j].field })
	return rows
}

// schemaLeaves returns the path of every field of docs/incident.schema.json that holds a
// value (not an object or an array of objects), arrays written "[]".
func schemaLeaves(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(node map[string]any, path string)
	walk = func(node map[string]any, path string) {
		switch node["type"] {
		case "object":
			props, _ := node["properties"].(map[string]any)
			for k, v := range props {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(v.(map[string]any), p)
			}
		case "array":
			if items, _ := node["items"].(map[string]any); items["type"] == "object" {
				walk(items, path+"[]")
				return
			}
			out = append(out, path)
		default:
			out = append(out, path)
		}
	}
	walk(schema, "")
	sort.Strings(out)
	return out
}

// TestFieldTable walks the incident's JSON schema and fails when a field has no row in the
// field table, and keeps the table in docs/mapping.md equal to fieldRows; -update rewrites
// it. Every answer a row names must exist in that taxonomy version.
func TestFieldTable(t *testing.T) {
	rows := fieldRows()
	byField := map[string]fieldRow{}
	for _, r := range rows {
		byField[r.field] = r
	}
	leaves := schemaLeaves(t)
	for _, f := range leaves {
		if _, ok := byField[f]; !ok {
			t.Errorf("docs/incident.schema.json field %s has no row in the field table (fieldRows in fhir/fieldtable_test.go)", f)
		}
	}
	for _, r := range rows {
		if !containsString(leaves, r.field) {
			t.Errorf("row %s names no field of docs/incident.schema.json", r.field)
		}
		for v, answers := range map[int][]string{5: r.v5, 6: r.v6} {
			for _, a := range answers {
				if _, _, ok := answerWording(v, a); !ok && !strings.HasPrefix(a, "AdverseEvent.") {
					t.Errorf("row %s: v%d has no answer %s", r.field, v, a)
				}
			}
			if len(answers) == 0 && r.notSent(v) == "" {
				t.Errorf("row %s: v%d sends nothing and says not why", r.field, v)
			}
		}
	}
	const doc = "../docs/mapping.md"
	const begin, end = "<!-- field table: begin (go test ./fhir -run TestFieldTable -update) -->\n", "<!-- field table: end -->\n"
	raw, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the field table markers %q and %q", doc, begin, end)
	}
	want := text[:i+len(begin)] + fieldTableMarkdown(rows) + text[j:]
	if *update {
		if err := os.WriteFile(doc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(want, text); diff != "" {
		t.Errorf("%s field table is stale (-want +got); run go test ./fhir -run TestFieldTable -update:\n%s", doc, diff)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r fieldRow) notSent(v int) string {
	if v == 5 {
		return r.notSent5
	}
	if r.notSent6 == "same" {
		return r.notSent5
	}
	return r.notSent6
}

// answerWording finds an answer's extension id and the taxonomy's definition of it in a
// version. v6 fields psgw knows only from the public v6 client have no published wording.
func answerWording(version int, name string) (ext, definition string, ok bool) {
	tax := taxonomy.V5()
	if version == 6 {
		tax = taxonomy.V6()
	}
	for _, r := range tax.Resources() {
		for _, e := range r.Extensions {
			if f, found := e.Field(name); found {
				def := f.Definition
				if def == "" && version == 6 {
					// v6 fields v5 lacks: the wording of their v5 forerunner, where there is one.
					if f5, _, ok := v5Counterpart(name); ok {
						def = f5
					}
				}
				return e.ID, def, true
			}
		}
	}
	return "", "", false
}

// v5Counterpart is the v5 definition of a field v6 renamed or split.
func v5Counterpart(v6Name string) (string, string, bool) {
	v5 := map[string]string{"HealthcareProcess": "Process", "GenderIdentity": "Gender"}[v6Name]
	if v5 == "" {
		return "", "", false
	}
	_, def, ok := answerWording(5, v5)
	return def + " (v5 " + v5 + "'s wording)", v5, ok
}

var elementWording = map[string]string{
	"AdverseEvent.date":        "FHIR AdverseEvent.date: when the event occurred",
	"AdverseEvent.description": "FHIR AdverseEvent.description",
	"AdverseEvent.type":        "FHIR STU3 AdverseEvent.type `coding[0].code`",
	"AdverseEvent.event":       "FHIR R4 AdverseEvent.event `coding[0].code`",
	"AdverseEvent.actuality":   "FHIR R4 AdverseEvent.actuality",
}

func answersMarkdown(version int, answers []string, notSent string) string {
	if len(answers) == 0 {
		return notSent
	}
	parts := make([]string, len(answers))
	for i, a := range answers {
		if w, ok := elementWording[a]; ok {
			parts[i] = w
			continue
		}
		ext, def, _ := answerWording(version, a)
		if def == "" {
			def = "wording not published to psgw; seen in the public v6 client"
		}
		parts[i] = fmt.Sprintf("`%s` (%s): %q", a, strings.TrimSuffix(strings.TrimSuffix(ext, "-5"), "-6"), def)
	}
	return strings.Join(parts, "; ")
}

func fieldTableMarkdown(rows []fieldRow) string {
	var b strings.Builder
	b.WriteString("| input field | v5: LFPSE question (taxonomy wording) | v6 | notes |\n|---|---|---|---|\n")
	for _, r := range rows {
		v5 := answersMarkdown(5, r.v5, r.notSent(5))
		v6 := answersMarkdown(6, r.v6, r.notSent(6))
		if v6 == v5 || (slicesEqual(r.v5, r.v6) && len(r.v5) > 0 && v6 != "") && sameWording(r.v5) {
			v6 = "same"
		}
		note := r.note
		if r.used && note == "" {
			note = "used by psgw"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.field, cell(v5), cell(v6), cell(note))
	}
	return b.String()
}

// sameWording reports whether v6 has every answer under the same name with v5's wording.
func sameWording(answers []string) bool {
	for _, a := range answers {
		_, d5, _ := answerWording(5, a)
		_, d6, ok := answerWording(6, a)
		if !ok || d5 != d6 {
			if _, isElement := elementWording[a]; !isElement {
				return false
			}
		}
	}
	return true
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
