package sim

import (
	"fmt"
	"github.com/psgw/psgw/fhir/privacy"
	"math"
	"slices"
	"strconv"
	"strings"
)

// forbiddenKeys are elements that carry patient identifiers. The LFPSE profiles have no use for
// them, and none may leave the gateway (docs/privacy.md, "What never leaves"), so any key of these
// names, at any depth, is refused.
var forbiddenKeys = map[string]bool{
	"identifier": true, "name": true, "birthDate": true, "address": true, "telecom": true,
}

// containedTypes are the resources LFPSE carries in contained[] (README §3).
var containedTypes = map[string]bool{
	"Patient": true, "Practitioner": true, "Location": true, "Medication": true, "Device": true,
}

// typedReferences are the AdverseEvent elements that must point at a contained resource
// of a given type.
var typedReferences = []struct {
	element string
	types   []string
}{
	{"subject", []string{"Patient"}},
	{"recorder", []string{"Practitioner"}},
	{"location", []string{"Location"}},
}

// checker collects the built-in structural issues of one payload.
type checker struct {
	issues     []Issue
	contained  map[string]string // contained id → resourceType
	referenced map[string]bool   // contained ids some "#id" reference points at
}

func (c *checker) add(path, rule, code, format string, args ...any) {
	c.issues = append(c.issues, Issue{Path: path, Rule: rule, Code: code, Message: fmt.Sprintf(format, args...)})
}

// structuralIssues runs the checks that need no taxonomy: profile and version, element
// names, contained resources and references, extension shape, and privacy. It returns the
// taxonomy version named by the profile, or 0 when the profile gave none the simulator serves.
func structuralIssues(res map[string]any, served []int) (int, []Issue) {
	c := &checker{contained: map[string]string{}, referenced: map[string]bool{}}
	version := c.profile(res, served)
	if version != 0 {
		c.elements(res, version)
	}
	c.containedResources(res)
	c.walk("AdverseEvent", privacy.WithoutServerFields(res))
	c.typedRefs(res)
	for _, id := range sortedKeys(c.contained) {
		if !c.referenced[id] {
			c.add(containedPath(res, id), "dom-3", "invalid",
				"contained resource is not referenced from the AdverseEvent")
		}
	}
	return version, c.issues
}

func (c *checker) profile(res map[string]any, served []int) int {
	const path = "AdverseEvent.meta.profile"
	meta, ok := res["meta"].(map[string]any)
	if !ok {
		c.add("AdverseEvent.meta", "profile-required", "required",
			"meta with the patient-safety-adverse-event profile is required")
		return 0
	}
	list, ok := meta["profile"].([]any)
	if !ok {
		c.add(path, "profile-required", "required",
			"meta.profile must be an array naming the patient-safety-adverse-event profile")
		return 0
	}
	var found []string
	for i, p := range list {
		str, ok := p.(string)
		if !ok {
			c.add(fmt.Sprintf("%s[%d]", path, i), "profile-type", "structure", "profile must be a string")
			continue
		}
		if strings.Contains(str, profilePrefix) {
			found = append(found, str)
		}
	}
	switch {
	case len(found) == 0:
		c.add(path, "profile-required", "required", "meta.profile must name the patient-safety-adverse-event profile")
		return 0
	case len(found) > 1:
		c.add(path, "profile-ambiguous", "invalid", "meta.profile names more than one patient-safety-adverse-event profile")
		return 0
	}
	p := found[0]
	v, err := strconv.Atoi(p[strings.LastIndex(p, profilePrefix)+len(profilePrefix):])
	if err != nil || !slices.Contains(served, v) {
		c.add(path, "profile-version", "value",
			"the profile's taxonomy version is not served here (served: %s)", joinInts(served))
		return 0
	}
	if p != ProfileURL(v) {
		c.add(path, "profile-canonical", "value", "the version %d profile must be %s", v, ProfileURL(v))
		return 0
	}
	return v
}

func (c *checker) elements(res map[string]any, version int) {
	known := knownElements(version)
	release := "STU3"
	if fhirR4(version) {
		release = "R4"
	}
	for _, k := range sortedKeys(res) {
		if !known[k] && !known[strings.TrimPrefix(k, "_")] {
			c.add("AdverseEvent."+k, "unknown-element", "structure",
				"not an AdverseEvent element in FHIR %s (taxonomy version %d)", release, version)
		}
	}
	if fhirR4(version) {
		switch res["actuality"] {
		case "actual", "potential":
		case nil:
			c.add("AdverseEvent.actuality", "actuality-required", "required", "actuality is required in FHIR R4")
		default:
			c.add("AdverseEvent.actuality", "actuality-value", "value", `actuality must be "actual" or "potential"`)
		}
		// R4 AdverseEvent.subject is 1..1.
		if _, ok := res["subject"]; !ok {
			c.add("AdverseEvent.subject", "subject-required", "required", "subject is required in FHIR R4")
		}
	}
}

