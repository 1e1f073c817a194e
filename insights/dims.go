package insights

import (
	"slices"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ledger"
)

// NotRecorded is the group key of incidents that have no answer for a dimension (no patient,
// so no harm; no agent given; a record that could not be read).
const NotRecorded = "not_recorded"

// dimension is one thing the API can count by. A single-valued one keeps a value per fact in
// row.v[col]; a multi-valued one (agent, age_band) a bit per value of a fixed list in
// row.masks[col], and a fact counts once in each of its values' groups.
type dimension struct {
	name string
	// fixed lists the values in their natural order (those of an open dimension, such as
	// organisation, come from the facts); multi marks a multi-valued dimension.
	fixed []string
	multi bool
	col   int
	// label names a value for people ("" when the key says it all).
	label func(string) string
	// of reads the dimension's value(s) from a fact.
	of func(f *Fact) []string
}

func one(s string) []string { return []string{s} }

var harms = []string{"none", "low", "moderate", "severe", "fatal"}

// ageBands are the age-bracket-5 codes, youngest first.
var ageBands = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}

func stateNames() []string {
	var out []string
	for _, s := range ledger.States() {
		out = append(out, string(s))
	}
	return out
}

// dimensions are the API's dimensions (docs/insights.md, "Dimensions"), in the order the
// docs list them.
var dimensions = []*dimension{
	{name: "event_type", fixed: eventTypes, of: func(f *Fact) []string { return one(f.EventType) }},
	{name: "physical_harm", fixed: harms, of: func(f *Fact) []string { return one(f.PhysicalHarm) }},
	{name: "psychological_harm", fixed: harms[:4], of: func(f *Fact) []string { return one(f.PsychologicalHarm) }},
	{name: "organisation", label: fhir.OrganisationLabel, of: func(f *Fact) []string { return one(f.Organisation) }},
	{name: "service_area", label: fhir.ServiceAreaLabel, of: func(f *Fact) []string { return one(f.ServiceArea) }},
	{name: "within_service", label: fhir.WithinServiceLabel, of: func(f *Fact) []string { return one(f.WithinService) }},
	{name: "specialty", label: fhir.SpecialtyLabel, of: func(f *Fact) []string { return one(f.Specialty) }},
	{name: "reporter_role", label: fhir.RoleLabel, of: func(f *Fact) []string { return one(f.ReporterRole) }},
	{name: "source", of: func(f *Fact) []string { return one(f.Source) }},
	{name: "state", fixed: stateNames(), of: func(f *Fact) []string { return one(f.State) }},
	{name: "agent", fixed: fhir.AgentKinds, multi: true, of: func(f *Fact) []string { return f.Agents }},
	{name: "age_band", fixed: ageBands, multi: true, label: fhir.AgeBandLabel, of: func(f *Fact) []string { return f.AgeBands }},
}

// Column counts of a row.
var nSingle, nMulti = func() (int, int) {
	s, m := 0, 0
	for _, d := range dimensions {
		if d.multi {
			d.col = m
			m++
		} else {
			d.col = s
			s++
		}
	}
	return s, m
}()

var stateDim = dimensionNamed("state")

func dimensionNamed(name string) *dimension {
	i := slices.IndexFunc(dimensions, func(d *dimension) bool { return d.name == name })
	if i < 0 {
		return nil
	}
	return dimensions[i]
}

// Dimensions returns the names the API's by parameter and filters take.
func Dimensions() []string {
	out := make([]string, len(dimensions))
	for i, d := range dimensions {
		out[i] = d.name
	}
	return out
}
