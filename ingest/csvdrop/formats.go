package csvdrop

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/psgw/psgw/fhir"
)

// Incident systems export dates as their users read them (14/03/2025) and often keep the
// time of day in a column of its own; the incident model takes ISO 8601 dates and RFC 3339
// date-times (docs/adapters.md, "Dates, times and local words"). A dateFormat reads a date
// cell written one way; the adapter tries csvdrop.date_formats in order after ISO 8601, and
// joins csvdrop.time_columns' times to their dates, on the UK wall clock.

// dateFields are the fields whose cells are dates, read with csvdrop.date_formats.
var dateFields = []string{"occurred_at", "reported_at", "patient.date_of_birth"}

// timeFields are the fields a time column may give the time of day of.
var timeFields = []string{"occurred_at", "reported_at"}

// dateFormat is one entry of csvdrop.date_formats, e.g. "DD/MM/YYYY" or "DD/MM/YYYY HH:mm".
type dateFormat struct {
	text    string // as configured, for problems
	layout  string // the Go layout it becomes
	hasTime bool
}

// formatTokens are the parts of a date format, longest first where one is a prefix of
// another. Day, month and hour take one digit or two, so that DD/MM/YYYY also reads 4/3/2025.
var formatTokens = []struct{ token, layout string }{
	{"YYYY", "2006"}, {"YY", "06"},
	{"MMMM", "January"}, {"MMM", "Jan"}, {"MM", "1"}, {"M", "1"},
	{"DD", "2"}, {"D", "2"},
	{"HH", "15"}, {"H", "15"}, {"hh", "3"}, {"h", "3"},
	{"mm", "04"}, {"ss", "05"}, {"A", "PM"},
}

// formatLiterals are the characters a date format may hold between its parts: none of them
// means anything to a Go layout.
const formatLiterals = " /-.:,T"

