package taxonomy

import (
	"sort"
	"strings"
)

// Taxonomy is one decoded taxonomy version. It is read-only and safe for
// concurrent use; pointers it hands out must not be modified.
type Taxonomy struct {
	// Version is the taxonomy version, e.g. 5.
	Version int
	// CanonicalBase is the base of every profile, extension and value-set url.
	CanonicalBase string
	// Profile is the AdverseEvent profile url.
	Profile string

	resources      map[string]*Resource // by profile id
	resourceByType map[string]*Resource
	extByURL       map[string]*Extension
	extByID        map[string]*Extension
	valueSets      map[string]*ValueSet
	ods            *ValueSet
}

// Resource is a profile: the AdverseEvent itself or one of the resources it
// contains (Patient, Location, Practitioner, Medication, Device).
type Resource struct {
	// ID is the profile id, e.g. "adverse-event-patient-5".
	ID string
	// Type is the FHIR resource type, e.g. "Patient".
	Type string
	// URL is the profile's canonical url.
	URL string
	// Extensions are the complex extensions the profile allows, in
	// taxonomy order.
	Extensions []*Extension
}

// Extension is a complex extension: an outer extension whose inner
// extensions are its fields.
type Extension struct {
	// ID is the StructureDefinition id, e.g. "adverse-event-agent-5".
	ID string
	// URL is the absolute url, used verbatim as the outer extension's url.
	URL string
	// SliceName is the slice's name on its resource, e.g. "AdverseEventAgent".
	SliceName string
	// Resource is the profile the extension sits on.
	Resource *Resource
	// Min and Max are how many times the extension may occur on Resource.
	Min, Max int
	// Description is the taxonomy's description, as published.
	Description string
	// Fields are the inner extensions, in taxonomy order.
	Fields []*Field

	fields map[string]*Field
}

// Field is one inner extension of a complex extension.
type Field struct {
	// Name is the inner extension's url, e.g. "PatientSequence".
	Name string
	// Min and Max are how many times the field may occur in one outer
	// extension; Max > 1 means a multi-select answer.
	Min, Max int
	// Type is the value type: code, string, integer, boolean, date or time. It is empty
	// for a V6 field whose type is not known.
	Type string
	// ValueKey is the value[x] key, e.g. "valueCode"; empty when Type is.
	ValueKey string
	// ValueSet is the id of the bound value set, for code fields only. In V6 a code field
	// whose codes are not known has none.
	ValueSet string
	// Definition is the taxonomy's definition, as published.
	Definition string
}

// ValueSet is a value set: the codes a code field may take.
type ValueSet struct {
	// ID is the value-set id, e.g. "gender-5".
	ID string
	// Name is the human-readable name.
	Name string
	// URL is the canonical url.
	URL string
	// Codes are the codes in source order.
	Codes []Code

	byCode    map[string]int // index into Codes
	byDisplay map[string]int // lower-cased display; -1 when ambiguous
}

// Code is one code of a value set.
type Code struct {
	Code    string
	Display string
}

// Resource returns the profile with the given id.
func (t *Taxonomy) Resource(profileID string) (*Resource, bool) {
	r, ok := t.resources[profileID]
	return r, ok
}

// ResourceForType returns the profile for a resource type: "AdverseEvent",
// or a contained type such as "Patient".
func (t *Taxonomy) ResourceForType(resourceType string) (*Resource, bool) {
	r, ok := t.resourceByType[resourceType]
	return r, ok
}

// Resources returns every profile, sorted by id.
func (t *Taxonomy) Resources() []*Resource {
	out := make([]*Resource, 0, len(t.resources))
	for _, r := range t.resources {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Extension returns the complex extension with the given absolute url.
func (t *Taxonomy) Extension(url string) (*Extension, bool) {
	e, ok := t.extByURL[url]
	return e, ok
}

// ExtensionByID returns the complex extension with the given id, e.g.
// "patient-information-5".
func (t *Taxonomy) ExtensionByID(id string) (*Extension, bool) {
	e, ok := t.extByID[id]
	return e, ok
}

// Field returns an inner field by its outer extension's url and its name.
func (t *Taxonomy) Field(extURL, name string) (*Field, bool) {
	e, ok := t.extByURL[extURL]
	if !ok {
		return nil, false
	}
	return e.Field(name)
}

// ValueSet returns the value set with the given id. The ODS list is a value
// set too ("ods-codes-5").
func (t *Taxonomy) ValueSet(id string) (*ValueSet, bool) {
	vs, ok := t.valueSets[id]
	return vs, ok
}

// IsODSCode reports whether code is in the embedded ODS organisation list.
// Codes are compared exactly; ODS codes are upper case.
func (t *Taxonomy) IsODSCode(code string) bool { return t.ods.Has(code) }

// ODSName returns the published name of an ODS organisation, or "" if code
// is not in the list.
func (t *Taxonomy) ODSName(code string) string {
	name, _ := t.ods.Display(code)
	return name
}

// Field returns the inner field with the given name.
func (e *Extension) Field(name string) (*Field, bool) {
	f, ok := e.fields[name]
	return f, ok
}

// Has reports whether code is in the value set. Codes are compared exactly:
// they are strings even when they look numeric, so "04" is not "4".
func (vs *ValueSet) Has(code string) bool {
	_, ok := vs.byCode[code]
	return ok
}

// Display returns the display text of a code.
func (vs *ValueSet) Display(code string) (string, bool) {
	i, ok := vs.byCode[code]
	if !ok {
		return "", false
	}
	return vs.Codes[i].Display, true
}

// CodeForDisplay returns the code whose display text equals display,
// ignoring case and surrounding space. It is meant for building code maps
// from local answer lists. When two codes share a display (as some ODS names
// do) it reports false rather than guess.
func (vs *ValueSet) CodeForDisplay(display string) (string, bool) {
	i, ok := vs.byDisplay[displayKey(display)]
	if !ok || i < 0 {
		return "", false
	}
	return vs.Codes[i].Code, true
}

func displayKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
