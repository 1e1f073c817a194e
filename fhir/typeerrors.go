package fhir

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// typeProblems reports every value in a JSON document whose type does not fit the field of
// Incident it would decode into, each with its full path ("patients[1].sex: must be a
// string"). encoding/json stops reporting at the first such value and names it without
// array indices, so ParseIncident calls this when, and only when, the decode failed with a
// type error; the happy path never pays for it.
//
// The document is decoded again into plain values (numbers kept as text, so that 1e400 is
// no trouble) and walked against the Incident type through its json tags, with the field
// matching encoding/json uses: the exact key first, else one equal but for case; unknown
// keys are ignored, as the decoder ignores them. The walk follows the Go type, which is a
// few levels deep, not the document, so a deeply nested value costs no recursion. It returns
// nil if data does not decode, and never panics.
func typeProblems(data []byte) []Problem {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return nil
	}
	var ps []Problem
	checkType(&ps, "", doc, reflect.TypeFor[Incident]())
	return ps
}

// checkType checks v, found at path, against the Go type t, appending a problem for each
// value that does not fit.
func checkType(ps *[]Problem, path string, v any, t reflect.Type) {
	if v == nil {
		return // null leaves any field as it was
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(what string) {
		field := path
		if field == "" {
			field = "(document)"
		}
		*ps = append(*ps, Problem{Field: field, Message: "must be " + what})
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad("a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			bad("a whole number")
			break
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			bad("a whole number")
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			bad("a number")
			break
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			bad("a number")
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			bad("an array")
			break
		}
		for i, e := range list {
			checkType(ps, path+"["+strconv.Itoa(i)+"]", e, t.Elem())
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("an object")
			break
		}
		fields := jsonFieldsOf(t)
		type member struct {
			f   *jsonField
			key string
		}
		members := make([]member, 0, len(obj))
		for k := range obj {
			if f := fields.lookup(k); f != nil {
				members = append(members, member{f, k})
			}
		}
		// In the order of the Go fields, as Validate reports, whatever the map's order.
		slices.SortFunc(members, func(a, b member) int {
			if a.f.order != b.f.order {
				return a.f.order - b.f.order
			}
			return strings.Compare(a.key, b.key)
		})
		for _, m := range members {
			p := m.f.name
			if path != "" {
				p = path + "." + m.f.name
			}
			checkType(ps, p, obj[m.key], m.f.typ)
		}
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
	byName map[string]*jsonField
	list   []*jsonField
}

// lookup finds the field a key decodes into: the exact name, else one equal but for case.
func (fs *jsonFields) lookup(key string) *jsonField {
	if f, ok := fs.byName[key]; ok {
		return f
	}
	for _, f := range fs.list {
		if strings.EqualFold(f.name, key) {
			return f
		}
	}
	return nil
}

var jsonFieldCache sync.Map // reflect.Type -> *jsonFields

func jsonFieldsOf(t reflect.Type) *jsonFields {
	if fs, ok := jsonFieldCache.Load(t); ok {
		return fs.(*jsonFields)
	}
	fs := &jsonFields{byName: map[string]*jsonField{}}
	collectJSONFields(fs, t)
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
