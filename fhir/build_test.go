package fhir

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/psgw/psgw/fhir/taxonomy"
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
		{"2001-12-31", "2025-03-14", 23, 2, 11, 23*372 + 2*31 + 11, 8474, "8"},
		// A monthly anniversary the month lacks: days never go negative.
		{"2025-01-31", "2025-03-01", 0, 0, 29, 29, 29, "3"},
		{"2025-01-30", "2025-03-01", 0, 0, 30, 30, 30, "3"},
		{"2025-01-31", "2025-03-03", 0, 1, 0, 31, 31, "3"},
		{"2024-01-31", "2024-03-01", 0, 0, 30, 30, 30, "3"},
		{"2024-01-31", "2024-03-02", 0, 1, 0, 31, 31, "3"},
		{"2023-12-31", "2025-03-01", 1, 1, 29, 372 + 31 + 29, 426, "4"},
		// Born on the incident's date: age zero.
		{"2025-03-14", "2025-03-14", 0, 0, 0, 0, 0, "1"},
	}
	for _, tt := range tests {
		y, m, dd := AgeYMD(d(tt.dob), d(tt.at))
		if y != tt.y || m != tt.m || dd != tt.dd {
			t.Errorf("AgeYMD(%s, %s) = %d y %d m %d d, want %d y %d m %d d", tt.dob, tt.at, y, m, dd, tt.y, tt.m, tt.dd)
		}
		if got := d(tt.dob).AddDate(y, m, dd); !got.Equal(d(tt.at)) {
			t.Errorf("AgeYMD(%s, %s): dob + %d y %d m %d d is %s, want %s", tt.dob, tt.at, y, m, dd, got.Format(time.DateOnly), tt.at)
		}
		if got := EncodeAge(AgeLFPSE372, y, m, dd, d(tt.dob), d(tt.at)); got != tt.lfpse {
			t.Errorf("lfpse372 age for %s at %s: got %d, want %d", tt.dob, tt.at, got, tt.lfpse)
		}
		if got := EncodeAge(AgeDays, y, m, dd, d(tt.dob), d(tt.at)); got != tt.days {
			t.Errorf("days age for %s at %s: got %d, want %d", tt.dob, tt.at, got, tt.days)
		}
		if got := AgeBracket(y, AgeInDays(d(tt.dob), d(tt.at))); got != tt.bracket {
			t.Errorf("bracket for %s at %s: got %s, want %s", tt.dob, tt.at, got, tt.bracket)
		}
	}
}

// TestAgeYMDNeverNegative walks every birth date of four years against every incident date
// of the following years' worth of days: the parts of an age are never negative, add back
// up to the incident's date, and days stay under a month.
func TestAgeYMDNeverNegative(t *testing.T) {
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	for b := 0; b < 4*366; b += 3 {
		dob := start.AddDate(0, 0, b)
		for a := 0; a < 800; a++ {
			at := dob.AddDate(0, 0, a)
			y, m, dd := AgeYMD(dob, at)
			if y < 0 || m < 0 || m > 11 || dd < 0 || dd > 30 {
				t.Fatalf("AgeYMD(%s, %s) = %d y %d m %d d", dob.Format(time.DateOnly), at.Format(time.DateOnly), y, m, dd)
			}
			if got := dob.AddDate(y, m, dd); !got.Equal(at) {
				t.Fatalf("AgeYMD(%s, %s) = %d y %d m %d d, which adds up to %s", dob.Format(time.DateOnly), at.Format(time.DateOnly), y, m, dd, got.Format(time.DateOnly))
			}
		}
	}
}

