package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir/privacy"
)

// Problem is one broken rule in an incident, named by its JSON field path
// ("patients[1].nhs_number"). Messages never quote patient data.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Limits of the ingest API (docs/api.md, "Ingest").
const (
	MaxDescription = 32000
	MaxPatients    = 100
	MaxLocalID     = 128
	MaxFreeText    = 32000
)

var (
	sourcePattern = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	odsPattern    = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)
	datePattern   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// ParseOptions tune ParseIncident.
type ParseOptions struct {
	// Now is the gateway's clock, to refuse events in the future.
	Now time.Time
	// Sources, when not empty, lists the accepted source names.
	Sources map[string]bool
	// Codes, when set, are the sources' code maps: a source's own words for the event type,
	// sex and harm are read through them (translateValues). nil reads the API's words only.
	Codes CodeMapper
}

// ByteOrderMark is the UTF-8 byte order mark, U+FEFF.
var ByteOrderMark = []byte("\ufeff")

// ParseIncident decodes one JSON incident and checks it against the ingest rules. It returns
// every problem it finds; the incident is usable only when there are none. It never panics.
func ParseIncident(data []byte, opt ParseOptions) (*Incident, []Problem) {
	var encProbs []Problem
	if mayHoldMixedEncoding(data) {
		encProbs = encodingProblems(data)
		if !utf8.Valid(data) {
			if len(encProbs) == 0 {
				encProbs = []Problem{{Message: "body is not valid UTF-8 text"}}
			}
			return nil, encProbs
		}
	}
	// One leading byte order mark, which some Windows JSON writers put first and RFC 8259 lets
	// a reader ignore, is not part of the incident.
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(data, ByteOrderMark))
	if len(trimmed) == 0 {
		return nil, []Problem{{Message: "body is empty; expected one JSON incident object"}}
	}
	if trimmed[0] != '{' {
		return nil, []Problem{{Message: "body must be one JSON object"}}
	}
	// One pass over the bytes, linear in them, before the decoder: duplicate keys, the types
	// of the values, and arrays too long to be worth decoding (bodyWalk).
	walk := bodyWalk{data: trimmed, dups: true, types: true}
	walk.walk()
	switch {
	case walk.dupFound:
		return nil, []Problem{{Field: walk.pathString(walk.path, false), Message: "appears more than once in the same object; send each field once"}}
	case walk.overlong:
		return nil, []Problem{{Field: walk.pathString(walk.path[:len(walk.path)-1], true),
			Message: fmt.Sprintf("has more than %d entries, far more than any list takes", maxListEntries)}}
	}
	var in Incident
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var probs []Problem
	if err := dec.Decode(&in); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			// The decoder names only the first, without array indices: the walk found all of
			// them. Should it have found none, the decoder's word stands.
			if probs = walk.typeProblems(); len(probs) == 0 {
				field := te.Field
				if field == "" {
					field = "(document)"
				}
				probs = []Problem{{Field: field, Message: "must be " + jsonTypeName(te.Type.String())}}
			}
		case errors.As(err, &se):
			return nil, []Problem{{Message: fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())}}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, []Problem{{Message: "malformed JSON: the body ends before the object is complete"}}
		default:
			return nil, []Problem{{Message: "malformed JSON: " + err.Error()}}
		}
	}
	if dec.More() {
		return nil, []Problem{{Message: "body must hold exactly one JSON object; found data after it"}}
	}
	in.Warnings = unknownFields(trimmed)
	in.Received = opt.Now
	if in.Received.IsZero() {
		in.Received = time.Now()
	}
	probs = append(probs, walk.nullEntries...)
	typeErrs := len(probs)
	probs = append(probs, encProbs...)
	normaliseTimes(&in)
	in.translateValues(opt.Codes)
	probs = append(probs, withoutTypeFollowUps(in.Validate(opt), probs[:typeErrs])...)
	return &in, dedupe(probs)
}

// jsonTypeName turns a Go type in a decode error into words for an API user.
func jsonTypeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "int"), goType == "*int":
		return "a whole number"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	default:
		return "an object"
	}
}

// dedupe drops repeated problems on the same field: a type error and a rule breach of the same
// value say the same thing twice.
func dedupe(in []Problem) []Problem {
	seen := map[string]bool{}
	out := in[:0]
	for _, p := range in {
		if p.Field != "" && seen[p.Field] {
			continue
		}
		seen[p.Field] = true
		out = append(out, p)
	}
	return out
}

