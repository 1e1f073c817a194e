package fhir

import (
	_ "embed"
	"time"
)

// ukZoneData is the IANA time zone Europe/London in TZif form, from the tz database 2025c as
// shipped with Go (lib/time/zoneinfo.zip). Its footer rule (GMT0BST,M3.5.0/1,M10.5.0) covers
// every year after its last listed change. To refresh it, copy Europe/London out of a newer
// Go's zoneinfo.zip. It is embedded so that the mapping is the same on every machine and
// works in an image without /usr/share/zoneinfo (docs/mapping.md, "Dates").
//
//go:embed zoneinfo/Europe-London.tzif
var ukZoneData []byte

// UK is the time zone of every date and time psgw sends to LFPSE: the wall clock in
// England. It is loaded from the embedded zone data, never from the system's, and ZONEINFO
// is not read.
var UK = mustLoadUK()

func mustLoadUK() *time.Location {
	loc, err := time.LoadLocationFromTZData("Europe/London", ukZoneData)
	if err != nil {
		// The data is compiled in: a failure here is a broken build, found by any test.
		panic("fhir: embedded Europe/London zone data: " + err.Error())
	}
	return loc
}

// UKTime is t on the UK wall clock. A date without a time (ParseDate, midnight UTC) keeps its
// date: the UK is never behind UTC.
func UKTime(t time.Time) time.Time { return t.In(UK) }