// TestAgeBracketBoundaries checks both sides of every boundary of age-brackets-5.
func TestAgeBracketBoundaries(t *testing.T) {
	tests := []struct {
		years, days int
		want        string
	}{
		{0, 0, "1"}, {0, 14, "1"},
		{0, 15, "2"}, {0, 28, "2"},
		{0, 29, "3"}, {0, 30, "3"}, {0, 31, "3"}, {0, 365, "3"},
		{1, 0, "4"}, {4, 0, "4"},
		{5, 0, "5"}, {9, 0, "5"},
		{10, 0, "6"}, {15, 0, "6"},
		{16, 0, "7"}, {17, 0, "7"},
		{18, 0, "8"}, {25, 0, "8"},
		{26, 0, "9"}, {45, 0, "9"},
		{46, 0, "10"}, {65, 0, "10"},
		{66, 0, "11"}, {85, 0, "11"},
		{86, 0, "12"}, {150, 0, "12"},
		{0, -1, ""}, {-1, 0, ""},
	}
	vs, ok := taxonomy.V5().ValueSet("age-brackets-5")
	if !ok {
		t.Fatal("no value set age-brackets-5")
	}
	for _, tt := range tests {
		got := AgeBracket(tt.years, tt.days)
		if got != tt.want {
			t.Errorf("AgeBracket(%d y, %d d) = %q, want %q", tt.years, tt.days, got, tt.want)
		}
		if got != "" && !vs.Has(got) {
			t.Errorf("AgeBracket(%d y, %d d) = %q, not in age-brackets-5", tt.years, tt.days, got)
		}
	}
}

// TestAgeAcrossTimeZones maps an incident written late in the evening west of UTC, whose UK
// calendar date is the day after its date as written: the age is counted to the UK date, a
// patient born after it gets no age and a warning (never a negative age), and the exact age
// goes without a bracket.
func TestAgeAcrossTimeZones(t *testing.T) {
	const occurred = "2025-01-01T23:30:00-05:00" // 04:30 GMT on 2 January
	for _, tt := range []struct {
		dob      string
		wantAge  int
		wantWarn string
	}{
		{"2025-01-03", -1, "patients[0].date_of_birth: no age sent: it is after the date of the event"},
		{"2025-01-02", 0, ""},
		{"2025-01-01", 1, ""},
	} {
		t.Run(tt.dob, func(t *testing.T) {
			in := &Incident{Source: "datix", LocalID: "A1", EventType: EventIncident, OccurredAt: occurred,
				Description: "Fall", Patients: []Patient{{DateOfBirth: tt.dob}}}
			for _, v := range []int{5, 6} {
				for _, enc := range []string{AgeLFPSE372, AgeDays} {
					res := (&Builder{Version: v, AgeEncoding: enc}).Build(in)
					if len(res.Problems) > 0 {
						t.Fatalf("v%d %s: got problems %v", v, enc, res.Problems)
					}
					var warns []string
					for _, w := range res.Warnings {
						warns = append(warns, w.String())
					}
					if want := []string{tt.wantWarn}; tt.wantWarn != "" && !slices.Equal(warns, want) || tt.wantWarn == "" && len(warns) > 0 {
						t.Errorf("v%d %s: got warnings %q, want %q", v, enc, warns, tt.wantWarn)
					}
					age, bracket := patientAge(t, res.Resource)
					if age != tt.wantAge || bracket != "" {
						t.Errorf("v%d %s: got age %d bracket %q, want %d and no bracket", v, enc, age, bracket, tt.wantAge)
					}
				}
			}
		})
	}
}

// patientAge returns the first patient's AgeAtTimeOfIncidentDays and AgeBracket.
func patientAge(t *testing.T, ae *AdverseEvent) (age int, bracket string) {
	t.Helper()
	age = -1
	for _, c := range ae.Contained {
		if c.ResourceType != "Patient" {
			continue
		}
		for _, f := range c.Extension[0].Extension {
			switch {
			case f.Url == "AgeAtTimeOfIncidentDays" && f.ValueInteger != nil:
				age = *f.ValueInteger
			case f.Url == "AgeBracket" && f.ValueCode != nil:
				bracket = *f.ValueCode
			}
		}
	}
	return age, bracket
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
