package fhir_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
)

// TestPrivacyCorpus is issue 15's first must-show: generated free text holding the
// identifiers the gateway knows for an incident's patients, in every spelling the security
// review used and docs/privacy.md lists, put in every free-text field of the incident, mapped
// by the real Prepare for taxonomy v5 and v6. Each payload is then read by a detector
// written here, apart from the redactor: the NFKC form of every string of the payload,
// without the characters that do not show, is searched for each known identifier. No
// identifier may survive.
//
// A variant is one spelling in one field in one version, counted only when the field's text
// reached the payload (its marker words are there).
func TestPrivacyCorpus(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	// The detector must see every spelling as it was written, or its silence proves nothing.
	for _, sp := range corpusSpellings() {
		if len(independentLeaks([]string{sp.text})) == 0 {
			t.Errorf("the detector does not find %s in %q", sp.name, sp.text)
		}
	}
	variants, perField := 0, map[string]int{}
	for _, v := range []int{5, 6} {
		b := &fhir.Builder{Version: v}
		for _, sp := range corpusSpellings() {
			body, markers := corpusIncident(sp.text)
			in, ps := fhir.ParseIncident(body, fhir.ParseOptions{Now: now})
			if len(ps) > 0 {
				t.Fatalf("v%d %s: the corpus incident is refused: %v", v, sp.name, ps)
			}
			prep := b.PrepareWith(in, fhir.PrepareOptions{Known: privacy.Known{Names: corpusNames}})
			if prep.Payload == nil {
				t.Fatalf("v%d %s: %v", v, sp.name, prep.Problems)
			}
			leaves := payloadStrings(t, prep.Payload)
			for _, leak := range independentLeaks(leaves) {
				t.Errorf("v%d %s (%q): %s", v, sp.name, sp.text, leak)
			}
			all := strings.Join(leaves, "\n")
			for field, marker := range markers {
				if strings.Contains(all, marker+" ") {
					variants++
					perField[field]++
				}
			}
			if prep.Redacted.Total() == 0 {
				t.Errorf("v%d %s: nothing counted as redacted", v, sp.name)
			}
		}
	}
	for _, f := range corpusFields {
		if perField[f] == 0 {
			t.Errorf("field %s never reached a payload: the corpus does not test it", f)
		}
	}
	if variants < 300 {
		t.Errorf("got %d variants that reached a payload, want at least 300", variants)
	}
	t.Logf("%d variants (%d spellings, %d fields, v5 and v6), none leaked", variants, len(corpusSpellings()), len(corpusFields))
}

// The corpus incident's patients. Their names are not in the incident (it has no field for
// them): they come from the EPR, passed in as PrepareOptions.Known.
var (
	corpusNHS   = []string{"9434765919", "4010232137"}
	corpusIDs   = []string{"RRK1023456", "MRN-778812"}
	corpusDOBs  = []string{"1975-03-01", "1948-11-23"}
	corpusNames = []string{"Jane", "Doe", "Siobhán", "O'Brien-Ng"}
)

// corpusFields are the free-text fields of the incident, and the short fields (codes,
// references, names of things) sent as free text, as JSON paths. The short fields refuse
// line breaks (codedFields).
var corpusFields = []string{
	"description", "immediate_actions", "occurred_approximately", "patients[0].clinical_outcome",
	"risk.description", "risk.population", "good_care.strengths", "good_care.how_future_occurrence",
	"good_care.went_well", "agents.medications[0].name", "agents.medication_problem.description",
	"agents.device_problem.description", "agents.it_systems.description", "agents.buildings.description",
	"agents.estates.description", "agents.blood.description", "agents.blood_products.details",
	"agents.blood_products.brand", "agents.blood_products.batch", "agents.blood_products.description",
	"agents.tissues.description", "agents.people.involvement_description", "agents.people.actions_description",
	"radiotherapy_incident_code", "marvin_reference_number", "reporter.role", "location.specialty",
	"agents.sabre_report_number", "agents.yellow_card_reference",
}

