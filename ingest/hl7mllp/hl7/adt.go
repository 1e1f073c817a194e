package hl7

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ADT is the demographics content of one ADT event.
type ADT struct {
	Event     string // trigger event, e.g. "A01"
	ControlID string // MSH-10

	// RecordedAt is EVN-2, or MSH-7 when EVN-2 is absent or invalid. A
	// time without an offset is taken to be in MSH-7's offset when MSH-7
	// has one, else UTC; the sender's local zone is unknown here.
	RecordedAt time.Time

	Patient PatientIDs // PID-3

	// Names are the patient's names from PID-5, every repetition (legal, maiden, alias):
	// family name (XPN-1, its surname), given name (XPN-2) and further given names (XPN-3),
	// each as sent, at most MaxNames of them. They are patient data: the gateway keeps them
	// only to remove them from incidents' free text (docs/privacy.md).
	Names []string

	// DateOfBirth is PID-7 as YYYY-MM-DD. It is "" when absent, when only
	// the year or month is known (a partial date cannot give an age in
	// days; a warning says so), or when invalid.
	DateOfBirth string

	// Sex is PID-8 mapped to the contract's values: F female, M male,
	// O/A/N other, U unknown. Any other code is "unknown" with a warning;
	// an empty or null PID-8 gives "".
	Sex string

	// Ethnicity is PID-22 component 1 as sent: in NHS trusts, the NHS Data
	// Dictionary ethnic category code, e.g. "A".
	Ethnicity string

	// Location is the point of care (PV1-3 component 1), usually the ward.
	// It is "" when PV1-3 is empty and for A03, whose patient has left.
	Location string

	Discharged bool // the event is A03

	// MergedFrom holds, for A40, the identifiers of the record merged into
	// Patient (MRG-1). It is nil for other events.
	MergedFrom *PatientIDs

	// Warnings lists data that was ignored rather than refused, by field
	// and rule, never by value, e.g. "PID-7: partial date ignored". They
	// are for counting and for the interface team.
	Warnings []string
}

// PatientIDs are the identifiers of one patient from a CX list (PID-3, MRG-1).
type PatientIDs struct {
	NHSNumber string    // the repetition with authority "NHS" and type "NH"; "" if none
	LocalIDs  []LocalID // every other repetition that has an id
}

// LocalID is one identifier other than the NHS number, e.g. a hospital
// number (type "MR").
type LocalID struct {
	ID        string // CX-1
	Authority string // CX-4 component 1, the assigning authority
	Type      string // CX-5, the identifier type code
}

