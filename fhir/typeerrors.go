package fhir

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// typeProblems reports every value in a JSON document whose type does not fit the field of
// Incident it would decode into, each with its full path ("patients[1].sex: must be a
// string"), in the order of Incident's fields. encoding/json stops reporting at the first
// such value and names it without array indices, so ParseIncident calls this when, and only
// when, the decode failed with a type error; the happy path never pays for it.
//
// The document is walked once (bodyWalk) against the Incident type through its json tags,
// with the field matching encoding/json uses: the exact key first, else one equal but for
// case; unknown keys are ignored, as the decoder ignores them. Numbers are checked as text,
// so that 1e400 is no trouble. At most maxTypeProblems are listed, then one problem saying
// there are more: a body of a million wrong values gets a short answer, quickly. It returns
// nil if data is not well formed, and never panics.
func typeProblems(data []byte) []Problem {
	w := bodyWalk{data: data, types: true}
	w.walk()
	return w.typeProblems()
}

// typeProblems are the type problems of a walk with types set: none if the document is not
// well formed or the walk stopped early.
func (w *bodyWalk) typeProblems() []Problem {
	if w.bad || w.overlong || w.dupFound {
		return nil
	}
	slices.SortStableFunc(w.typeProbs, func(a, b typeProblem) int { return slices.Compare(a.order, b.order) })
	ps := make([]Problem, 0, len(w.typeProbs)+1)
	for _, p := range w.typeProbs {
		ps = append(ps, p.Problem)
	}
	if w.typeMore {
		ps = append(ps, Problem{Message: "body has more values of the wrong type than the " + strconv.Itoa(maxTypeProblems) + " listed"})
	}
	return ps
}

// typeProblem is a Problem with where it sorts: the field order or array index of each step
// of its path.
type typeProblem struct {
	Problem
	order []int
}

// typeProblem records that the value at the current path does not fit t.
func (w *bodyWalk) typeProblem(t reflect.Type) {
	if len(w.typeProbs) == maxTypeProblems {
		w.typeMore = true
		return
	}
	field := w.pathString(w.path, true)
	if field == "" {
		field = "(document)"
	}
	order := make([]int, len(w.path))
	for i, seg := range w.path {
		order[i] = seg.index
		if seg.field != nil {
			order[i] = seg.field.order
		}
	}
	w.typeProbs = append(w.typeProbs, typeProblem{Problem{Field: field, Message: "must be " + typeWords(t)}, order})
}

// typeWords names the JSON type a field of Go type t takes, for an API user.
func typeWords(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array"
	}
	return "an object"
}

// checkScalar checks a number, true, false or null, written as raw, against t (nil: not
// checked). null fits any field: it leaves it as it was.
func (w *bodyWalk) checkScalar(t reflect.Type, raw []byte) {
	if t == nil || string(raw) == "null" {
		return
	}
	fits := false
	switch t.Kind() {
	case reflect.Bool:
		fits = string(raw) == "true" || string(raw) == "false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err := strconv.ParseInt(string(raw), 10, t.Bits())
		fits = err == nil
	case reflect.Float32, reflect.Float64:
		_, err := strconv.ParseFloat(string(raw), t.Bits())
		fits = err == nil
	}
	if !fits {
		w.typeProblem(t)
	}
}

// jsonField is one field of a struct as encoding/json sees it.
type jsonField struct {
	name  string // the JSON name, as Validate names the field
	typ   reflect.Type
	order int // position among the struct's JSON fields
}

// jsonFields are a struct type's JSON fields, embedded structs' fields promoted.
type jsonFields struct {
	byName   map[string]*jsonField
	byFolded map[string]*jsonField // by foldKey of the name; the first field wins
	list     []*jsonField
}

// lookup finds the field a key decodes into: the exact name, else one equal but for case, as
// encoding/json matches them. Neither allocates for a key of up to 64 bytes.
func (fs *jsonFields) lookup(key []byte) *jsonField {
	if f, ok := fs.byName[string(key)]; ok {
		return f
	}
	var buf [64]byte
	return fs.byFolded[string(foldKey(buf[:0], key))]
}

var jsonFieldCache sync.Map // reflect.Type -> *jsonFields

func jsonFieldsOf(t reflect.Type) *jsonFields {
	if fs, ok := jsonFieldCache.Load(t); ok {
		return fs.(*jsonFields)
	}
	fs := &jsonFields{byName: map[string]*jsonField{}, byFolded: map[string]*jsonField{}}
	collectJSONFields(fs, t)
	for _, f := range fs.list {
		folded := string(foldKey(nil, []byte(f.name)))
		if _, dup := fs.byFolded[folded]; !dup {
			fs.byFolded[folded] = f
		}
	}
	jsonFieldCache.Store(t, fs)
	return fs
}

// collectJSONFields adds t's exported fields by their json tag names, and the fields of
// untagged embedded structs after them, as encoding/json promotes them; on a name clash the
// outer field wins, as it does there.
func collectJSONFields(fs *jsonFields, t reflect.Type) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := fs.byName[name]; dup {
			continue
		}
		f := &jsonField{name: name, typ: sf.Type, order: len(fs.list)}
		fs.byName[name] = f
		fs.list = append(fs.list, f)
	}
	for _, et := range embedded {
		collectJSONFields(fs, et)
	}
}

// withoutTypeFollowUps drops the problems that only repeat a type error: those on a field
// that had the wrong type, or inside it ("description: is required" after "description: must
// be a string"). The type error says what to fix.
func withoutTypeFollowUps(ps []Problem, typeErrs []Problem) []Problem {
	if len(typeErrs) == 0 {
		return ps
	}
	out := ps[:0]
	for _, p := range ps {
		if !underAny(p.Field, typeErrs) {
			out = append(out, p)
		}
	}
	return out
}

func underAny(field string, typeErrs []Problem) bool {
	for _, te := range typeErrs {
		if rest, ok := strings.CutPrefix(field, te.Field); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return true
		}
	}
	return false
}
