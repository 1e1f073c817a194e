package fhir

import (
	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// AdverseEvent is the LFPSE submission resource. It is psgw's own struct rather than samply's
// because LFPSE needs contained resources, which samply's R4 model lacks, and because samply's
// non-pointer enums (actuality) would be emitted in an STU3 (v5) payload whether set or not.
// Its parts (Extension, Reference, Meta, CodeableConcept) are samply's.
type AdverseEvent struct {
	ResourceType  string              `json:"resourceType"`
	ID            string              `json:"id,omitempty"`
	Meta          *fm.Meta            `json:"meta,omitempty"`
	Contained     []Contained         `json:"contained,omitempty"`
	Extension     []fm.Extension      `json:"extension,omitempty"`
	Actuality     string              `json:"actuality,omitempty"`
	Event         *fm.CodeableConcept `json:"event,omitempty"`
	Type          *fm.CodeableConcept `json:"type,omitempty"`
	Subject       *fm.Reference       `json:"subject,omitempty"`
	Date          string              `json:"date,omitempty"`
	Location      *fm.Reference       `json:"location,omitempty"`
	Recorder      *fm.Reference       `json:"recorder,omitempty"`
	Description   string              `json:"description,omitempty"`
	SuspectEntity []SuspectEntity     `json:"suspectEntity,omitempty"`

	// parts are the complex extensions while the builder holds them in their compact form;
	// materialize turns them into Extension. Prepare reads them directly.
	parts []*complexExt
}

// Contained is a resource carried inside the AdverseEvent and referenced as "#id". LFPSE's
// contained profiles add only extensions, so nothing else is ever set.
type Contained struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Extension    []fm.Extension `json:"extension,omitempty"`

	parts []*complexExt // as AdverseEvent.parts
}

// materialize sets Extension from the compact parts, for a resource leaving the package.
func (ae *AdverseEvent) materialize() {
	ae.Extension, ae.parts = extensionsOf(ae.parts, ae.Extension), nil
	for i := range ae.Contained {
		c := &ae.Contained[i]
		c.Extension, c.parts = extensionsOf(c.parts, c.Extension), nil
	}
}

// extensionsOf appends the extensions of parts to exts.
func extensionsOf(parts []*complexExt, exts []fm.Extension) []fm.Extension {
	if len(parts) == 0 {
		return exts
	}
	if exts == nil {
		exts = make([]fm.Extension, 0, len(parts))
	}
	for _, p := range parts {
		exts = append(exts, p.ext())
	}
	return exts
}

// SuspectEntity points at a contained Medication or Device.
type SuspectEntity struct {
	Instance fm.Reference `json:"instance"`
}

func ref(id string) *fm.Reference {
	r := "#" + id
	return &fm.Reference{Reference: &r}
}

// complexExt is an outer (complex) extension being filled; inner entries use the bare
// field name as url (lfpse README §3). Its answers are gathered in a compact form: Build turns
// them into samply's Extension (ext) once, at their final number, and Prepare goes straight
// to the decoded-JSON form (doc) without them. An fm.Extension is 448 bytes; growing a slice of
// them one append at a time, and building them only to read them back, were the largest
// shares of Prepare's allocations.
type complexExt struct {
	url   string
	items []innerExt
}

// innerExt is one answer of a complexExt: the value under the key its kind names.
type innerExt struct {
	name string
	kind valueKind
	str  string // valueCode, valueString, valueTime
	num  int    // valueInteger
	flag bool   // valueBoolean
}

type valueKind uint8

const (
	valueCode valueKind = iota
	valueString
	valueInteger
	valueBoolean
	valueTime
)

func newExt(url string) *complexExt { return &complexExt{url: url, items: make([]innerExt, 0, 8)} }

// ext returns the extension with its answers in the order they were added. The values point
// into e, which must not change afterwards.
func (e *complexExt) ext() fm.Extension {
	out := fm.Extension{Url: e.url}
	if len(e.items) == 0 {
		return out
	}
	out.Extension = make([]fm.Extension, len(e.items))
	for i := range e.items {
		it := &e.items[i]
		x := &out.Extension[i]
		x.Url = it.name
		switch it.kind {
		case valueCode:
			x.ValueCode = &it.str
		case valueString:
			x.ValueString = &it.str
		case valueInteger:
			x.ValueInteger = &it.num
		case valueBoolean:
			x.ValueBoolean = &it.flag
		case valueTime:
			x.ValueTime = &it.str
		}
	}
	return out
}

// code adds a coded answer once: a multi-select answer given twice would break the field's
// cardinality and says nothing more.
func (e *complexExt) code(name, v string) {
	if v == "" {
		return
	}
	for _, x := range e.items {
		if x.name == name && x.kind == valueCode && x.str == v {
			return
		}
	}
	e.items = append(e.items, innerExt{name: name, kind: valueCode, str: v})
}

func (e *complexExt) str(name, v string) {
	if v != "" {
		e.items = append(e.items, innerExt{name: name, kind: valueString, str: v})
	}
}

// appendStr adds v to the single string answer name, joining with "; " when it is already
// there: "Other" free text takes every unmapped value of a multi-select field.
func (e *complexExt) appendStr(name, v string) {
	for i, x := range e.items {
		if x.name == name && x.kind == valueString {
			e.items[i].str = x.str + "; " + v
			return
		}
	}
	e.str(name, v)
}

func (e *complexExt) integer(name string, v int) {
	e.items = append(e.items, innerExt{name: name, kind: valueInteger, num: v})
}

func (e *complexExt) boolean(name string, v *bool) {
	if v != nil {
		e.items = append(e.items, innerExt{name: name, kind: valueBoolean, flag: *v})
	}
}

func (e *complexExt) time(name, v string) {
	if v != "" {
		e.items = append(e.items, innerExt{name: name, kind: valueTime, str: v})
	}
}

func (e *complexExt) empty() bool { return len(e.items) == 0 }
