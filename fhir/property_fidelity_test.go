package fhir

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEveryFieldArrivesOrIsWarned is issue 14's "must show 3": over generated incidents in
// which every field, at every depth, is populated at random (with unknown and misspelt
// fields among them), every populated input field either reaches the payload, as the answer
// the field table (fieldRows, docs/mapping.md) says it fills, or is named in a warning.
// Identifiers and keys that psgw uses without sending (rows marked used) are exempt. Only
// incidents that map to a payload count; the test fails if too few do.
func TestEveryFieldArrivesOrIsWarned(t *testing.T) {
	rows := map[string]fieldRow{}
	for _, r := range fieldRows() {
		rows[r.field] = r
	}
	rng := rand.New(rand.NewPCG(14, 2025))
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	mapped, checked, warned, unknown := 0, 0, 0, 0
	for i := range iterations {
		version := 5 + i%2
		g := &incidentGen{rng: rng, i: i}
		doc := g.incident()
		data, _ := json.Marshal(doc)
		in, ps := ParseIncident(data, ParseOptions{Now: goldenNow})
		if len(ps) > 0 {
			continue
		}
		enc := ""
		if rng.IntN(4) == 0 {
			enc = AgeDays
		}
		b := &Builder{Version: version, AgeEncoding: enc, Codes: NewCodeMaps(version, goldenCodeMaps)}
		prep := b.Prepare(in)
		if prep.Payload == nil {
			continue
		}
		mapped++
		var payload map[string]any
		if err := json.Unmarshal(prep.Payload, &payload); err != nil {
			t.Fatal(err)
		}
		got := indexPayload(payload)
		for _, leaf := range populatedLeaves(doc) {
			checked++
			if named(prep.Warnings, leaf.path) {
				warned++
				continue
			}
			if g.unknown[leaf.path] {
				t.Fatalf("incident %d (v%d): unknown field %s is not named in a warning %v\n%s", i, version, leaf.path, prep.Warnings, data)
			}
			row, ok := rows[leaf.row]
			if !ok {
				t.Fatalf("incident %d: %s has no field row", i, leaf.row)
			}
			if row.used || (leaf.row == "agents.none" && leaf.value == false) {
				continue // nothing to send: "not none" says nothing
			}
			answers := row.v5
			if version == 6 {
				answers = row.v6
			}
			if !got.hasAny(answers, leaf.patient) {
				t.Fatalf("incident %d (v%d): %s = %v is neither in the payload (as %v) nor named in a warning\nwarnings: %v\n%s\n%s",
					i, version, leaf.path, leaf.value, answers, prep.Warnings, data, prep.Payload)
			}
		}
		unknown += len(g.unknown)
	}
	t.Logf("%d of %d incidents mapped; %d populated fields checked, %d of them named in warnings; %d unknown or misspelt fields sent", mapped, iterations, checked, warned, unknown)
	if mapped < iterations/3 {
		t.Errorf("only %d of %d generated incidents mapped: the generator is too wild to test much", mapped, iterations)
	}
	if unknown == 0 || warned == 0 {
		t.Errorf("the generator sent no unknown fields (%d) or none were warned (%d)", unknown, warned)
	}
}

// named reports whether a warning names path, or an object or list it lies in.
func named(ws []Warning, path string) bool {
	for _, w := range ws {
		if rest, ok := strings.CutPrefix(path, w.Field); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return true
		}
	}
	return false
}

// payloadIndex is what a payload holds: its top-level elements, the inner answer names of
// all its extensions, and those of each patient by PatientSequence - 1.
type payloadIndex struct {
	elements map[string]bool
	answers  map[string]bool
	patients []map[string]bool
}

func indexPayload(doc map[string]any) payloadIndex {
	idx := payloadIndex{elements: map[string]bool{}, answers: map[string]bool{}}
	for k := range doc {
		idx.elements["AdverseEvent."+k] = true
	}
	addAll := func(exts []any, into map[string]bool) {
		for _, e := range exts {
			for _, ie := range asList(e.(map[string]any)["extension"]) {
				into[ie.(map[string]any)["url"].(string)] = true
			}
		}
	}
	addAll(asList(doc["extension"]), idx.answers)
	for _, c := range asList(doc["contained"]) {
		m := c.(map[string]any)
		if m["resourceType"] == "Patient" {
			for _, e := range asList(m["extension"]) {
				p := map[string]bool{}
				addAll([]any{e}, p)
				idx.patients = append(idx.patients, p)
			}
			continue
		}
		addAll(asList(m["extension"]), idx.answers)
	}
	return idx
}

func (idx payloadIndex) hasAny(answers []string, patient int) bool {
	for _, a := range answers {
		switch {
		case strings.HasPrefix(a, "AdverseEvent."):
			if idx.elements[a] {
				return true
			}
		case patient >= 0:
			if patient < len(idx.patients) && idx.patients[patient][a] {
				return true
			}
		case idx.answers[a]:
			return true
		}
	}
	return false
}

