package hl7

import (
	"errors"
	"strings"
	"time"
)

var errBadTime = errors.New("hl7: invalid timestamp")

// ParseTime parses an HL7 TS/DTM value:
// YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]. Missing parts default to the
// start of the period, so "1950" is 1 January 1950. A value without an
// offset is in def; HL7 says such times are in the sender's local zone,
// which only the caller can know, so a nil def means UTC. Only the first
// component should be passed: the v2.3 degree-of-precision component is
// ignored by Field.Value already.
func ParseTime(s string, def *time.Location) (time.Time, error) {
	loc := def
	if loc == nil {
		loc = time.UTC
	}
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		z := s[i:]
		s = s[:i]
		if len(z) != 5 || !allDigits(z[1:]) {
			return time.Time{}, errBadTime
		}
		hh, mm := atoi(z[1:3]), atoi(z[3:5])
		if hh > 14 || mm > 59 {
			return time.Time{}, errBadTime
		}
		off := (hh*60 + mm) * 60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
		if off == 0 {
			loc = time.UTC
		}
	}
	nsec := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		frac := s[i+1:]
		s = s[:i]
		if len(s) != 14 || frac == "" || len(frac) > 9 || !allDigits(frac) {
			return time.Time{}, errBadTime
		}
		nsec = atoi(frac + "000000000"[len(frac):])
	}
	switch len(s) {
	case 4, 6, 8, 10, 12, 14:
	default:
		return time.Time{}, errBadTime
	}
	if !allDigits(s) {
		return time.Time{}, errBadTime
	}
	part := func(from, def int) int {
		if len(s) < from+2 {
			return def
		}
		return atoi(s[from : from+2])
	}
	y, mo, d := atoi(s[:4]), part(4, 1), part(6, 1)
	h, mi, sec := part(8, 0), part(10, 0), part(12, 0)
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, errBadTime
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, loc)
	if t.Day() != d {
		return time.Time{}, errBadTime // e.g. 31 February
	}
	return t, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// atoi reads a string already checked by allDigits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