var codedFields = map[string]bool{
	"radiotherapy_incident_code": true, "marvin_reference_number": true, "location.specialty": true, "reporter.role": true,
	"agents.medications[0].name": true, "agents.blood_products.brand": true, "agents.blood_products.batch": true,
	"agents.sabre_report_number": true, "agents.yellow_card_reference": true,
}

// corpusIncident is an incident with every section, text put in every field of corpusFields
// between two marker words of that field (not in codedFields when it holds a control
// character, which they refuse), and the markers by field.
func corpusIncident(text string) ([]byte, map[string]string) {
	in := map[string]any{
		"source": "datix", "local_id": "CORPUS-1", "event_type": "incident",
		"occurred_at": "2025-03-14T09:30:00Z", "reported_at": "2025-03-14T12:00:00Z",
		"occurred_estimated": true, "safety_challenges": []any{"6"},
		"patients": []any{
			map[string]any{"nhs_number": corpusNHS[0], "local_patient_id": corpusIDs[0], "date_of_birth": corpusDOBs[0],
				"sex": "female", "physical_harm": "low", "psychological_harm": "none"},
			map[string]any{"nhs_number": corpusNHS[1], "local_patient_id": corpusIDs[1], "date_of_birth": corpusDOBs[1],
				"sex": "male", "physical_harm": "none"},
		},
		"risk":      map[string]any{"imminent": "yes"},
		"good_care": map[string]any{},
		"agents": map[string]any{
			"medications": []any{map[string]any{}}, "medication_problem": map[string]any{}, "devices": []any{map[string]any{"type": "3"}},
			"device_problem": map[string]any{}, "it_systems": map[string]any{}, "buildings": map[string]any{}, "estates": map[string]any{},
			"blood": map[string]any{}, "blood_products": map[string]any{}, "tissues": map[string]any{}, "people": map[string]any{},
		},
		"location": map[string]any{"organisation": "RRK"},
		"reporter": map[string]any{"organisation": "RRK"},
	}
	markers := map[string]string{}
	control := strings.ContainsFunc(text, unicode.IsControl)
	for i, f := range corpusFields {
		if control && codedFields[f] {
			continue
		}
		m := "zebra" + strconv.Itoa(i)
		markers[f] = m
		setPath(in, f, m+" "+text+" quokka.")
	}
	body, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	return body, markers
}

// setPath sets a value at a path of objects and [0] list entries.
func setPath(doc map[string]any, path, v string) {
	parts := strings.Split(path, ".")
	m := doc
	for _, p := range parts[:len(parts)-1] {
		key, isList := strings.CutSuffix(p, "[0]")
		if isList {
			m = m[key].([]any)[0].(map[string]any)
			continue
		}
		m = m[key].(map[string]any)
	}
	m[parts[len(parts)-1]] = v
}

type spelling struct{ name, text string }