// leaf is one populated value of a generated incident.
type leaf struct {
	path    string // "patients[1].sex"
	row     string // "patients[].sex"
	patient int    // the patient's index, or -1
	value   any
}

// populatedLeaves lists the values of doc that are not objects or lists of objects.
func populatedLeaves(doc map[string]any) []leaf {
	var out []leaf
	var walk func(v any, path, row string, patient int)
	walk = func(v any, path, row string, patient int) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p, r := k, k
				if path != "" {
					p, r = path+"."+k, row+"."+k
				}
				walk(v[k], p, r, patient)
			}
		case []any:
			if len(v) > 0 {
				if _, objects := v[0].(map[string]any); objects {
					for i, e := range v {
						pi := patient
						if row == "patients" {
							pi = i
						}
						walk(e, path+"["+strconv.Itoa(i)+"]", row+"[]", pi)
					}
					return
				}
			}
			out = append(out, leaf{path, row, patient, v})
		default:
			out = append(out, leaf{path, row, patient, v})
		}
	}
	walk(doc, "", "", -1)
	return out
}

// incidentGen builds one incident with every field of the model populated at random, by
// walking the Go type, with values that mostly pass ParseIncident, and unknown or misspelt
// members here and there.
type incidentGen struct {
	rng      *rand.Rand
	i        int
	occurred time.Time
	unknown  map[string]bool // paths of the unknown members sent
}

func (g *incidentGen) incident() map[string]any {
	g.unknown = map[string]bool{}
	g.occurred = time.Date(2025, time.Month(1+g.rng.IntN(5)), 1+g.rng.IntN(28), g.rng.IntN(24), g.rng.IntN(60), 0, 0, time.UTC)
	doc := g.object(reflect.TypeFor[Incident](), "", "")
	doc["source"], doc["local_id"] = "datix", fmt.Sprintf("G-%d", g.i)
	doc["event_type"] = pickOne(g.rng, []string{EventIncident, EventRisk, EventOutcome, EventGoodCare})
	doc["description"] = g.text()
	if rev, ok := doc["revision"]; ok && rev.(int) < 1 {
		doc["revision"] = 1
	}
	return doc
}

func pickOne[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// object populates each field of the struct t with probability 2/3, and the mandatory parts
// of the question sets always.
func (g *incidentGen) object(t reflect.Type, path, row string) map[string]any {
	fields := jsonFieldsOf(t)
	out := map[string]any{}
	for _, f := range fields.list {
		p, r := f.name, f.name
		if path != "" {
			p, r = path+"."+f.name, row+"."+f.name
		}
		if g.rng.IntN(3) == 0 && !mandatoryInGen[r] {
			continue
		}
		if v, ok := g.value(f.typ, p, r); ok {
			out[f.name] = v
		}
	}
	if g.rng.IntN(4) == 0 {
		g.addUnknown(out, fields, path)
	}
	return out
}

// mandatoryInGen are fields whose absence makes ParseIncident or the builder refuse the
// incident; the generator always fills them so that most incidents map.
var mandatoryInGen = map[string]bool{
	"occurred_at": true, "risk.imminent": true, "good_care.how_future_occurrence": true, "safety_challenges": true,
}

// addUnknown adds a member the model does not have: a field name misspelt (camelCase, a
// letter dropped or doubled) or a name of its own.
func (g *incidentGen) addUnknown(out map[string]any, fields *jsonFields, path string) {
	name := "extra_" + strconv.Itoa(g.rng.IntN(100))
	if f := pickOne(g.rng, fields.list); g.rng.IntN(3) > 0 {
		switch g.rng.IntN(3) {
		case 0:
			name = camel(f.name)
		case 1:
			if len(f.name) > 3 {
				k := 1 + g.rng.IntN(len(f.name)-2)
				name = f.name[:k] + f.name[k+1:]
			}
		default:
			name = f.name + "s"
		}
	}
	if foldedField(fields, name) != nil {
		return // the misspelling is a real name, or one but for case
	}
	out[name] = pickOne(g.rng, []any{"value", 3, true, map[string]any{"x": "y"}, []any{"a"}})
	if path != "" {
		name = path + "." + name
	}
	g.unknown[name] = true
}

func camel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

func (g *incidentGen) value(t reflect.Type, path, row string) (any, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return g.object(t, path, row), true
	case reflect.Slice:
		n := 1 + g.rng.IntN(3)
		list := make([]any, 0, n)
		for i := range n {
			v, ok := g.value(t.Elem(), path+"["+strconv.Itoa(i)+"]", row+"[]")
			if ok {
				list = append(list, v)
			}
		}
		return list, len(list) > 0
	case reflect.Bool:
		return g.rng.IntN(2) == 0, true
	case reflect.Int:
		if row == "patients[].age_years" {
			return g.rng.IntN(131), true
		}
		return 1 + g.rng.IntN(3), true
	case reflect.String:
		return g.str(strings.TrimSuffix(row, "[]"))
	}
	return nil, false
}

