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
}

// Contained is a resource carried inside the AdverseEvent and referenced as "#id". LFPSE's
// contained profiles add only extensions, so nothing else is ever set.
type Contained struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Extension    []fm.Extension `json:"extension,omitempty"`
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
// field name as url (lfpse README §3).
type complexExt struct{ fm.Extension }

func newExt(url string) *complexExt { return &complexExt{fm.Extension{Url: url}} }

// code adds a coded answer once: a multi-select answer given twice would break the field's
// cardinality and says nothing more.
func (e *complexExt) code(name, v string) {
	if v == "" {
		return
	}
	for _, x := range e.Extension.Extension {
		if x.Url == name && x.ValueCode != nil && *x.ValueCode == v {
			return
		}
	}
	e.Extension.Extension = append(e.Extension.Extension, fm.Extension{Url: name, ValueCode: &v})
}

func (e *complexExt) str(name, v string) {
	if v != "" {
		e.Extension.Extension = append(e.Extension.Extension, fm.Extension{Url: name, ValueString: &v})
	}
}

// appendStr adds v to the single string answer name, joining with "; " when it is already
// there: "Other" free text takes every unmapped value of a multi-select field.
func (e *complexExt) appendStr(name, v string) {
	for i, x := range e.Extension.Extension {
		if x.Url == name && x.ValueString != nil {
			joined := *x.ValueString + "; " + v
			e.Extension.Extension[i].ValueString = &joined
			return
		}
	}
	e.str(name, v)
}

func (e *complexExt) integer(name string, v int) {
	e.Extension.Extension = append(e.Extension.Extension, fm.Extension{Url: name, ValueInteger: &v})
}

func (e *complexExt) boolean(name string, v *bool) {
	if v != nil {
		b := *v
		e.Extension.Extension = append(e.Extension.Extension, fm.Extension{Url: name, ValueBoolean: &b})
	}
}

func (e *complexExt) time(name, v string) {
	if v != "" {
		e.Extension.Extension = append(e.Extension.Extension, fm.Extension{Url: name, ValueTime: &v})
	}
}

func (e *complexExt) empty() bool { return len(e.Extension.Extension) == 0 }