// corpusSpellings writes every known identifier of the corpus incident in every spelling:
// NHS numbers as the review of issue 15 sent them and their neighbours, dates of birth in
// their common written forms, names in any case, with or without accents, local ids with
// separators. Each spelling is in context, as a reporter would write it.
func corpusSpellings() []spelling {
	var out []spelling
	add := func(name, text string) { out = append(out, spelling{name, text}) }
	for _, n := range corpusNHS {
		g := func(sep ...string) string { // 3-3-4 with the given separators
			return n[:3] + sep[0] + n[3:6] + sep[len(sep)-1] + n[6:]
		}
		for _, s := range []struct{ name, text string }{
			{"contiguous", n}, {"spaces", g(" ")}, {"hyphens", g("-")}, {"full stops", g(".")},
			{"slashes", g("/")}, {"underscores", g("_")}, {"commas", g(",")}, {"two spaces", g("  ")},
			{"line feeds", g("\n")}, {"CRLF", g("\r\n")}, {"em dashes", g("\u2014")}, {"en dashes", g("\u2013")},
			{"minus signs", g("\u2212")}, {"no-break spaces", g("\u00a0")}, {"narrow no-break spaces", g("\u202f")},
			{"ideographic spaces", g("\u3000")}, {"spaced hyphens", g(" - ")}, {"brackets", "(" + n[:3] + ") " + n[3:6] + " " + n[6:]},
			{"soft hyphens", g("\u00ad")}, {"soft hyphen in a group", n[:2] + "\u00ad" + n[2:]},
			{"zero-width spaces", g("\u200b")}, {"zero-width joiners", g("\u200d", "\u200c")}, {"word joiners", g("\u2060")},
			{"byte order marks", g("\ufeff")}, {"bidi override", "\u202e" + g("\u202c") + "\u202c"}, {"bidi isolate", "\u2066" + n + "\u2069"},
			{"3-3-3-1", n[:3] + " " + n[3:6] + " " + n[6:9] + " " + n[9:]}, {"1-3-3-3", n[:1] + " " + n[1:4] + " " + n[4:7] + " " + n[7:]},
			{"2-2-2-2-2", n[:2] + " " + n[2:4] + " " + n[4:6] + " " + n[6:8] + " " + n[8:]},
			{"digit by digit", strings.Join(strings.Split(n, ""), " ")}, {"4-3-3", n[:4] + " " + n[4:7] + " " + n[7:]},
			{"full-width", fullWidth(n)}, {"full-width mixed with ASCII", fullWidth(n[:3]) + n[3:6] + fullWidth(n[6:])},
			{"superscripts", mapDigits(n, "⁰¹²³⁴⁵⁶⁷⁸⁹")}, {"superscripts mixed", n[:1] + mapDigits(n[1:4], "⁰¹²³⁴⁵⁶⁷⁸⁹") + n[4:]},
			{"subscripts", mapDigits(n, "₀₁₂₃₄₅₆₇₈₉")}, {"circled", mapDigits(n, "⓪①②③④⑤⑥⑦⑧⑨")},
			{"Arabic-Indic", mapDigits(n, "٠١٢٣٤٥٦٧٨٩")}, {"Devanagari grouped", mapDigits(g(" "), "०१२३४५६७८९")},
			{"combining accents", strings.Join(strings.Split(n, ""), "\u0301")},
			{"inside a longer number", "1" + n + "0"}, {"everything", "(" + fullWidth(n[:1]) + "\u00ad" + n[1:3] + ")\u00a0\u00a0" + mapDigits(n[3:6], "⁰¹²³⁴⁵⁶⁷⁸⁹") + "\u2014\u200b" + n[6:]},
		} {
			add("NHS "+n+" "+s.name, "NHS no: "+s.text+", seen")
		}
	}
	for _, d := range corpusDOBs {
		t, _ := time.Parse(time.DateOnly, d)
		y, m, dd := t.Year(), int(t.Month()), t.Day()
		mon := t.Month().String()
		yy := fmt.Sprintf("%02d", y%100)
		for _, s := range []string{
			fmt.Sprintf("%02d/%02d/%d", dd, m, y), fmt.Sprintf("%d/%d/%s", dd, m, yy), fmt.Sprintf("%d/%d/%d", dd, m, y),
			fmt.Sprintf("%02d.%02d.%d", dd, m, y), fmt.Sprintf("%02d-%02d-%d", dd, m, y), fmt.Sprintf("%02d %02d %d", dd, m, y),
			fmt.Sprintf("%d-%02d-%02d", y, m, dd), fmt.Sprintf("%d/%d/%d", y, m, dd), fmt.Sprintf("%02d%02d%d", dd, m, y),
			fmt.Sprintf("%d%02d%02d", y, m, dd), fmt.Sprintf("%02d%02d%s", dd, m, yy), fmt.Sprintf("%02d/%02d/%d", m, dd, y),
			fmt.Sprintf("%d %s %d", dd, mon, y), fmt.Sprintf("%d%s %s %d", dd, ordinal(dd), mon, y),
			fmt.Sprintf("%d%s of %s, %d", dd, ordinal(dd), mon, y), fmt.Sprintf("%d %s %d", dd, mon[:3], y),
			fmt.Sprintf("%d-%s-%s", dd, strings.ToUpper(mon[:3]), yy), fmt.Sprintf("%02d %s %d", dd, strings.ToUpper(mon), y),
			fmt.Sprintf("%s %d %d", mon[:3], dd, y), fmt.Sprintf("%s %d, %d", mon, dd, y), fmt.Sprintf("%s %d%s %d", mon, dd, ordinal(dd), y),
			fmt.Sprintf("%s. %d, %s", mon[:3], dd, yy), fmt.Sprintf("%d %s %d", y, mon[:3], dd), fmt.Sprintf("%d-%s-%02d", y, strings.ToUpper(mon[:3]), dd),
			fullWidth(fmt.Sprintf("%02d/%02d/%d", dd, m, y)), fmt.Sprintf("%02d/\u200b%02d/%d", dd, m, y),
			fmt.Sprintf("%d\u02e2\u1d57 %s %d", dd, mon, y), fmt.Sprintf("%02d \u2013 %02d \u2013 %d", dd, m, y),
			fmt.Sprintf("%02d\n%02d\n%d", dd, m, y), fmt.Sprintf("%02d\u00a0/\u00a0%02d\u00a0/\u00a0%d", dd, m, y),
		} {
			add("DOB "+d+" "+s, "DOB "+s+" noted")
		}
	}
	for _, s := range []string{
		"Jane", "JANE", "jane", "Ｊａｎｅ", "Ja\u200bne", "Ja\u00adne", "Mrs Doe", "DOE's", "Jane Doe",
		"Siobhán", "Siobhan", "SIOBHÁN", "Siobha\u0301n", "Ms O'Brien-Ng", "Mr NG", "O'BRIEN", "O’Brien-Ng",
	} {
		add("name "+s, "patient "+s+" was reviewed")
	}
	for _, s := range []string{
		"RRK1023456", "rrk1023456", "RRK 1023456", "RRK-102-3456", "RRK\u00ad1023456", "ＲＲＫ１０２３４５６", "MRN:RRK1023456",
		"MRN-778812", "MRN 778812", "mrn778812", "MRN\u2010778812", "(MRN 778 812)",
	} {
		add("local id "+s, "hospital number "+s+" on the wristband")
	}
	return out
}

