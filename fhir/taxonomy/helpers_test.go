package taxonomy

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// example returns a fresh decoded copy of the README §5 worked example
// (v5) or its v6 rendering.
func example(t testing.TB, version int) map[string]any {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("testdata/worked-example-v%d.json", version))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// decodeJSON decodes a JSON value for a test mutation.
func decodeJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	return v
}

// outer returns the first outer extension of r whose url ends in "/"+id.
func outer(r map[string]any, id string) map[string]any {
	for _, e := range r["extension"].([]any) {
		m := e.(map[string]any)
		if strings.HasSuffix(m["url"].(string), "/"+id) {
			return m
		}
	}
	panic("no extension " + id)
}

// inner returns the first inner extension named name.
func inner(ext map[string]any, name string) map[string]any {
	for _, e := range ext["extension"].([]any) {
		m := e.(map[string]any)
		if m["url"] == name {
			return m
		}
	}
	panic("no field " + name)
}

func addInner(ext map[string]any, s string) {
	ext["extension"] = append(ext["extension"].([]any), decodeJSON(s))
}

func removeInner(ext map[string]any, name string) {
	var kept []any
	for _, e := range ext["extension"].([]any) {
		if e.(map[string]any)["url"] != name {
			kept = append(kept, e)
		}
	}
	ext["extension"] = kept
}

func addOuter(r map[string]any, s string) {
	r["extension"] = append(r["extension"].([]any), decodeJSON(s))
}

func containedAt(r map[string]any, i int) map[string]any {
	return r["contained"].([]any)[i].(map[string]any)
}

// patient returns the worked example's patient-information extension.
func patient(r map[string]any) map[string]any {
	return containedAt(r, 0)["extension"].([]any)[0].(map[string]any)
}

func s5(id string) string { return V5CanonicalBase + "/StructureDefinition/" + id }
func s6(id string) string { return V6CanonicalBase + "/StructureDefinition/" + id }

// summary renders problems as "rule path" lines for comparison.
func summary(ps []Problem) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Rule+" "+p.Path)
	}
	return out
}
