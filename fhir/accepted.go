package fhir

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// DecodeAccepted reads an incident that ParseIncident has already accepted, as the mapper
// reads the records ingest stored: every incident in the raw stream without a reject reason
// passed ParseIncident in its adapter before it was stored, and nothing else writes there.
//
// It decodes data and runs Validate, whose answer depends on opt (the record's received time,
// the configured sources) as well as on the incident, but skips the checks that depend only
// on the bytes and that ParseIncident made then: duplicate keys, the types of the values, the
// length of lists, and text that mixes encodings. It does read the field names again, as
// ParseIncident does, for the incident's warnings (Incident.Warnings: unknown and misspelt
// fields), which the delivery record keeps: that scan is linear in the body and lists at
// most a hundred. For a large body those are most of
// ParseIncident's time (docs/privacy.md, "Hostile input"). Should data not decode after all
// (a record from an older gateway, a stream written by hand), it falls back to ParseIncident,
// so the answer is never less strict than ParseIncident's on data it would refuse outright.
func DecodeAccepted(data []byte, opt ParseOptions) (*Incident, []Problem) {
	var in Incident
	if err := json.Unmarshal(data, &in); err != nil {
		return ParseIncident(data, opt)
	}
	normaliseTimes(&in)
	in.Warnings = unknownFields(bytes.TrimSpace(data))
	in.translateValues(opt.Codes)
	in.Received = opt.Now
	if in.Received.IsZero() {
		in.Received = time.Now()
	}
	if ps := in.Validate(opt); len(ps) > 0 {
		return &in, dedupe(ps)
	}
	return &in, nil
}

// normaliseTimes writes a lower-case "t" or "z" of occurred_at and reported_at, valid RFC
// 3339 but not valid FHIR, in upper case, as ParseIncident does.
func normaliseTimes(in *Incident) {
	if len(in.OccurredAt) > len(time.DateOnly) {
		in.OccurredAt = strings.ToUpper(in.OccurredAt)
	}
	if len(in.ReportedAt) > len(time.DateOnly) {
		in.ReportedAt = strings.ToUpper(in.ReportedAt)
	}
}