// Validate checks the incident against the ingest rules and returns every problem.
func (in *Incident) Validate(opt ParseOptions) []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	switch {
	case in.Source == "":
		add("source", "is required")
	case !sourcePattern.MatchString(in.Source):
		add("source", "must be 1 to 64 characters of a-z, 0-9, _ or -")
	case len(opt.Sources) > 0 && !opt.Sources[in.Source]:
		add("source", "is not a configured source system")
	}
	if msg := LocalIDProblem(in.LocalID); msg != "" {
		add("local_id", "%s", msg)
	}
	if in.Revision != nil && (*in.Revision < 1 || *in.Revision > MaxRevision) {
		add("revision", "must be a whole number of at least 1 and at most %d", MaxRevision)
	}
	switch in.EventType {
	case EventIncident, EventRisk, EventOutcome, EventGoodCare:
	case "":
		add("event_type", "is required: incident, risk, outcome or good_care")
	default:
		add("event_type", "must be incident, risk, outcome or good_care%s", mapHint(in.Source, "event_type"))
	}
	occurred, occurredOK := time.Time{}, false
	if in.OccurredAt == "" {
		if in.EventType == EventIncident || in.EventType == EventOutcome {
			add("occurred_at", "is required for event_type %s", in.EventType)
		}
	} else if t, err := ParseDateOrTime(in.OccurredAt); err != nil {
		add("occurred_at", "must be an RFC 3339 date-time or a YYYY-MM-DD date")
	} else if msg := implausibleDate(t, now); msg != "" {
		add("occurred_at", "%s", msg)
	} else {
		occurred, occurredOK = t, true
	}
	if in.ReportedAt != "" {
		if t, err := ParseDateOrTime(in.ReportedAt); err != nil {
			add("reported_at", "must be an RFC 3339 date-time or a YYYY-MM-DD date")
		} else if msg := implausibleDate(t, now); msg != "" {
			add("reported_at", "%s", msg)
		} else if occurredOK && occurred.After(t) && !sameDay(occurred, t) {
			add("occurred_at", "must not be after reported_at")
		}
	}
	switch n := utf8.RuneCountInString(in.Description); {
	case strings.TrimSpace(in.Description) == "":
		add("description", "is required")
	case n > MaxDescription:
		add("description", "must be at most %d characters, got %d", MaxDescription, n)
	}
	if n := utf8.RuneCountInString(in.ImmediateActions); n > MaxFreeText {
		add("immediate_actions", "must be at most %d characters, got %d", MaxFreeText, n)
	}
	if len(in.Patients) > MaxPatients {
		add("patients", "must have at most %d entries, got %d", MaxPatients, len(in.Patients))
	}
	for i := range in.Patients {
		if i >= MaxPatients {
			break
		}
		in.Patients[i].validate(fmt.Sprintf("patients[%d]", i), in.Source, occurred, occurredOK, now, add)
	}
	checkODS(add, "location.organisation", in.Location.Organisation)
	checkODS(add, "reporter.organisation", in.Reporter.Organisation)
	if n := utf8.RuneCountInString(in.Reporter.Role); n > 200 {
		add("reporter.role", "must be at most 200 characters, got %d", n)
	}
	in.validateDetails(add)
	return ps
}

// LocalIDProblem says which rule id breaks as an incident's local id, as the message of a
// Problem on local_id, or returns "" when it breaks none. The local id names the incident on
// the status page, in the API and in the CLI, so besides being 1 to MaxLocalID characters it
// must not hold an NHS number in any spelling (privacy.ContainsNHSNumber), control
// characters, or characters that do not show (privacy.Invisible: zero-width characters, the
// soft hyphen, bidirectional controls), with which two different ids look alike and an id
// can hide a number. The message never quotes the id. Every adapter's incidents pass it, in
// Validate; ingest.LocalIDProblem makes the same checks for the ids pull adapters find.
func LocalIDProblem(id string) string {
	switch n := utf8.RuneCountInString(id); {
	case strings.TrimSpace(id) == "":
		return "is required"
	case n > MaxLocalID:
		return fmt.Sprintf("must be at most %d characters, got %d", MaxLocalID, n)
	case !utf8.ValidString(id):
		return "must be valid UTF-8 text"
	case strings.ContainsFunc(id, unicode.IsControl):
		return "must not contain control characters"
	case strings.ContainsFunc(id, privacy.Invisible):
		return "must not contain invisible or bidirectional formatting characters (zero-width, soft hyphen, bidi controls): they make different ids look alike"
	case privacy.ContainsNHSNumber(id):
		return "must not hold an NHS number: the local id is shown on the status page, in the API and in the CLI"
	}
	return ""
}