// ExtractADT reads the demographics from an ADT message with trigger event
// A01, A02, A03, A04, A05, A08, A28, A31 or A40. Any other message type or
// trigger gives an error wrapping ErrUnsupported. Broken rules, such as a
// missing PID, no identifier, or an NHS number failing its check, give a
// *ParseError naming the field and the rule. Either way the sender gets AR.
// Z-segments and unknown segments are ignored.
func ExtractADT(m *Message) (*ADT, error) {
	if m == nil || len(m.segs) == 0 {
		return nil, errors.New("hl7: no message")
	}
	msh := m.segs[0]
	code := clean(msh.Field(9).Component(1).Value())
	event := clean(msh.Field(9).Component(2).Value())
	evn, hasEVN := m.First("EVN")
	if event == "" && hasEVN {
		event = clean(evn.Field(1).Value()) // v2.3 senders may put it only here
	}
	if code != "ADT" || !supportedEvent(event) {
		return nil, fmt.Errorf("%w: %s^%s", ErrUnsupported, safeToken(code), safeToken(event))
	}
	a := &ADT{Event: event, ControlID: msh.Field(10).Value()}
	if err := a.readTime(msh, evn); err != nil {
		return nil, err
	}
	pid, ok := m.First("PID")
	if !ok {
		return nil, &ParseError{Segment: "PID", Reason: "segment required"}
	}
	ids, err := readIDs(pid.Field(3), "PID", 3)
	if err != nil {
		return nil, err
	}
	a.Patient = ids
	a.readNames(pid.Field(5))
	a.readDateOfBirth(pid.Field(7))
	a.readSex(pid.Field(8))
	a.Ethnicity = clean(pid.Field(22).Value())
	a.Discharged = event == "A03"
	if pv1, ok := m.First("PV1"); ok && !a.Discharged {
		a.Location = clean(pv1.Field(3).Value())
	}
	if event == "A40" {
		if err := a.readMerge(m); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func supportedEvent(e string) bool {
	switch e {
	case "A01", "A02", "A03", "A04", "A05", "A08", "A28", "A31", "A40":
		return true
	}
	return false
}

func (a *ADT) readTime(msh, evn Segment) error {
	mshRaw := clean(msh.Field(7).Value())
	mshTime, mshErr := ParseTime(mshRaw, nil)
	def := time.UTC
	if mshErr == nil && strings.ContainsAny(mshRaw, "+-") {
		def = mshTime.Location()
	}
	if evnRaw := clean(evn.Field(2).Value()); evnRaw != "" {
		if t, err := ParseTime(evnRaw, def); err == nil {
			a.RecordedAt = t
			return nil
		}
		a.Warnings = append(a.Warnings, "EVN-2: invalid timestamp, MSH-7 used")
	}
	if mshErr != nil {
		return &ParseError{Segment: "MSH", Field: 7, Reason: "missing or invalid timestamp"}
	}
	a.RecordedAt = mshTime
	return nil
}

// MaxNames bounds the names read from one PID-5.
const MaxNames = 16

func (a *ADT) readNames(f Field) {
	for _, r := range f.Repetitions() {
		for _, v := range []string{r.Component(1).Subcomponent(1), r.Component(2).Value(), r.Component(3).Value()} {
			if v = clean(v); v != "" && len(a.Names) < MaxNames && !slices.Contains(a.Names, v) {
				a.Names = append(a.Names, v)
			}
		}
	}
}

func (a *ADT) readDateOfBirth(f Field) {
	v := clean(f.Value())
	switch {
	case v == "":
	case len(v) < 8 && (len(v) == 4 || len(v) == 6) && allDigits(v):
		a.Warnings = append(a.Warnings, "PID-7: partial date ignored")
	default:
		if len(v) >= 8 {
			if t, err := ParseTime(v[:8], nil); err == nil {
				a.DateOfBirth = t.Format(time.DateOnly)
				return
			}
		}
		a.Warnings = append(a.Warnings, "PID-7: invalid date ignored")
	}
}

func (a *ADT) readSex(f Field) {
	switch strings.ToUpper(clean(f.Value())) {
	case "":
	case "F":
		a.Sex = "female"
	case "M":
		a.Sex = "male"
	case "O", "A", "N":
		a.Sex = "other"
	case "U":
		a.Sex = "unknown"
	default:
		a.Sex = "unknown"
		a.Warnings = append(a.Warnings, "PID-8: unrecognised code read as unknown")
	}
}

// readMerge reads MRG-1. A message merging several patients (repeated
// PID/MRG groups) is refused rather than half applied.
func (a *ADT) readMerge(m *Message) error {
	mrgs := m.Segments("MRG")
	switch {
	case len(mrgs) == 0:
		return &ParseError{Segment: "MRG", Reason: "segment required for A40"}
	case len(mrgs) > 1 || len(m.Segments("PID")) > 1:
		return fmt.Errorf("%w: A40 merging more than one patient", ErrUnsupported)
	}
	ids, err := readIDs(mrgs[0].Field(1), "MRG", 1)
	if err != nil {
		return err
	}
	a.MergedFrom = &ids
	return nil
}

// readIDs reads a CX list. The NHS number must pass its check, and there
// must be at least one identifier; errors never include the values.
func readIDs(f Field, segment string, field int) (PatientIDs, error) {
	var ids PatientIDs
	for i, n := 1, f.NumRepetitions(); i <= n; i++ {
		r := f.Repetition(i)
		id := clean(r.Value())
		if id == "" {
			continue
		}
		auth := clean(r.Component(4).Value())
		typ := clean(r.Component(5).Value())
		if strings.EqualFold(auth, "NHS") && strings.EqualFold(typ, "NH") {
			if p := nhsNumberProblem(id); p != "" {
				return ids, &ParseError{Segment: segment, Field: field, Reason: p}
			}
			if ids.NHSNumber != "" && ids.NHSNumber != id {
				return ids, &ParseError{Segment: segment, Field: field, Reason: "more than one NHS number"}
			}
			ids.NHSNumber = id
			continue
		}
		ids.LocalIDs = append(ids.LocalIDs, LocalID{ID: id, Authority: auth, Type: typ})
	}
	if ids.NHSNumber == "" && len(ids.LocalIDs) == 0 {
		return ids, &ParseError{Segment: segment, Field: field, Reason: "no patient identifier"}
	}
	return ids, nil
}

// clean trims spaces and reads the HL7 null `""` as empty: for a store of
// current demographics both mean "no value".
func clean(s string) string {
	s = strings.TrimSpace(s)
	if s == `""` {
		return ""
	}
	return s
}

// safeToken returns s for an error message only if it looks like a message
// code or trigger, so that no free text from the message reaches a log.
func safeToken(s string) string {
	if s == "" || len(s) > 7 {
		return "?"
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9') && s[i] != '_' {
			return "?"
		}
	}
	return s
}
