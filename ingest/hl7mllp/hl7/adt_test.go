package hl7

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExtractADT(t *testing.T) {
	utc := func(y, mo, d, h, mi, s int) time.Time { return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC) }
	nhs := func(n string) PatientIDs { return PatientIDs{NHSNumber: n} }
	tests := []struct {
		name string
		msg  []byte
		want ADT
	}{
		{"A01 v2.3", msgA01v23, ADT{
			Event: "A01", ControlID: "MSG00001", Names: []string{"SMITH", "JANE", "ANN"}, RecordedAt: utc(2024, 3, 15, 10, 29, 55),
			Patient:     PatientIDs{NHSNumber: "9434765919", LocalIDs: []LocalID{{ID: "RGT1234567", Authority: "RGT", Type: "MR"}}},
			DateOfBirth: "1965-04-12", Sex: "female", Ethnicity: "A", Location: "WARD7",
		}},
		{"A02 v2.4", msgA02v24, ADT{
			Event: "A02", ControlID: "MSG00002", Names: []string{"SMITH", "JANE"}, RecordedAt: utc(2024, 3, 16, 9, 14, 55),
			Patient:     PatientIDs{NHSNumber: "9434765919", LocalIDs: []LocalID{{ID: "RGT1234567", Authority: "RGT", Type: "MR"}}},
			DateOfBirth: "1965-04-12", Sex: "female", Location: "WARD9",
		}},
		{"A03 v2.5", msgA03v25, ADT{
			Event: "A03", ControlID: "MSG00003", Names: []string{"SMITH", "JANE"}, RecordedAt: utc(2024, 3, 20, 13, 59, 0),
			Patient: nhs("9434765919"), DateOfBirth: "1965-04-12", Sex: "female", Discharged: true,
		}},
		{"A04 v2.5 EVN-2 in MSH-7 offset", msgA04v25, ADT{
			Event: "A04", ControlID: "MSG00004", Names: []string{"O'NEIL", "PAT"}, RecordedAt: time.Date(2024, 4, 1, 7, 59, 0, 0, time.FixedZone("", 3600)),
			Patient:     PatientIDs{LocalIDs: []LocalID{{ID: "RGT7654321", Authority: "RGT", Type: "MR"}}},
			DateOfBirth: "2001-12-31", Sex: "unknown", Ethnicity: "Z", Location: "OPD2",
		}},
		{"A05 v2.3 partial date of birth", msgA05v23, ADT{
			Event: "A05", ControlID: "MSG00005", Names: []string{"DOE", "JOHN"}, RecordedAt: utc(2024, 4, 2, 11, 59, 59),
			Patient: nhs("4010232137"), Sex: "male", Location: "SURG1",
			Warnings: []string{"PID-7: partial date ignored"},
		}},
		{"A08 v2.4 Latin-1 invalid date", msgA08v24, ADT{
			Event: "A08", ControlID: "MSG00006", Names: []string{"CLÉMENT", "ANÏS"}, RecordedAt: utc(2024, 4, 3, 10, 10, 0),
			Patient: nhs("9434765870"), Sex: "female", Ethnicity: "H", Location: "WARD3",
			Warnings: []string{"PID-7: invalid date ignored"},
		}},
		{"A28 v2.5 unknown sex code", msgA28v25, ADT{
			Event: "A28", ControlID: "MSG00007", Names: []string{"SMITH", "JANE"}, RecordedAt: utc(2024, 4, 4, 9, 0, 0),
			Patient:     PatientIDs{NHSNumber: "9434765919", LocalIDs: []LocalID{{ID: "RGT1234567", Authority: "RGT", Type: "MR"}}},
			DateOfBirth: "1965-04-12", Sex: "unknown",
			Warnings: []string{"PID-8: unrecognised code read as unknown"},
		}},
		{"A31 v2.5", msgA31v25, ADT{
			Event: "A31", ControlID: "MSG00008", Names: []string{"SMITH", "JANE"}, RecordedAt: utc(2024, 4, 5, 8, 59, 59),
			Patient: nhs("9434765919"), DateOfBirth: "1965-04-12", Sex: "female", Ethnicity: "B",
		}},
		{"A40 v2.5", msgA40v25, ADT{
			Event: "A40", ControlID: "MSG00009", Names: []string{"SMITH", "JANE"}, RecordedAt: utc(2024, 4, 6, 9, 59, 59),
			Patient:     PatientIDs{NHSNumber: "9434765919", LocalIDs: []LocalID{{ID: "RGT1234567", Authority: "RGT", Type: "MR"}}},
			DateOfBirth: "1965-04-12", Sex: "female",
			MergedFrom: &PatientIDs{NHSNumber: "4010232137", LocalIDs: []LocalID{{ID: "RGT7777777", Authority: "RGT", Type: "MR"}}},
		}},
		{"A01 custom delimiters", msgCustom, ADT{
			Event: "A01", ControlID: "MSG00010", Names: []string{"SMITH@JONES", "ANNA"}, RecordedAt: utc(2024, 4, 7, 10, 14, 0),
			Patient:     PatientIDs{NHSNumber: "9434765870", LocalIDs: []LocalID{{ID: "X99#1", Authority: "RGT", Type: "MR"}}},
			DateOfBirth: "1980-01-01", Sex: "female", Location: "WARD!1",
		}},
		{"trigger only in EVN-1", join(
			`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT|M1|P|2.3`,
			`EVN|A08|bad-time`,
			`PID|1||9434765919^^^NHS^NH||X^Y||19650412000000|O`,
		), ADT{
			Event: "A08", ControlID: "M1", Names: []string{"X", "Y"}, RecordedAt: utc(2024, 3, 15, 10, 30, 0),
			Patient: nhs("9434765919"), DateOfBirth: "1965-04-12", Sex: "other",
			Warnings: []string{"EVN-2: invalid timestamp, MSH-7 used"},
		}},
		{"nulls and no EVN", join(
			`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A08|M2|P|2.4`,
			`PID|1||""~9434765919^^^nhs^nh~^^^RGT^MR||X^Y||""|""|||||||||||||""`,
			`PV1|1|I|""`,
		), ADT{
			Event: "A08", ControlID: "M2", Names: []string{"X", "Y"}, RecordedAt: utc(2024, 3, 15, 10, 30, 0), Patient: nhs("9434765919"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExtractADT(mustParse(t, tt.msg))
			if err != nil {
				t.Fatalf("ExtractADT: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractADTErrors(t *testing.T) {
	const head = `MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A01|M1|P|2.5`
	tests := []struct {
		name      string
		msg       []byte
		wantUnsup bool
		wantSeg   string
		wantField int
		wantText  string
	}{
		{"ORU", join(`MSH|^~\&|LAB|RGT|PSGW|RGT|20240315103000||ORU^R01|M1|P|2.5`, `PID|1||9434765919^^^NHS^NH`), true, "", 0, "ORU^R01"},
		{"A17", join(`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A17|M1|P|2.5`, `PID|1||9434765919^^^NHS^NH`), true, "", 0, "ADT^A17"},
		{"ACK", join(`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ACK|M1|P|2.5`, `MSA|AA|X`), true, "", 0, "ACK^?"},
		{"free text type", join(`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||JANE SMITH^9434765919|M1|P|2.5`), true, "", 0, "?^?"},
		{"no PID", join(head, `EVN||20240315103000`), false, "PID", 0, "segment required"},
		{"no identifier", join(head, `PID|1||^^^NHS^NH||SMITH^JANE`), false, "PID", 3, "no patient identifier"},
		{"empty PID-3", join(head, `PID|1`), false, "PID", 3, "no patient identifier"},
		{"NHS number fails check", join(head, `PID|1||9434765918^^^NHS^NH`), false, "PID", 3, "NHS number fails the Modulus 11 check"},
		{"NHS number check digit 10", join(head, `PID|1||1000000010^^^NHS^NH`), false, "PID", 3, "NHS number fails the Modulus 11 check"},
		{"NHS number short", join(head, `PID|1||943476591^^^NHS^NH`), false, "PID", 3, "NHS number must be 10 digits"},
		{"NHS number with spaces", join(head, `PID|1||943 476 5919^^^NHS^NH`), false, "PID", 3, "NHS number must be 10 digits"},
		{"two NHS numbers", join(head, `PID|1||9434765919^^^NHS^NH~4010232137^^^NHS^NH`), false, "PID", 3, "more than one NHS number"},
		{"bad MSH-7", join(`MSH|^~\&|EPR|RGT|PSGW|RGT|yesterday||ADT^A01|M1|P|2.5`, `PID|1||9434765919^^^NHS^NH`), false, "MSH", 7, "missing or invalid timestamp"},
		{"A40 without MRG", join(`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A40|M1|P|2.5`, `PID|1||9434765919^^^NHS^NH`), false, "MRG", 0, "segment required for A40"},
		{"A40 MRG bad NHS number", join(`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A40|M1|P|2.5`, `PID|1||9434765919^^^NHS^NH`, `MRG|4010232138^^^NHS^NH`), false, "MRG", 1, "NHS number fails the Modulus 11 check"},
		{"A40 MRG empty", join(`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A40|M1|P|2.5`, `PID|1||9434765919^^^NHS^NH`, `MRG|`), false, "MRG", 1, "no patient identifier"},
		{"A40 two merges", join(`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A40|M1|P|2.5`,
			`PID|1||9434765919^^^NHS^NH`, `MRG|X1^^^RGT^MR`, `PID|2||4010232137^^^NHS^NH`, `MRG|X2^^^RGT^MR`), true, "", 0, "A40 merging more than one patient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ExtractADT(mustParse(t, tt.msg))
			if err == nil {
				t.Fatalf("got %+v, want error", a)
			}
			for _, secret := range []string{"9434765918", "1000000010", "943476591", "943 476 5919", "4010232138", "SMITH", "JANE"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks patient data", err)
				}
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("got %q, want it to contain %q", err, tt.wantText)
			}
			if got := errors.Is(err, ErrUnsupported); got != tt.wantUnsup {
				t.Errorf("errors.Is(ErrUnsupported): got %v, want %v", got, tt.wantUnsup)
			}
			if tt.wantUnsup {
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %T, want *ParseError", err)
			}
			if pe.Segment != tt.wantSeg || pe.Field != tt.wantField {
				t.Errorf("got %s-%d, want %s-%d", pe.Segment, pe.Field, tt.wantSeg, tt.wantField)
			}
		})
	}
	if _, err := ExtractADT(nil); err == nil {
		t.Error("ExtractADT(nil): got nil error")
	}
}

func TestSexCodes(t *testing.T) {
	for code, want := range map[string]string{"F": "female", "f": "female", "M": "male", "O": "other", "A": "other", "N": "other", "U": "unknown", "": "", `""`: "", "Q": "unknown"} {
		t.Run(code, func(t *testing.T) {
			m := mustParse(t, join(`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A28|M1|P|2.5`, `PID|1||X1^^^RGT^MR||||19650412|`+code))
			a, err := ExtractADT(m)
			if err != nil {
				t.Fatal(err)
			}
			if a.Sex != want {
				t.Errorf("got %q, want %q", a.Sex, want)
			}
		})
	}
}

func TestNHSNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"9434765919", ""},
		{"9434765870", ""},
		{"4010232137", ""},
		{"0000000000", ""},
		{"9434765918", "NHS number fails the Modulus 11 check"},
		{"1000000010", "NHS number fails the Modulus 11 check"}, // check digit would be 10
		{"943476591", "NHS number must be 10 digits"},
		{"94347659190", "NHS number must be 10 digits"},
		{"943476591X", "NHS number must be 10 digits"},
		{"", "NHS number must be 10 digits"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := nhsNumberProblem(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