func ordinal(d int) string {
	switch d {
	case 1, 21, 31:
		return "st"
	case 2, 22:
		return "nd"
	case 3, 23:
		return "rd"
	}
	return "th"
}

func fullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		if '!' <= r && r <= '~' {
			return r - '!' + '！'
		}
		return r
	}, s)
}

// mapDigits writes the ASCII digits of s with the ten digits of set.
func mapDigits(s, set string) string {
	digits := []rune(set)
	return strings.Map(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return digits[r-'0']
		}
		return r
	}, s)
}

// payloadStrings decodes the payload and returns every key, string and number in it.
func payloadStrings(t *testing.T, payload []byte) []string {
	var doc any
	if err := json.Unmarshal(payload, &doc); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, k)
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case string:
			out = append(out, v)
		case float64:
			out = append(out, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	walk(doc)
	return out
}

// independentLeaks is the detector of the test, written apart from the redactor. It reads
// each string as it renders (seen): NFKC, without format characters, marks, variation
// selectors, default-ignorable characters and controls, lower case. Then:
//   - NHS numbers: all digits of the whole payload, every non-digit removed, must not hold
//     a known number;
//   - names: no word (run of letters) of any string is a word of a known name of two or more
//     letters (docs/privacy.md: one-letter names are not redacted);
//   - local ids: the letters and digits of no string, everything else removed, hold a known
//     id's letters and digits;
//   - dates of birth: no string holds, within five words and numbers in a row (ignoring
//     "of" and ordinal suffixes), the day, the month (as a number or a name) and the year
//     (four digits or two) of a known date, in any order, nor the date as one number.
func independentLeaks(leaves []string) []string {
	var leaks []string
	var digits strings.Builder
	for _, leaf := range leaves {
		s := seen(leaf)
		for _, r := range s {
			if d, ok := digitValue(r); ok {
				digits.WriteByte(byte('0' + d))
			}
		}
		words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
		for _, w := range words {
			for _, name := range corpusNames {
				for _, nw := range strings.FieldsFunc(seen(name), func(r rune) bool { return !unicode.IsLetter(r) }) {
					if len([]rune(nw)) >= 2 && w == nw {
						leaks = append(leaks, fmt.Sprintf("name %q in %q", nw, leaf))
					}
				}
			}
		}
		alnum := strings.Map(func(r rune) rune {
			if d, ok := digitValue(r); ok {
				return '0' + rune(d)
			}
			if unicode.IsLetter(r) {
				return r
			}
			return -1
		}, s)
		for _, id := range corpusIDs {
			key := strings.Map(func(r rune) rune {
				if unicode.IsLetter(r) || unicode.IsDigit(r) {
					return unicode.ToLower(r)
				}
				return -1
			}, id)
			if strings.Contains(alnum, key) {
				leaks = append(leaks, fmt.Sprintf("local id %q in %q", id, leaf))
			}
		}
		for _, d := range corpusDOBs {
			if holdsDate(s, d) {
				leaks = append(leaks, fmt.Sprintf("date of birth %s in %q", d, leaf))
			}
		}
	}
	for _, n := range corpusNHS {
		if strings.Contains(digits.String(), n) {
			leaks = append(leaks, "NHS number "+n+" in the digits of the payload")
		}
	}
	return leaks
}

