package fhir

import "time"

// Age encodings for AgeAtTimeOfIncidentDays. LFPSE's samples suggest years*372 + months*31 +
// days; NHS England has not confirmed it, so true days can be chosen instead
// (docs/mapping.md).
const (
	AgeLFPSE372 = "lfpse372"
	AgeDays     = "days"
)

// AgeYMD is the whole years, months and days from dob to at, as a person counts birthdays.
// Only the calendar dates count: the age of a patient born today is zero.
func AgeYMD(dob, at time.Time) (years, months, days int) {
	y1, m1, d1 := dob.Date()
	y2, m2, d2 := at.Date()
	years = y2 - y1
	months = int(m2) - int(m1)
	days = d2 - d1
	if days < 0 {
		months--
		// Borrow the length of the month before at's month.
		days += time.Date(y2, m2, 0, 0, 0, 0, 0, time.UTC).Day()
	}
	if months < 0 {
		years--
		months += 12
	}
	return years, months, days
}

// EncodeAge gives AgeAtTimeOfIncidentDays in the chosen encoding: AgeDays counts calendar
// days; anything else is the LFPSE 372/31 rule.
func EncodeAge(encoding string, y, m, d int, dob, at time.Time) int {
	if encoding == AgeDays {
		a := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		b := time.Date(dob.Year(), dob.Month(), dob.Day(), 0, 0, 0, 0, time.UTC)
		return int(a.Sub(b).Hours() / 24)
	}
	return y*372 + m*31 + d
}

// AgeBracket is the age-brackets-5 code for an age.
func AgeBracket(y, m, d int) string {
	switch {
	case y == 0 && m == 0 && d <= 14:
		return "1"
	case y == 0 && m == 0:
		return "2"
	case y == 0:
		return "3"
	case y <= 4:
		return "4"
	case y <= 9:
		return "5"
	case y <= 15:
		return "6"
	case y <= 17:
		return "7"
	case y <= 25:
		return "8"
	case y <= 45:
		return "9"
	case y <= 65:
		return "10"
	case y <= 85:
		return "11"
	default:
		return "12"
	}
}
