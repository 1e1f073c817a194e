package fhir

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzUnknownFields checks the unknown-field scan against a plain reference: decode the
// document into generic values and walk them along the Incident type. For any document that
// ParseIncident would decode (one JSON object, no duplicate keys, types that fit), both must
// name the same members with the same kinds; for any bytes, the scan must return without
// panicking. Seeds are the golden inputs; regressions live in testdata/fuzz/FuzzUnknownFields.
func FuzzUnknownFields(f *testing.F) {
	for _, c := range loadGoldenCases(f) {
		f.Add(c.input)
	}
	for _, s := range []string{
		`{"source":"datix","patients":[{"physicalHarm":"x","Sex":"f"},null,{}],"agents":{"medication":[{"name":"x"}]}}`,
		`{"\u0070hysicalHarm":1,"patients":[{"\u0053ex":"male","a\"b":{"c":[1,{"d":2}]}}]}`,
		`{"agents":{"blood_products":{"factors":["1"],"Factors2":null,"brand":"x"}},"x":[[[[{}]]]]}`,
		`{"location":{"ward":"7","Organisation":"RRK"},"ſource":"datix","KEY":true}`,
		`{"9434765919":1,"` + strings.Repeat("k", 100) + `":2,"\u202eevil":3}`,
		`{`, `[]`, `{"a":}`, `{"patients":[{"sex":"f"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := unknownFields(data) // must not panic, whatever data is
		// Compare on the documents ParseIncident decodes, whatever rules they break: one
		// object (no body-level problem), no duplicate keys, types that fit.
		var in Incident
		if json.Unmarshal(data, &in) != nil {
			return
		}
		_, ps := ParseIncident(data, ParseOptions{Now: goldenNow})
		for _, p := range ps {
			if p.Field == "" || strings.Contains(p.Message, "more than once") {
				return
			}
		}
		want := referenceUnknownFields(t, data)
		if diff := slices.Compare(warningKeys(got), warningKeys(want)); diff != 0 {
			t.Fatalf("scan %v\nreference %v", warningKeys(got), warningKeys(want))
		}
	})
}

func warningKeys(ws []Warning) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = string(w.Kind) + " " + w.Field
	}
	slices.Sort(out)
	// As a set: the reference's maps keep one of two equal keys, which only ParseIncident's
	// duplicate check (not the scan) is there to refuse.
	return slices.Compact(out)
}

// referenceUnknownFields is unknownFields done the slow, obvious way.
func referenceUnknownFields(t *testing.T, data []byte) []Warning {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("reference cannot decode what encoding/json decoded: %v", err)
	}
	var out []Warning
	var walk func(v any, typ reflect.Type, path string)
	walk = func(v any, typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch v := v.(type) {
		case map[string]any:
			if typ.Kind() != reflect.Struct {
				return
			}
			fields := jsonFieldsOf(typ)
			for k, val := range v {
				f, exact := fields.byName[k], true
				if f == nil {
					f, exact = foldedField(fields, k), false
				}
				prefix := path
				if prefix != "" {
					prefix += "."
				}
				switch {
				case f == nil:
					out = append(out, Warning{Field: prefix + quotableKey(k), Kind: WarnUnknownField})
				case !exact:
					out = append(out, Warning{Field: prefix + quotableKey(k), Kind: WarnFieldCase})
				}
				if f != nil {
					walk(val, f.typ, prefix+f.name)
				}
			}
		case []any:
			if typ.Kind() != reflect.Slice {
				return
			}
			for i, e := range v {
				walk(e, typ.Elem(), path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(doc, reflect.TypeFor[Incident](), "")
	return out
}
