package fhir

import (
	"os"
	"testing"
	"time"
)

// TestSpecs builds every field spec, so a taxonomy mismatch fails here, not in production.
func TestSpecs(t *testing.T) {
	for _, d := range specDefs {
		s := spec(d.key)
		if s.vs == nil {
			t.Errorf("%s: no value set", d.key)
		}
	}
	if got := spec("reporter.role"); got.other != "ReporterRoleOther" || got.otherCode != "9" {
		t.Errorf("reporter.role: got other %q code %q, want ReporterRoleOther 9", got.other, got.otherCode)
	}
	if got := spec("location.service_area"); got.other != "" {
		t.Errorf("location.service_area: got other %q, want none", got.other)
	}
}

func TestAge(t *testing.T) {
	d := func(s string) time.Time { v, _ := ParseDate(s); return v }
	tests := []struct {
		dob, at     string
		y, m, dd    int
		lfpse, days int
		bracket     string
	}{
		{"1975-03-14", "2025-03-14", 50, 0, 0, 18600, 18263, "10"},
		{"2022-01-09", "2025-03-14", 3, 2, 5, 1183, 1160, "4"},
		{"2025-03-01", "2025-03-14", 0, 0, 13, 13, 13, "1"},
		{"2024-02-29", "2025-02-28", 0, 11, 30, 371, 365, "3"},
	}
	for _, tt := range tests {
		y, m, dd := AgeYMD(d(tt.dob), d(tt.at))
		if y != tt.y || m != tt.m || dd != tt.dd {
			t.Errorf("AgeYMD(%s, %s) = %d y %d m %d d, want %d y %d m %d d", tt.dob, tt.at, y, m, dd, tt.y, tt.m, tt.dd)
		}
		if got := EncodeAge(AgeLFPSE372, y, m, dd, d(tt.dob), d(tt.at)); got != tt.lfpse {
			t.Errorf("lfpse372 age for %s: got %d, want %d", tt.dob, got, tt.lfpse)
		}
		if got := EncodeAge(AgeDays, y, m, dd, d(tt.dob), d(tt.at)); got != tt.days {
			t.Errorf("days age for %s: got %d, want %d", tt.dob, got, tt.days)
		}
		if got := AgeBracket(y, m, dd); got != tt.bracket {
			t.Errorf("bracket for %s: got %s, want %s", tt.dob, got, tt.bracket)
		}
	}
}

func TestCodeMaps(t *testing.T) {
	m := NewCodeMaps(6, SourceCodeMaps{"s": {"reporter.role": {"*": {"RN": "5", "X": "1"}, "6": {"X": "2"}, "5": {"Y": "3"}}}})
	for _, tt := range []struct {
		value, want string
		ok          bool
	}{{"RN", "5", true}, {"rn", "5", true}, {"X", "2", true}, {"Y", "", false}} {
		if got, ok := m.Code("s", "reporter.role", tt.value); got != tt.want || ok != tt.ok {
			t.Errorf("Code(%q) = %q, %v; want %q, %v", tt.value, got, ok, tt.want, tt.ok)
		}
	}
	ps := CheckCodeMaps(SourceCodeMaps{"s": {
		"reporter.role": {"*": {"RN": "55"}, "7": {}},
		"reporter.rank": {"*": {"RN": "5"}},
	}})
	if len(ps) != 3 {
		t.Fatalf("got %d problems, want 3: %v", len(ps), ps)
	}
}

func TestIncidentFromRecord(t *testing.T) {
	cols := map[string]string{"local_id": "Ref", "patient.sex": "Sex", "safety_challenges": "SC", "governance.never_event": "NE", "nope": "X", "description": "Missing"}
	data, ps := IncidentFromRecord("s", cols, []string{"\ufeffRef", "Sex", "SC", "NE"}, []string{"A1", "female", "1; 2", "yes"})
	if len(ps) != 2 {
		t.Errorf("got problems %v, want 2 (unknown field, missing column)", ps)
	}
	want := `{"governance":{"never_event":true},"local_id":"A1","patients":[{"sex":"female"}],"safety_challenges":["1","2"],"source":"s"}`
	if string(data) != want {
		t.Errorf("got %s, want %s", data, want)
	}
}

// TestBuildNeverPanics maps incidents that skipped ParseIncident, as a careless caller might.
func TestBuildNeverPanics(t *testing.T) {
	age := -3
	for _, in := range []*Incident{
		{},
		{EventType: "x", Patients: []Patient{{DateOfBirth: "bad", AgeYears: &age, Sex: "??"}}},
		{EventType: EventRisk, Risk: &Risk{}, GoodCare: &GoodCare{}, Agents: &Agents{Medications: []Medication{{}}, Devices: []Device{{}}}},
	} {
		for _, v := range []int{5, 6} {
			prep := (&Builder{Version: v}).Prepare(in)
			if prep.Payload != nil && len(prep.Problems) > 0 {
				t.Errorf("v%d: got a payload and problems", v)
			}
		}
	}
}

// BenchmarkPrepare maps and checks the worked example, as the mapper does per incident.
func BenchmarkPrepare(b *testing.B) {
	data, err := os.ReadFile("testdata/worked-example-v5/input.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []int{5, 6} {
		bl := &Builder{Version: v, Codes: NewCodeMaps(v, goldenCodeMaps)}
		b.Run("v"+string(rune('0'+v)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				in, ps := ParseIncident(data, ParseOptions{Now: goldenNow})
				if len(ps) > 0 {
					b.Fatal(ps)
				}
				if prep := bl.Prepare(in); prep.Payload == nil {
					b.Fatal(prep.Problems)
				}
			}
		})
	}
}