// seen is s as it renders: NFKC, accents and other marks removed (NFD first), without the
// characters that do not show, lower case.
func seen(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(norm.NFKC.String(s)) {
		switch {
		case unicode.In(r, unicode.Cf, unicode.Mn, unicode.Me, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point),
			unicode.IsControl(r) && !unicode.IsSpace(r):
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// digitValue is the value of a decimal digit of any script: Unicode encodes each script's
// digits as ten code points in a row from zero.
func digitValue(r rune) (int, bool) {
	if !unicode.Is(unicode.Nd, r) {
		return 0, false
	}
	zero := r
	for unicode.Is(unicode.Nd, zero-1) && r-zero < 9 {
		zero--
	}
	return int(r-zero) % 10, true
}

func holdsDate(s, date string) bool {
	t, _ := time.Parse(time.DateOnly, date)
	y, m, d := t.Year(), int(t.Month()), t.Day()
	// Words and numbers, split where letters meet digits.
	var toks []string
	cur, curDigit := []rune{}, false
	flush := func() {
		if len(cur) > 0 {
			toks = append(toks, string(cur))
		}
		cur = cur[:0]
	}
	for _, r := range s {
		dv, isDigit := digitValue(r)
		switch {
		case isDigit:
			if !curDigit {
				flush()
			}
			cur, curDigit = append(cur, '0'+rune(dv)), true
		case unicode.IsLetter(r):
			if curDigit {
				flush()
			}
			cur, curDigit = append(cur, r), false
		default:
			flush()
		}
	}
	flush()
	var kept []string
	for _, tok := range toks {
		switch tok {
		case "of", "st", "nd", "rd", "th":
			continue
		}
		kept = append(kept, tok)
	}
	month := strings.ToLower(t.Month().String())
	for i, tok := range kept {
		for _, f := range []string{"%02d%02d%d", "%d%02d%02d", "%02d%02d%02d"} {
			var compact string
			switch f {
			case "%d%02d%02d":
				compact = fmt.Sprintf(f, y, m, d)
			case "%02d%02d%02d":
				compact = fmt.Sprintf(f, d, m, y%100)
			default:
				compact = fmt.Sprintf(f, d, m, y)
			}
			if tok == compact {
				return true
			}
		}
		var sawDay, sawMonth, sawYear bool
		for _, w := range kept[i:min(i+5, len(kept))] {
			n, err := strconv.Atoi(w)
			switch {
			case err == nil && (len(w) == 4 && n == y || len(w) == 2 && n == y%100) && !sawYear:
				sawYear = true
			case err == nil && len(w) <= 2 && n == d && !sawDay:
				sawDay = true
			case err == nil && len(w) <= 2 && n == m && !sawMonth:
				sawMonth = true
			case err != nil && (w == month || len(w) >= 3 && strings.HasPrefix(month, w)):
				sawMonth = true
			}
		}
		if sawDay && sawMonth && sawYear {
			return true
		}
	}
	return false
}
