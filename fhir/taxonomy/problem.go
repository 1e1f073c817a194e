package taxonomy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/psgw/psgw/fhir/privacy"
)

// Problem is one way a payload breaks the taxonomy. Messages never quote
// free text or dates, only codes, urls and element names (with any NHS
// number in them redacted), so a Problem is safe to log.
type Problem struct {
	// Path locates the element, e.g.
	// "contained[0](Patient).extension[patient-information-5][1].Gender".
	Path string `json:"path"`
	// Rule is a short stable slug naming the rule broken; see Validate.
	Rule string `json:"rule"`
	// Message says what is wrong, in lower case.
	Message string `json:"message"`
}

// String returns "path: message", or just the message for a problem with
// the whole payload (Path "").
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Rules reported in Problem.Rule.
const (
	RuleVersion          = "version"           // unknown taxonomy version
	RuleStructure        = "structure"         // wrong JSON shape (object, array, string expected)
	RuleResourceType     = "resource-type"     // wrong resourceType, top level or contained
	RuleProfile          = "profile"           // meta.profile lacks the version's profile
	RuleUnknownElement   = "unknown-element"   // a key the profile does not allow
	RuleUnknownExtension = "unknown-extension" // outer extension url not allowed on that resource
	RuleUnknownField     = "unknown-field"     // inner extension name not in its outer extension
	RuleRenamedField     = "renamed-field"     // a v5 field name that v6 replaced
	RuleRequired         = "required"          // a mandatory element, extension or field is missing
	RuleCardinality      = "cardinality"       // an extension or field repeats more than allowed
	RuleValueType        = "value-type"        // wrong value[x] key, JSON type or format
	RuleValueSet         = "value-set"         // a code outside its value set
	RuleODSCode          = "ods-code"          // an organisation code not in the ODS list
	RulePatientSequence  = "patient-sequence"  // PatientSequence values not unique and 1..n
	RuleContained        = "contained"         // contained resource id missing, malformed, repeated or unreferenced
	RuleReference        = "reference"         // a reference that is not "#id" to a contained resource of the right type
	RuleDate             = "date"              // date is neither YYYY-MM-DD nor RFC 3339
	RuleDescription      = "description"       // description empty or too long
	RuleIdentifier       = privacy.RuleIdentifier
	RuleNHSNumber        = privacy.RuleNHSNumber
)

// problems collects problems while a payload is walked.
type problems []Problem

func (ps *problems) add(path, rule, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// sorted orders problems by path (numbers in paths compared as numbers, so
// contained[2] comes before contained[10]), then rule and message, and drops
// exact duplicates, so the same payload always yields the same list.
func (ps problems) sorted() []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if c := comparePaths(a.Path, b.Path); c != 0 {
			return c < 0
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
	out := ps[:0]
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// comparePaths compares two paths, treating runs of digits as numbers.
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// quote renders a payload string (a url, code or key) for a message: NHS
// numbers redacted, long values cut, quoted. Free text is never passed here.
func quote(s string) string {
	s, _ = privacy.RedactText(s)
	const limit = 200
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		// Redact again: cutting a longer digit run can leave ten digits
		// that now look like an NHS number.
		s, _ = privacy.RedactText(s[:cut] + "...")
	}
	return strconv.Quote(s)
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// joinIndex appends "[i]" to a path.
func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// joinKey appends ".key" to a path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