// parseDateFormat reads a format such as DD/MM/YYYY: YYYY or YY for the year, MMMM, MMM, MM
// or M for the month, DD or D for the day, and optionally HH or H (or hh, h and A for AM/PM),
// mm and ss for a time of day, separated by any of " /-.:,T".
func parseDateFormat(s string) (dateFormat, error) {
	f := dateFormat{text: s}
	var b strings.Builder
	seen := map[byte]bool{}
	for i := 0; i < len(s); {
		matched := false
		for _, t := range formatTokens {
			if strings.HasPrefix(s[i:], t.token) {
				b.WriteString(t.layout)
				seen[t.token[0]] = true
				i += len(t.token)
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		if !strings.ContainsRune(formatLiterals, rune(s[i])) {
			return f, fmt.Errorf("%q: %q is not a part of a date format (YYYY, MM, DD, HH, mm, ss, ...) nor one of %q", s, s[i:i+1], formatLiterals)
		}
		b.WriteByte(s[i])
		i++
	}
	if !seen['Y'] || !seen['M'] || !seen['D'] {
		return f, fmt.Errorf("%q: a date format needs a year (YYYY), a month (MM) and a day (DD)", s)
	}
	f.layout = b.String()
	f.hasTime = seen['H'] || seen['h']
	return f, nil
}

// rowFormat is how one file's rows write their dates and times.
type rowFormat struct {
	dates []dateFormat
	// times maps a field (occurred_at) to the column holding its time of day.
	times map[string]string
}

func newRowFormat(cfg Config) rowFormat {
	var rf rowFormat
	for _, s := range cfg.DateFormats {
		if f, err := parseDateFormat(s); err == nil {
			rf.dates = append(rf.dates, f)
		}
	}
	rf.times = cfg.TimeColumns
	return rf
}

// names lists the formats for problems: "DD/MM/YYYY or YYYY-MM-DD".
func (rf rowFormat) names() string {
	names := []string{}
	for _, f := range rf.dates {
		names = append(names, f.text)
	}
	return strings.Join(append(names, "YYYY-MM-DD"), " or ")
}

// date reads a date cell. It returns the cell as the incident model takes it: a YYYY-MM-DD
// date, or for a date-time an RFC 3339 time on the UK wall clock (a date of birth keeps its
// date only). ok is false when no format reads it; the cell is then returned as it was.
func (rf rowFormat) date(field, cell string) (string, bool) {
	if _, err := fhir.ParseDateOrTime(cell); err == nil {
		return cell, true
	}
	for _, f := range rf.dates {
		t, err := time.ParseInLocation(f.layout, cell, fhir.UK)
		if err != nil {
			continue
		}
		if !f.hasTime || field == "patient.date_of_birth" {
			return t.Format(time.DateOnly), true
		}
		return t.Format(time.RFC3339), true
	}
	return cell, false
}

// clock is a time of day: 09:30, 9:30, 09:30:00, 0930 or 09.30.
var clock = regexp.MustCompile(`^([0-9]{1,2})[:.]?([0-9]{2})(?:[:.]([0-9]{2}))?$`)

// withTime joins a time of day to the date that date (a YYYY-MM-DD, or a date-time whose own
// time is replaced: exports often write a date column as a date-time at midnight) falls on,
// on the UK wall clock.
func withTime(date, tod string) (string, bool) {
	d, err := fhir.ParseDateOrTime(date)
	if err != nil {
		return date, false
	}
	if len(date) > len(time.DateOnly) {
		d = fhir.UKTime(d)
	}
	m := clock.FindStringSubmatch(tod)
	if m == nil {
		return date, false
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	s := 0
	if m[3] != "" {
		s, _ = strconv.Atoi(m[3])
	}
	if h > 23 || mi > 59 || s > 59 {
		return date, false
	}
	return time.Date(d.Year(), d.Month(), d.Day(), h, mi, s, 0, fhir.UK).Format(time.RFC3339), true
}

// apply rewrites the date cells of row (a copy; the caller's is untouched) and joins the time
// columns to their dates. It returns the row and the problems, each naming the field, its
// column and the rule, never the cell's value (a date of birth is an identifier). A cell
// that cannot be read is left as it was.
func (rf rowFormat) apply(index map[string]int, cols map[string]string, row []string) ([]string, []string) {
	out := row
	var problems []string
	set := func(i int, v string) {
		if v == out[i] {
			return
		}
		if &out[0] == &row[0] {
			out = append([]string(nil), row...) // copied on the first change only
		}
		out[i] = v
	}
	cell := func(col string) (int, string) {
		if i, ok := index[col]; ok && i < len(out) {
			return i, strings.TrimSpace(out[i])
		}
		return -1, ""
	}
	for _, field := range dateFields {
		col, ok := cols[field]
		if !ok {
			continue
		}
		i, v := cell(col)
		if i < 0 || v == "" {
			continue
		}
		d, ok := rf.date(field, v)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: column %q is not a date in the form %s (csvdrop.date_formats)", field, col, rf.names()))
			continue
		}
		set(i, d)
		tcol, ok := rf.times[field]
		if !ok {
			continue
		}
		if _, tod := cell(tcol); tod != "" {
			joined, ok := withTime(d, tod)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: column %q is not a time of day such as 09:30 (csvdrop.time_columns)", field, tcol))
				continue
			}
			set(i, joined)
		}
	}
	return out, problems
}

// RowIncident turns one data row of an export into incident JSON as the adapter does: its
// dates read with cfg's date formats, its time columns joined, its cells mapped through
// columns (the source's csv_columns). psgw map uses it on a CSV file. The problems are the
// cells it could not read and the columns it could not find; values are checked by
// fhir.ParseIncident.
func RowIncident(cfg Config, columns map[string]string, header, row []string) ([]byte, []fhir.Problem) {
	index := map[string]int{}
	for i, h := range header {
		if h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")); h != "" {
			index[h] = i
		}
	}
	row, unreadable := newRowFormat(cfg).apply(index, columns, row)
	data, problems := fhir.IncidentFromRecord(cfg.Source, columns, header, row)
	for _, u := range unreadable {
		field, msg, _ := strings.Cut(u, ": ")
		problems = append(problems, fhir.Problem{Field: field, Message: msg})
	}
	return data, problems
}