func (c *checker) containedResources(res map[string]any) {
	raw, present := res["contained"]
	if !present {
		return
	}
	list, ok := raw.([]any)
	if !ok {
		c.add("AdverseEvent.contained", "contained-type", "structure", "contained must be an array of resources")
		return
	}
	for i, e := range list {
		path := fmt.Sprintf("AdverseEvent.contained[%d]", i)
		r, ok := e.(map[string]any)
		if !ok {
			c.add(path, "contained-type", "structure", "contained entry must be a resource")
			continue
		}
		rt, _ := r["resourceType"].(string)
		if !containedTypes[rt] {
			c.add(path+".resourceType", "contained-resource-type", "value",
				"contained resource must be a Patient, Practitioner, Location, Medication or Device")
		}
		if _, nested := r["contained"]; nested {
			c.add(path+".contained", "dom-2", "invalid", "a contained resource must not contain resources")
		}
		id, ok := r["id"].(string)
		if !ok || id == "" {
			c.add(path+".id", "contained-id-required", "required", "contained resource needs an id")
			continue
		}
		if _, dup := c.contained[id]; dup {
			c.add(path+".id", "contained-id-unique", "invalid", "contained resource ids must be unique")
			continue
		}
		c.contained[id] = rt
	}
}

// walk visits every value: references, extension shape, forbidden keys, NHS numbers.
func (c *checker) walk(path string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			child := path + "." + k
			if forbiddenKeys[k] {
				c.add(child, "no-patient-identifiers", "invalid", "patient and staff identifiers must not be sent")
				continue
			}
			switch k {
			case "reference":
				c.reference(child, v[k])
			case "extension", "modifierExtension":
				c.extensionShape(child, k, v[k])
			}
			c.walk(child, v[k])
		}
	case []any:
		for i, e := range v {
			c.walk(fmt.Sprintf("%s[%d]", path, i), e)
		}
	case string:
		if privacy.ContainsNHSNumber(v) {
			c.add(path, "no-nhs-number", "value", "contains what looks like an NHS number (passes Modulus 11)")
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) >= 1e9 && math.Abs(v) < 1e10 &&
			privacy.ValidNHSNumber(strconv.FormatFloat(math.Abs(v), 'f', 0, 64)) {
			c.add(path, "no-nhs-number", "value", "contains what looks like an NHS number (passes Modulus 11)")
		}
	}
}

func (c *checker) reference(path string, v any) {
	ref, ok := v.(string)
	if !ok {
		c.add(path, "reference-type", "structure", "reference must be a string")
		return
	}
	if ref == "#" { // the container itself
		return
	}
	id, local := strings.CutPrefix(ref, "#")
	if !local {
		c.add(path, "reference-local", "value", `reference must point at a contained resource ("#id")`)
		return
	}
	if _, ok := c.contained[id]; !ok {
		c.add(path, "reference-resolves", "invalid", "reference does not resolve to a contained resource")
		return
	}
	c.referenced[id] = true
}

func (c *checker) extensionShape(path, key string, v any) {
	if key == "modifierExtension" {
		c.add(path, "modifier-extension", "structure", "modifier extensions are not understood and must not be sent")
		return
	}
	list, ok := v.([]any)
	if !ok {
		c.add(path, "extension-shape", "structure", "extension must be an array")
		return
	}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			c.add(fmt.Sprintf("%s[%d]", path, i), "extension-shape", "structure", "extension entry must be an object")
			continue
		}
		if u, ok := m["url"].(string); !ok || u == "" {
			c.add(fmt.Sprintf("%s[%d].url", path, i), "extension-url", "required", "extension needs a url")
		}
	}
}

// typedRefs checks that subject, recorder, location and suspectEntity[].instance point at
// the right kind of contained resource. Whether they resolve at all, walk has checked.
func (c *checker) typedRefs(res map[string]any) {
	for _, tr := range typedReferences {
		c.typedRef("AdverseEvent."+tr.element, res[tr.element], tr.types)
	}
	raw, present := res["suspectEntity"]
	if !present {
		return
	}
	list, ok := raw.([]any)
	if !ok {
		c.add("AdverseEvent.suspectEntity", "suspect-entity-shape", "structure", "suspectEntity must be an array")
		return
	}
	for i, e := range list {
		path := fmt.Sprintf("AdverseEvent.suspectEntity[%d]", i)
		se, ok := e.(map[string]any)
		if !ok {
			c.add(path, "suspect-entity-shape", "structure", "suspectEntity entry must be an object")
			continue
		}
		if _, ok := se["instance"]; !ok {
			c.add(path+".instance", "suspect-entity-instance", "required", "suspectEntity needs an instance")
			continue
		}
		c.typedRef(path+".instance", se["instance"], []string{"Medication", "Device"})
	}
}

func (c *checker) typedRef(path string, v any, types []string) {
	if v == nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, "reference-shape", "structure", "must be a Reference object")
		return
	}
	ref, ok := m["reference"].(string)
	if !ok {
		if _, present := m["reference"]; !present {
			c.add(path+".reference", "reference-required", "required", "a local reference is required")
		}
		return // a non-string reference was reported by walk
	}
	rt, ok := c.contained[strings.TrimPrefix(ref, "#")]
	if ok && strings.HasPrefix(ref, "#") && !slices.Contains(types, rt) {
		c.add(path+".reference", "reference-target-type", "value",
			"must point at a contained %s", strings.Join(types, " or "))
	}
}

// containedPath names the contained entry with the given id, for dom-3 issues.
func containedPath(res map[string]any, id string) string {
	list, _ := res["contained"].([]any)
	for i, e := range list {
		if m, _ := e.(map[string]any); m != nil && m["id"] == id {
			return fmt.Sprintf("AdverseEvent.contained[%d]", i)
		}
	}
	return "AdverseEvent.contained"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}
