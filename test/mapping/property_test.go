package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/fhir/taxonomy"
)

// TestAcceptedIncidentsReachTheNationalService is the mapping's property: any incident that
// passes ingest and validation maps to a payload the simulator accepts and that holds none of
// the incident's identifiers. Incidents are generated from a fixed seed.
func TestAcceptedIncidentsReachTheNationalService(t *testing.T) {
	n := newNational(t)
	rng := rand.New(rand.NewPCG(1, 2))
	iterations := 1500
	if testing.Short() {
		iterations = 200
	}
	accepted := 0
	for i := range iterations {
		version := 5 + i%2
		data := randomIncident(rng, i)
		if checkIncident(t, n, version, data) {
			accepted++
		}
	}
	t.Logf("%d of %d generated incidents were valid and accepted", accepted, iterations)
	if accepted < iterations/4 {
		t.Errorf("got %d valid incidents of %d, want at least a quarter: the generator is too wild", accepted, iterations)
	}
}

// FuzzMapping checks the same property on arbitrary bytes, seeded with the golden inputs.
func FuzzMapping(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*", "input.json"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data, true)
		}
	}
	n := newNational(f)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		n.t = t
		version := 5
		if v6 {
			version = 6
		}
		checkIncident(t, n, version, data)
	})
}

// checkIncident maps one incident and, when it is valid, sends it; it reports whether it was.
func checkIncident(t testing.TB, n *national, version int, data []byte) bool {
	t.Helper()
	in, problems := fhir.ParseIncident(data, fhir.ParseOptions{Now: now})
	if len(problems) > 0 {
		return false
	}
	ids := identifiers(in)
	b := &fhir.Builder{Version: version, Codes: fhir.NewCodeMaps(version, codeMaps)}
	prep := b.Prepare(in)
	// The misspelt fields randomIncident adds are named in warnings, whatever the outcome.
	for _, field := range misspelt(data) {
		if !slices.ContainsFunc(prep.Warnings, func(w fhir.Warning) bool { return w.Field == field }) {
			t.Fatalf("misspelt field %s is not named in a warning: %v", field, prep.Warnings)
		}
	}
	if len(prep.Problems) > 0 {
		if prep.Payload != nil {
			t.Fatalf("got a payload and %d problems, want one or the other", len(prep.Problems))
		}
		return false
	}
	var doc map[string]any
	if err := json.Unmarshal(prep.Payload, &doc); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
	if f := privacy.Check(doc); len(f) > 0 {
		t.Fatalf("payload holds identifiers: %v", f)
	}
	text := string(prep.Payload)
	for _, id := range ids {
		if strings.Contains(text, id) {
			t.Fatalf("payload holds a patient identifier (%d characters long)", len(id))
		}
	}
	if status, body := n.post(prep.Payload); status != 201 {
		t.Fatalf("valid payload (v%d) refused: status %d: %s", version, status, body)
	}
	return true
}

// identifiers are the strings of an incident that must never leave the gateway. Dates of
// birth are only distinctive with their day, so short or date-like values that the payload
// may hold for other reasons (the incident date) are left to privacy.Check.
func identifiers(in *fhir.Incident) []string {
	var out []string
	for _, p := range in.Patients {
		if p.NHSNumber != "" {
			out = append(out, p.NHSNumber)
		}
		if len(p.LocalPatientID) >= 6 {
			out = append(out, p.LocalPatientID)
		}
		if p.DateOfBirth != "" && !strings.HasPrefix(in.OccurredAt, p.DateOfBirth) && !strings.HasPrefix(in.ReportedAt, p.DateOfBirth) {
			out = append(out, p.DateOfBirth)
		}
	}
	return out
}

// nhsNumbers are valid Modulus 11 numbers.
var nhsNumbers = []string{"9434765919", "9434765870", "4010232137", "9990000018"}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// codeOf picks a code of a v5 value set, or a mapped local code, or a label.
func codeOf(rng *rand.Rand, vs string, local ...string) string {
	set, _ := taxonomy.V5().ValueSet(vs)
	switch r := rng.IntN(10); {
	case r < 6:
		return pick(rng, set.Codes).Code
	case r < 8 && len(local) > 0:
		return pick(rng, local)
	case r < 9:
		return pick(rng, set.Codes).Display
	default:
		return "LOCAL-" + fmt.Sprint(rng.IntN(5)) // unmapped: Other or quarantine
	}
}

func codesOf(rng *rand.Rand, vs string, max int) []string {
	out := make([]string, rng.IntN(max+1))
	for i := range out {
		out[i] = codeOf(rng, vs)
	}
	return out
}

func maybe(rng *rand.Rand, s string) string {
	if rng.IntN(2) == 0 {
		return ""
	}
	return s
}

func freeText(rng *rand.Rand) string {
	parts := []string{"Patient found on floor", "dose given late", "café", "NHS no " + pick(rng, nhsNumbers), "see 943 476 5919", "plain words", "«quoted»", "ref 12345"}
	return pick(rng, parts) + "; " + pick(rng, parts)
}