var genEnums = map[string][]string{
	"patients[].sex":                              {"female", "male", "other", "unknown"},
	"patients[].physical_harm":                    {"none", "low", "moderate", "severe", "fatal"},
	"patients[].psychological_harm":               {"none", "low", "moderate", "severe"},
	"patients[].gender_same_as_at_birth":          {"yes", "no", "unknown"},
	"agents.medications[].administered":           {"yes", "no", "unknown"},
	"agents.medications[].administered_by_device": {"yes", "no", "u"},
	"risk.imminent":                               {"yes", "no", "unknown"},
	"patients[].nhs_number":                       {"9434765919", "4010232137"},
	"location.organisation":                       {"RRK", "Z01", "ZZZ99", "X26"},
	"reporter.organisation":                       {"RRK", "RGT", "ZZZ99"},
	"agents.medications[].vtm_code":               {"27658006", "777067000"},
	"agents.medications[].vmp_code":               {"323509004", "39113611000001102"},
	"patients[].date_of_birth":                    {}, // see str
	"occurred_at":                                 {},
	"reported_at":                                 {},
	"patients[].local_patient_id":                 {"MRN001", "H123456"},
	"agents.medications[].name":                   {"Amoxicillin", "Insulin glargine", "IV antibiotic"},
	"agents.devices[].type":                       {}, // coded
	"source":                                      {"datix"},
	"event_type":                                  {EventIncident},
	"local_id":                                    {"X"},
}

// str is a value for the string field row: an enum, a date, a coded answer (an LFPSE code,
// display, mapped local code, or an unknown local value), or free text.
func (g *incidentGen) str(row string) (any, bool) {
	switch row {
	case "occurred_at":
		offset := pickOne(g.rng, []string{"Z", "+01:00", "-05:00", ""})
		if offset == "" {
			return g.occurred.Format(time.DateOnly), true
		}
		loc := time.UTC
		switch offset {
		case "+01:00":
			loc = time.FixedZone("", 3600)
		case "-05:00":
			loc = time.FixedZone("", -5*3600)
		}
		return g.occurred.In(loc).Format(time.RFC3339), true
	case "reported_at":
		return g.occurred.Add(time.Duration(g.rng.IntN(72)) * time.Hour).Format(time.RFC3339), true
	case "patients[].date_of_birth":
		return pickOne(g.rng, []string{"1900-01-01", "1800-01-01", "1880-05-05", "2024-12-31",
			fmt.Sprintf("19%02d-%02d-%02d", g.rng.IntN(100), 1+g.rng.IntN(12), 1+g.rng.IntN(28))}), true
	}
	if vs, ok := genEnums[row]; ok && len(vs) > 0 {
		return pickOne(g.rng, vs), true
	}
	if s, ok := specs()[strings.ReplaceAll(row, "[]", "")]; ok && !s.ods {
		// A value with no code goes to the "Other" answer, or quarantines the incident where
		// the question has none: rare, so that most incidents map.
		switch r := g.rng.IntN(100); {
		case r < 60:
			return pickOne(g.rng, s.vs.Codes).Code, true
		case r < 85:
			return pickOne(g.rng, s.vs.Codes).Display, true
		case r < 97:
			for local := range goldenCodeMaps["datix"][s.key]["*"] {
				return local, true
			}
			return pickOne(g.rng, s.vs.Codes).Code, true
		default:
			return "LOCAL-" + strconv.Itoa(g.rng.IntN(3)), true
		}
	}
	if freeTextRows[row] || strings.HasSuffix(row, "description") {
		return g.text(), true
	}
	return pickOne(g.rng, []string{"REF-1", "ABC 123", "x"}), true
}

// freeTextRows are the free-text fields besides the descriptions: the ones that may hold any
// character and are cleaned before they are sent.
var freeTextRows = map[string]bool{
	"immediate_actions": true, "occurred_approximately": true, "patients[].clinical_outcome": true,
	"risk.population": true, "good_care.strengths": true, "good_care.how_future_occurrence": true,
	"good_care.went_well": true, "agents.blood_products.details": true,
}

func (g *incidentGen) text() string {
	s := pickOne(g.rng, []string{"Patient found on floor", "dose given late", "café", "see ward 7", "«quoted»"})
	if g.rng.IntN(8) == 0 {
		s += pickOne(g.rng, []string{"\u0000", "\u202e", "\x07"}) + "tail"
	}
	return s
}
