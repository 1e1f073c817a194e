package csvdrop

import (
	"strings"
	"testing"

	"github.com/psgw/psgw/fhir"
)

func TestParseDateFormat(t *testing.T) {
	for _, tc := range []struct{ in, layout, err string }{
		{in: "DD/MM/YYYY", layout: "2/1/2006"},
		{in: "D/M/YY", layout: "2/1/06"},
		{in: "DD-MMM-YYYY", layout: "2-Jan-2006"},
		{in: "DD/MM/YYYY HH:mm:ss", layout: "2/1/2006 15:04:05"},
		{in: "YYYY-MM-DDTHH:mm", layout: "2006-1-2T15:04"},
		{in: "DD/MM/YYYY hh:mm A", layout: "2/1/2006 3:04 PM"},
		{in: "MM/YYYY", err: "needs a year (YYYY), a month (MM) and a day (DD)"},
		{in: "DD/MM/YYYY Z", err: `"Z" is not a part of a date format`},
		{in: "DD/MM/2025", err: `"2" is not a part of a date format`},
	} {
		f, err := parseDateFormat(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %v, want an error containing %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || f.layout != tc.layout):
			t.Errorf("%q: got %q, %v; want %q", tc.in, f.layout, err, tc.layout)
		}
	}
}

// TestRowFormat: UK dates and date-times become ISO dates and RFC 3339 times on the UK wall
// clock (GMT in winter, BST in summer); a time column is joined to its date, replacing a
// midnight the export wrote; a date of birth keeps its date only; a cell no format reads is
// reported by field, column and format, never by value, and left as it was.
func TestRowFormat(t *testing.T) {
	cfg := Config{DateFormats: []string{"DD/MM/YYYY", "DD/MM/YYYY HH:mm:ss"}, TimeColumns: map[string]string{"occurred_at": "Time"}}
	rf := newRowFormat(cfg)
	cols := map[string]string{"occurred_at": "Date", "reported_at": "Reported", "patient.date_of_birth": "DOB"}
	index := map[string]int{"Date": 0, "Time": 1, "Reported": 2, "DOB": 3}
	for _, tc := range []struct {
		name     string
		row      []string
		want     []string
		problems string
	}{
		{"winter date and time", []string{"14/03/2025", "09:30", "15/03/2025", "01/03/1975"},
			[]string{"2025-03-14T09:30:00Z", "09:30", "2025-03-15", "1975-03-01"}, ""},
		{"summer, export's midnight replaced", []string{"14/07/2025 00:00:00", "9.05", "15/07/2025 08:15:00", "01/03/1975 00:00:00"},
			[]string{"2025-07-14T09:05:00+01:00", "9.05", "2025-07-15T08:15:00+01:00", "1975-03-01"}, ""},
		{"no time", []string{"4/3/2025", "", "", ""}, []string{"2025-03-04", "", "", ""}, ""},
		{"ISO as it is", []string{"2025-03-14", "2359", "2025-03-15T10:00:00Z", "1975-03-01"},
			[]string{"2025-03-14T23:59:00Z", "2359", "2025-03-15T10:00:00Z", "1975-03-01"}, ""},
		{"unreadable", []string{"31/02/2025", "09:30", "yesterday", "1/3/75"},
			[]string{"31/02/2025", "09:30", "yesterday", "1/3/75"},
			`occurred_at: column "Date" is not a date in the form DD/MM/YYYY or DD/MM/YYYY HH:mm:ss or YYYY-MM-DD (csvdrop.date_formats); ` +
				`reported_at: column "Reported" is not a date in the form DD/MM/YYYY or DD/MM/YYYY HH:mm:ss or YYYY-MM-DD (csvdrop.date_formats); ` +
				`patient.date_of_birth: column "DOB" is not a date`},
		{"bad time", []string{"14/03/2025", "25:00", "", ""}, []string{"2025-03-14", "25:00", "", ""},
			`occurred_at: column "Time" is not a time of day such as 09:30 (csvdrop.time_columns)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]string(nil), tc.row...)
			got, problems := rf.apply(index, cols, in)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if p := strings.Join(problems, "; "); !strings.HasPrefix(p, tc.problems) || (tc.problems == "" && p != "") {
				t.Errorf("problems: got %q, want %q", p, tc.problems)
			}
			if strings.Join(in, "|") != strings.Join(tc.row, "|") {
				t.Error("the caller's row was changed")
			}
			for _, cell := range tc.row {
				if cell != "" && strings.Contains(strings.Join(problems, " "), cell) {
					t.Errorf("a problem quotes the cell %q", cell)
				}
			}
		})
	}
}

// FuzzDateCells: whatever a date format and the date and time cells hold, reading them never
// panics; a cell read is the date or date-time fhir takes; a problem never quotes a cell (a
// date of birth is an identifier).
func FuzzDateCells(f *testing.F) {
	f.Add("DD/MM/YYYY", "14/03/2025", "09:30", "01/03/1975")
	f.Add("DD/MM/YYYY HH:mm:ss", "31/10/2025 01:30:00", "0130", "29/02/2024 00:00:00")
	f.Add("D-MMM-YY hh:mm A", "4-Mar-25 9:05 PM", "9.5", "")
	f.Add("YYYY", "2025", "25:61", "x")
	f.Fuzz(func(t *testing.T, format, date, tod, dob string) {
		cfg := Config{DateFormats: []string{format, "DD/MM/YYYY"}, TimeColumns: map[string]string{"occurred_at": "Time"}}
		rf := newRowFormat(cfg)
		out, problems := rf.apply(map[string]int{"Date": 0, "Time": 1, "DOB": 2}, map[string]string{"occurred_at": "Date", "patient.date_of_birth": "DOB"}, []string{date, tod, dob})
		if len(out) != 3 {
			t.Fatalf("got %d cells", len(out))
		}
		text := strings.Join(problems, "\n")
		for _, cell := range []string{date, tod, dob} {
			if c := strings.TrimSpace(cell); len(c) > 3 && strings.Contains(text, c) && !strings.Contains(format, c) && !strings.Contains("occurred_at patient.date_of_birth Date Time DOB csvdrop.date_formats csvdrop.time_columns YYYY-MM-DD such as 09:30", c) {
				t.Fatalf("a problem quotes the cell %q: %s", c, text)
			}
		}
		if strings.TrimSpace(date) != "" && !strings.Contains(text, "occurred_at") {
			if _, err := fhir.ParseDateOrTime(out[0]); err != nil {
				t.Fatalf("occurred_at read as %q, which fhir does not take: %v", out[0], err)
			}
		}
		if strings.TrimSpace(dob) != "" && !strings.Contains(text, "date_of_birth") {
			if _, err := fhir.ParseDateOrTime(out[2]); err != nil {
				t.Fatalf("date_of_birth read as %q, which fhir does not take: %v", out[2], err)
			}
		}
	})
}