// randomIncident builds an incident of a random event type with random answers.
func randomIncident(rng *rand.Rand, i int) []byte {
	et := pick(rng, []string{"incident", "risk", "outcome", "good_care"})
	occurred := fmt.Sprintf("2025-0%d-1%dT0%d:15:00Z", 1+rng.IntN(5), rng.IntN(9), rng.IntN(10))
	in := map[string]any{
		"source": "datix", "local_id": fmt.Sprintf("P-%d", i), "event_type": et,
		"occurred_at": occurred, "description": freeText(rng),
		"immediate_actions": maybe(rng, freeText(rng)),
		"time_of_day":       maybe(rng, codeOf(rng, "time-of-incident-brackets-5", "DAY", "NIGHT")),
		"process":           maybe(rng, codeOf(rng, "healthcare-process-5", "TREAT")),
		"detection_point":   maybe(rng, codeOf(rng, "detection-points-5", "DIRECT")),
		"level_of_concern":  maybe(rng, codeOf(rng, "worry-scale-5")),
		"location": map[string]any{
			"organisation":   pick(rng, []string{"RRK", "Z01", "ZZZ99", ""}),
			"service_area":   maybe(rng, codeOf(rng, "service-type-5", "ACUTE", "MH")),
			"within_service": maybe(rng, codeOf(rng, "incident-location-5", "WARD")),
			"specialty":      maybe(rng, codeOf(rng, "specialty-5", "CARDIO")),
		},
		"reporter": map[string]any{
			"role":         maybe(rng, codeOf(rng, "staff-type-5", "RN", "HCA")),
			"organisation": maybe(rng, "RRK"),
			"involvement":  maybe(rng, codeOf(rng, "reporter-relationship-to-event-5", "WIT")),
		},
	}
	if rng.IntN(3) == 0 {
		in["safety_challenges"] = append(codesOf(rng, "safety-challenges-5", 2), "6")
	}
	if et == "outcome" {
		in["outcome_types"] = codesOf(rng, "outcome-type-5", 2)
	}
	if et == "risk" || rng.IntN(5) == 0 {
		in["risk"] = map[string]any{"description": freeText(rng), "imminent": pick(rng, []string{"yes", "no", "u"}),
			"themes": codesOf(rng, "risk-themes-5", 2), "timeframe": maybe(rng, codeOf(rng, "risk-timeframes-5"))}
	}
	if et == "good_care" || rng.IntN(5) == 0 {
		in["good_care"] = map[string]any{"strengths": freeText(rng), "how_future_occurrence": freeText(rng),
			"detection_factor": maybe(rng, codeOf(rng, "reporter-relationship-to-event-5"))}
	}
	if rng.IntN(4) == 0 {
		t := true
		in["governance"] = map[string]any{"never_event": t, "never_event_type": codeOf(rng, "never-event-type-5"), "duty_of_candour": rng.IntN(2) == 0}
	}
	var patients []any
	for range rng.IntN(4) {
		p := map[string]any{
			"nhs_number": maybe(rng, pick(rng, nhsNumbers)), "local_patient_id": maybe(rng, fmt.Sprintf("MRN%06d", rng.IntN(1e6))),
			"date_of_birth":    maybe(rng, fmt.Sprintf("19%02d-0%d-2%d", rng.IntN(100), 1+rng.IntN(9), rng.IntN(8))),
			"sex":              maybe(rng, pick(rng, []string{"female", "male", "other", "unknown"})),
			"ethnicity":        maybe(rng, codeOf(rng, "ethnicity-5", "WBRI", "A", "R")),
			"physical_harm":    maybe(rng, pick(rng, []string{"none", "low", "moderate", "severe", "fatal"})),
			"clinical_outcome": maybe(rng, freeText(rng)),
		}
		patients = append(patients, p)
	}
	in["patients"] = patients
	if rng.IntN(2) == 0 {
		in["agents"] = map[string]any{
			"medications":        []any{map[string]any{"name": "Drug " + fmt.Sprint(rng.IntN(9)), "administered": pick(rng, []string{"yes", "no", ""}), "administered_by_device": pick(rng, []string{"yes", "no", ""}), "vmp_code": maybe(rng, "323509004")}},
			"medication_problem": map[string]any{"factors": codesOf(rng, "drugs-involved-5", 2), "processes": codesOf(rng, "involved-processes-5", 2)},
			"devices":            []any{map[string]any{"type": codeOf(rng, "device-type-5", "PUMP")}},
			"buildings":          map[string]any{"types": codesOf(rng, "buildings-or-infrastructure-5", 2)},
			"blood":              map[string]any{"factors": codesOf(rng, "blood-involved-5", 2)},
			"people":             map[string]any{"actions_by": codesOf(rng, "human-agents-5", 2)},
		}
	}
	if rng.IntN(5) == 0 {
		in["Severity"] = "high"
		if len(patients) > 0 {
			patients[0].(map[string]any)["physicalHarm"] = "severe"
		}
	}
	data, _ := json.Marshal(in)
	return data
}

// misspelt returns the paths of the misspelt fields randomIncident may add.
func misspelt(data []byte) []string {
	var doc struct {
		Patients []map[string]any `json:"patients"`
	}
	var out []string
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	if bytes.Contains(data, []byte(`"Severity"`)) {
		out = append(out, "Severity")
	}
	if len(doc.Patients) > 0 {
		if _, ok := doc.Patients[0]["physicalHarm"]; ok {
			out = append(out, "patients[0].physicalHarm")
		}
	}
	return out
}
