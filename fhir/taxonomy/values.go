package taxonomy

import (
	"encoding/json"
	"math"
	"strings"
	"time"
)

// checkValue checks a value[x] against the JSON type and format its key
// demands, and returns what is wrong, or "". Keys it does not know pass:
// only v6 can carry them, and their rules are not known.
func checkValue(key string, v any) string {
	switch key {
	case "valueString":
		s, ok := v.(string)
		if !ok {
			return "valueString is not a string"
		}
		if isBlank(s) {
			return "valueString is empty"
		}
	case "valueCode":
		s, ok := v.(string)
		if !ok {
			return "valueCode is not a string (codes are strings even when numeric)"
		}
		if s == "" || strings.TrimSpace(s) != s {
			return "valueCode is empty or has surrounding space"
		}
	case "valueBoolean":
		if _, ok := v.(bool); !ok {
			return "valueBoolean is not true or false"
		}
	case "valueInteger":
		if _, ok := integerValue(v); !ok {
			return "valueInteger is not a whole number in the 32-bit range"
		}
	case "valueDate":
		s, ok := v.(string)
		if !ok || !isDate(s) {
			return "valueDate is not a real date in the form YYYY-MM-DD"
		}
	case "valueTime":
		s, ok := v.(string)
		if !ok || !isTime(s) {
			return "valueTime is not a time in the form HH:MM:SS"
		}
	}
	return ""
}

// integerValue returns v as an int if it is a whole number that fits a FHIR
// integer (32-bit signed). encoding/json yields float64; Go-built maps may
// hold ints or json.Number, which are accepted too.
func integerValue(v any) (int, bool) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case int32:
		return int(n), true
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, false
		}
		f = float64(i)
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.Trunc(f) != f || f < math.MinInt32 || f > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

// isDate reports whether s is exactly YYYY-MM-DD and a real calendar date.
func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' || !allDigits(s[:4]) || !allDigits(s[5:7]) || !allDigits(s[8:]) {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// isTime reports whether s is exactly HH:MM:SS on a 24-hour clock.
func isTime(s string) bool {
	if len(s) != 8 || s[2] != ':' || s[5] != ':' || !allDigits(s[:2]) || !allDigits(s[3:5]) || !allDigits(s[6:]) {
		return false
	}
	return s[:2] <= "23" && s[3:5] <= "59" && s[6:] <= "59"
}

// isDateOrDateTime reports whether s is YYYY-MM-DD or an RFC 3339
// date-time, the two forms AdverseEvent.date takes.
func isDateOrDateTime(s string) bool {
	if isDate(s) {
		return true
	}
	if len(s) < len("2006-01-02T15:04:05Z") || !isDate(s[:10]) || s[10] != 'T' {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isFHIRID reports whether s is a FHIR id: 1 to 64 of A-Z a-z 0-9 - and .
func isFHIRID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isBlank(s string) bool { return strings.TrimSpace(s) == "" }
