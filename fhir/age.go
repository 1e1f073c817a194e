package fhir

import "time"

// Age encodings for AgeAtTimeOfIncidentDays. LFPSE's samples suggest years*372 + months*31 +
// days; NHS England has not confirmed it, so true days can be chosen instead
// (docs/mapping.md).
const (
	AgeLFPSE372 = "lfpse372"
	AgeDays     = "days"
)

// CalendarDate is the calendar date of t in the UK (UKTime), at midnight UTC. A YYYY-MM-DD
// date (ParseDateOrTime) is its own date; an RFC 3339 date-time is the date on the UK wall
// clock at that instant, whatever offset it was written in: "2025-05-31T23:30:00Z" is
// 1 June (00:30 BST), and "2025-01-01T23:30:00-05:00" is 2 January (04:30 GMT).
//
// LFPSE records events in England, so ages, birth-date checks and the plausible-date bounds
// all compare these UK dates, never instants: a baby born on 1 June was alive at 00:30 BST
// on 1 June, whatever offset the sending system wrote that time in (docs/mapping.md).
func CalendarDate(t time.Time) time.Time {
	y, m, d := UKTime(t).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// BornAfter reports whether the calendar date of dob is after the calendar date of at (see
// CalendarDate): the one case in which an age at at cannot be given. A birth on the day of
// the incident is age zero, not after it.
func BornAfter(dob, at time.Time) bool {
	return CalendarDate(dob).After(CalendarDate(at))
}

// AgeYMD is the whole years, months and days from dob to at, as a person counts birthdays.
// Only the calendar dates count (CalendarDate): the age of a patient born today is zero.
//
// years and months are the most whole months m for which dob.AddDate(0, m, 0) is not after
// at, and days are the days left, so days is never negative. A monthly anniversary on a day
// its month lacks falls where Go's AddDate puts it: one month after 31 January is 3 March
// (2 March in a leap year), so on 1 March a baby born on 31 January is 0 months 29 days old.
//
// When BornAfter(dob, at), the age is negative: each part is the negated age from at to dob.
// Callers check BornAfter first and never send such an age.
func AgeYMD(dob, at time.Time) (years, months, days int) {
	b, a := CalendarDate(dob), CalendarDate(at)
	if a.Before(b) {
		y, m, d := AgeYMD(a, b)
		return -y, -m, -d
	}
	y1, m1, d1 := b.Date()
	y2, m2, d2 := a.Date()
	total := (y2-y1)*12 + int(m2) - int(m1)
	if d2 < d1 {
		total--
	}
	for total > 0 && b.AddDate(0, total, 0).After(a) {
		total--
	}
	return total / 12, total % 12, daysBetween(b.AddDate(0, total, 0), a)
}

// AgeInDays is the number of calendar days from dob's date to at's date (CalendarDate);
// negative when BornAfter(dob, at).
func AgeInDays(dob, at time.Time) int {
	return daysBetween(CalendarDate(dob), CalendarDate(at))
}

// daysBetween counts the days from a to b, both midnight UTC.
func daysBetween(a, b time.Time) int {
	return int(b.Sub(a).Hours() / 24)
}

// EncodeAge gives AgeAtTimeOfIncidentDays in the chosen encoding: AgeDays counts calendar
// days; anything else is the LFPSE 372/31 rule. It is negative only for a negative age,
// which the builder refuses to send.
func EncodeAge(encoding string, y, m, d int, dob, at time.Time) int {
	if encoding == AgeDays {
		return AgeInDays(dob, at)
	}
	return y*372 + m*31 + d
}

// AgeBracket is the age-brackets-5 code for an age of years whole years or, under one year,
// of days calendar days (AgeInDays). days is only read when years is 0.
//
// The value set's brackets are "0-14 days" (1), "15-28 days" (2), "1-11 months" (3), then
// whole years: 1-4 (4), 5-9 (5), 10-15 (6), 16 and 17 (7), 18-25 (8), 26-45 (9), 46-65
// (10), 66-85 (11) and "85+" (12). Two boundaries need a reading, both documented in
// docs/mapping.md:
//   - under one year the day brackets are counted in days and everything from the 29th day
//     to the first birthday is "1-11 months", so a baby of 29 or 30 days (not yet a month
//     old) is not left without a bracket, and one born on 1 February is "15-28 days" on
//     1 March, 28 days later, though a calendar month has passed;
//   - 85 is in both "66-85" and "85+"; it goes to 66-85, the bracket that names it as a
//     bound, so "85+" holds ages over 85.
//
// A negative age has no bracket: the result is "".
func AgeBracket(years, days int) string {
	switch {
	case years < 0 || (years == 0 && days < 0):
		return ""
	case years == 0 && days <= 14:
		return "1"
	case years == 0 && days <= 28:
		return "2"
	case years == 0:
		return "3"
	case years <= 4:
		return "4"
	case years <= 9:
		return "5"
	case years <= 15:
		return "6"
	case years <= 17:
		return "7"
	case years <= 25:
		return "8"
	case years <= 45:
		return "9"
	case years <= 65:
		return "10"
	case years <= 85:
		return "11"
	default:
		return "12"
	}
}