func (p *Patient) validate(prefix, source string, occurred time.Time, occurredOK bool, now time.Time, add func(string, string, ...any)) {
	if p.NHSNumber != "" && !privacy.ValidNHSNumber(p.NHSNumber) {
		add(prefix+".nhs_number", "must be 10 digits with a valid Modulus 11 check digit")
	}
	if n := len(p.LocalPatientID); n > 64 {
		add(prefix+".local_patient_id", "must be at most 64 characters")
	}
	if p.DateOfBirth != "" {
		dob, err := ParseDate(p.DateOfBirth)
		switch {
		case err != nil:
			add(prefix+".date_of_birth", "must be a real date in the form YYYY-MM-DD")
		case dob.After(now.Add(FutureTolerance)):
			add(prefix+".date_of_birth", "must not be in the future")
		case occurredOK && BornAfter(dob, occurred):
			add(prefix+".date_of_birth", "must not be after occurred_at")
		}
	}
	for _, f := range []struct{ name, v string }{{"sex", p.Sex}, {"physical_harm", p.PhysicalHarm}, {"psychological_harm", p.PsychologicalHarm}} {
		cv := coreValues["patients."+f.name]
		if f.v != "" && !slices.Contains(cv.words, f.v) {
			add(prefix+"."+f.name, "must be one of %s%s", strings.Join(cv.words, ", "), mapHint(source, cv.key))
		}
	}
	if n := utf8.RuneCountInString(p.ClinicalOutcome); n > MaxFreeText {
		add(prefix+".clinical_outcome", "must be at most %d characters", MaxFreeText)
	}
	if n := utf8.RuneCountInString(p.Ethnicity); n > 100 {
		add(prefix+".ethnicity", "must be at most 100 characters")
	}
}

func checkODS(add func(string, string, ...any), field, v string) {
	if v != "" && !odsPattern.MatchString(v) {
		add(field, "must be an ODS code: 3 to 10 upper-case letters or digits")
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// ParseDate parses a YYYY-MM-DD calendar date, refusing impossible ones such as 2023-02-30.
func ParseDate(s string) (time.Time, error) {
	if !datePattern.MatchString(s) {
		return time.Time{}, errors.New("not YYYY-MM-DD")
	}
	return time.Parse(time.DateOnly, s)
}

// ParseDateOrTime parses an RFC 3339 date-time or a YYYY-MM-DD date (as midnight UTC).
func ParseDateOrTime(s string) (time.Time, error) {
	if len(s) == len(time.DateOnly) {
		return ParseDate(s)
	}
	// RFC 3339 allows a lower-case "t" and "z" (§5.6), which Go's layout does not; they are
	// the only letters a date-time holds, so upper-casing the whole string is safe.
	return time.Parse(time.RFC3339Nano, strings.ToUpper(s))
}

// FutureTolerance is how far past the gateway's clock occurred_at, reported_at and
// date_of_birth may lie: the sender's clock may run ahead of the gateway's, and a
// YYYY-MM-DD date written in a time zone ahead of UTC (the UK in summer) reads as midnight
// UTC of a day that has already begun there.
const FutureTolerance = 24 * time.Hour

// earliestDate is the earliest calendar date (CalendarDate) occurred_at and reported_at may
// name. Nothing reported to LFPSE happened before it; "0001-01-01" and the like are a
// source's placeholder for an empty date, not a date (docs/mapping.md).
var earliestDate = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// implausibleDate says what is wrong with an incident or report time t, or "" when it lies
// between earliestDate and now plus FutureTolerance.
func implausibleDate(t, now time.Time) string {
	switch {
	case CalendarDate(t).Before(earliestDate):
		return "must not be before " + earliestDate.Format(time.DateOnly)
	case t.After(now.Add(FutureTolerance)):
		return "must not be in the future"
	}
	return ""
}

// sameDay reports whether a and b fall on the same UK calendar date (CalendarDate).
func sameDay(a, b time.Time) bool { return CalendarDate(a).Equal(CalendarDate(b)) }
