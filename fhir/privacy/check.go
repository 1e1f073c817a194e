package privacy

import (
	"sort"
	"strconv"
	"strings"
)

// Rules reported in Finding.Rule.
const (
	// RuleIdentifier marks an element that names a patient identifier
	// (identifier, name, birthDate, an inner extension "NHSNumber", ...).
	RuleIdentifier = "identifier"
	// RuleNHSNumber marks a string or key that holds an NHS number.
	RuleNHSNumber = "nhs-number"
)

// Finding is one identifier that Check found. Message never contains the
// value found, so a Finding is safe to log and to return to callers.
type Finding struct {
	// Path locates the element in the decoded JSON, e.g.
	// "contained[0].extension[0].extension[2].valueString". Keys holding an
	// NHS number appear redacted.
	Path    string `json:"path"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// String returns "path: message".
func (f Finding) String() string { return f.Path + ": " + f.Message }

// identifierNames are element names, and inner extension urls, that only
// ever carry patient identifiers. LFPSE profiles define none of them, so
// their presence anywhere means a mapper leaked data (docs/privacy.md, "What never leaves").
var identifierNames = []string{
	"identifier", "name", "birthDate", "address", "telecom", "photo",
	"contact", "postalCode", "postcode",
	"NHSNumber", "PatientName", "DateOfBirth",
}

// IsIdentifierName reports whether name, as a JSON key or as the url of an
// inner extension, names a patient identifier element that Check reports.
// The comparison ignores case. A validator can use it to avoid reporting
// the same element twice.
func IsIdentifierName(name string) bool {
	// Every identifier name is ASCII, and an ASCII string folds only to one of the same
	// length, so the length rules most keys out before the case-insensitive comparison.
	// (A non-ASCII name, such as one with a Kelvin sign for k, is compared in full.)
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			ascii = false
			break
		}
	}
	for _, n := range identifierNames {
		if ascii && len(name) != len(n) {
			continue
		}
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// WithoutServerFields returns res without its top-level id and meta, which the national service
// assigns (a PUT carries them back): they identify the event, not a patient, and a random id
// can hold ten digits that happen to pass Modulus 11.
func WithoutServerFields(res map[string]any) map[string]any {
	_, hasID := res["id"]
	_, hasMeta := res["meta"]
	if !hasID && !hasMeta {
		return res
	}
	out := make(map[string]any, len(res))
	for k, v := range res {
		if k != "id" && k != "meta" {
			out[k] = v
		}
	}
	return out
}

// Check walks a decoded JSON resource and reports every patient identifier
// it finds: keys and inner extension urls named by IsIdentifierName, and any
// key or string (at any depth, urls and codes included) that holds an NHS
// number as RedactText would find it. Findings are sorted by path, then rule.
//
// Check does not modify resource. Run RedactResource first to clear NHS
// numbers from free text; what Check still reports must not be sent.
func Check(resource map[string]any) []Finding {
	w := walker{skipServerFields: true} // as walking WithoutServerFields(resource), without the copy
	w.walkMap(resource)
	// Map order is random; sort fully so the same input always reports the
	// same list.
	sort.Slice(w.findings, func(i, j int) bool {
		a, b := w.findings[i], w.findings[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
	return w.findings
}

// walker keeps the path as a stack of segments and only joins it into a
// string when it reports, so a clean resource costs few allocations.
type walker struct {
	path     []string
	findings []Finding
	// skipServerFields leaves out the first map's id and meta (see WithoutServerFields).
	skipServerFields bool
}

func (w *walker) report(rule, msg string) {
	w.findings = append(w.findings, Finding{Path: w.joined(), Rule: rule, Message: msg})
}

func (w *walker) joined() string {
	var b strings.Builder
	for _, s := range w.path {
		if b.Len() > 0 && s[0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func (w *walker) walkMap(m map[string]any) {
	skip := w.skipServerFields
	w.skipServerFields = false
	for k, v := range m {
		if skip && (k == "id" || k == "meta") {
			continue
		}
		seg := k
		keyHasNumber := ContainsNHSNumber(k)
		if keyHasNumber {
			seg, _ = RedactText(k)
		}
		if seg == "" || seg[0] == '[' {
			seg = strconv.Quote(seg) // keep the path readable and unambiguous
		}
		w.path = append(w.path, seg)
		if keyHasNumber {
			w.report(RuleNHSNumber, "key contains an NHS number")
		}
		if IsIdentifierName(k) {
			w.report(RuleIdentifier, identifierMessage("element "+k, v))
		}
		w.walkValue(v)
		w.path = w.path[:len(w.path)-1]
	}
	// An inner extension is reported at the extension itself, since its url
	// names what the whole entry holds.
	if u, ok := m["url"].(string); ok && IsIdentifierName(u) {
		w.report(RuleIdentifier, identifierMessage("extension "+u, firstValue(m)))
	}
}

func (w *walker) walkValue(v any) {
	switch v := v.(type) {
	case map[string]any:
		w.walkMap(v)
	case []any:
		for i, e := range v {
			w.path = append(w.path, indexSegment(i))
			w.walkValue(e)
			w.path = w.path[:len(w.path)-1]
		}
	case string:
		if ContainsNHSNumber(v) {
			w.report(RuleNHSNumber, "contains an NHS number")
		}
	}
}

// identifierMessage words a finding for an identifier element. The value is
// only inspected, never quoted.
func identifierMessage(what string, v any) string {
	msg := what + " is a patient identifier and must not leave the gateway"
	if s, ok := v.(string); ok && isUKPostcode(s) {
		msg = what + " holds a UK postcode and must not leave the gateway"
	}
	return msg
}

// firstValue returns the value[x] of an inner extension, if any; with
// several, the first by key, so that the message does not depend on map
// order.
func firstValue(m map[string]any) any {
	key := ""
	for k := range m {
		if strings.HasPrefix(k, "value") && (key == "" || k < key) {
			key = k
		}
	}
	return m[key]
}

// indexSegments holds the path segments of small array indexes, so walking
// a typical resource does not allocate one per element.
var indexSegments = func() (segs [128]string) {
	for i := range segs {
		segs[i] = "[" + strconv.Itoa(i) + "]"
	}
	return segs
}()

func indexSegment(i int) string {
	if i < len(indexSegments) {
		return indexSegments[i]
	}
	return "[" + strconv.Itoa(i) + "]"
}
