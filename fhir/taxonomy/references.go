package taxonomy

import (
	"slices"
	"strings"

	"github.com/psgw/psgw/fhir/privacy"
)

// containedTypes are the resource types an LFPSE AdverseEvent contains.
var containedTypes = []string{"Patient", "Practitioner", "Location", "Medication", "Device"}

// containedElements are the keys a contained resource may have: each
// carries only its LFPSE extension.
var containedElements = []string{"resourceType", "id", "meta", "extension"}

// contained is one contained resource with a usable id.
type contained struct {
	path       string
	typ        string
	referenced bool
}

// containedResources checks r.contained and returns the resources with
// valid, unique ids by id.
func (c *checker) containedResources(r map[string]any) map[string]*contained {
	list, _ := c.array("contained", r, "contained")
	byID := make(map[string]*contained, len(list))
	for i, e := range list {
		p := joinIndex("contained", i)
		obj, ok := e.(map[string]any)
		if !ok {
			c.ps.add(p, RuleStructure, "contained resource is not a JSON object")
			continue
		}
		rt, present := obj["resourceType"]
		typ, _ := rt.(string)
		if !slices.Contains(containedTypes, typ) {
			if !present {
				c.ps.add(joinKey(p, "resourceType"), RuleRequired, "contained resource has no resourceType")
			} else {
				c.ps.add(joinKey(p, "resourceType"), RuleResourceType,
					"contained resource must be a Patient, Practitioner, Location, Medication or Device")
			}
			continue
		}
		p += "(" + typ + ")"
		for k := range obj {
			if !slices.Contains(containedElements, k) && !privacy.IsIdentifierName(k) {
				c.ps.add(keyPath(p, k), RuleUnknownElement, "a contained %s carries only its LFPSE extension, not %s", typ, quote(k))
			}
		}
		if res := c.containedID(p, obj, byID); res != nil {
			res.typ = typ
		}
		if c.version == 5 {
			profile, _ := c.tax.ResourceForType(typ)
			c.extensionsV5(p, profile, obj)
		} else {
			c.extensionsV6(p, typ, obj)
		}
	}
	return byID
}

// containedID checks a contained resource's id and registers it.
func (c *checker) containedID(path string, obj map[string]any, byID map[string]*contained) *contained {
	v, ok := obj["id"]
	id, isString := v.(string)
	switch {
	case !ok:
		c.ps.add(joinKey(path, "id"), RuleContained, "contained resource has no id")
	case !isString || !isFHIRID(id):
		c.ps.add(joinKey(path, "id"), RuleContained, "id is not a FHIR id (1-64 of A-Z a-z 0-9 - .)")
	case byID[id] != nil:
		c.ps.add(joinKey(path, "id"), RuleContained, "id %s is already used by %s", quote(id), byID[id].path)
	default:
		byID[id] = &contained{path: path}
		return byID[id]
	}
	return nil
}

// references checks the AdverseEvent's references to its contained
// resources, then that every contained resource is referenced, as FHIR
// requires.
func (c *checker) references(r map[string]any, byID map[string]*contained) {
	c.reference("subject", r, "subject", byID, "Patient")
	c.reference("recorder", r, "recorder", byID, "Practitioner")
	c.reference("location", r, "location", byID, "Location")
	list, _ := c.array("suspectEntity", r, "suspectEntity")
	for i, e := range list {
		p := joinIndex("suspectEntity", i)
		se, ok := e.(map[string]any)
		if !ok {
			c.ps.add(p, RuleStructure, "suspectEntity is not a JSON object")
			continue
		}
		if _, ok := se["instance"]; !ok {
			c.ps.add(joinKey(p, "instance"), RuleRequired, "suspectEntity.instance is required")
			continue
		}
		c.reference(joinKey(p, "instance"), se, "instance", byID, "Medication", "Device")
	}
	for _, res := range byID {
		if !res.referenced {
			c.ps.add(res.path, RuleContained,
				"contained resource is not referenced from the AdverseEvent (FHIR contained resources must be)")
		}
	}
}

// reference checks m[key], if present, is {"reference": "#id"} naming a
// contained resource of one of the wanted types.
func (c *checker) reference(path string, m map[string]any, key string, byID map[string]*contained, want ...string) {
	ref, ok := c.object(path, m, key)
	if !ok {
		return
	}
	for k := range ref {
		if k != "reference" && k != "type" && !privacy.IsIdentifierName(k) {
			// display in particular could carry a patient's name.
			c.ps.add(keyPath(path, k), RuleUnknownElement, "a reference carries only reference, not %s", quote(k))
		}
	}
	s, isString := ref["reference"].(string)
	id, local := strings.CutPrefix(s, "#")
	if !isString || !local || id == "" {
		c.ps.add(joinKey(path, "reference"), RuleReference, "reference must be \"#<id>\" of a contained %s", strings.Join(want, " or "))
		return
	}
	target := byID[id]
	switch {
	case target == nil:
		c.ps.add(joinKey(path, "reference"), RuleReference, "reference %s names no contained resource", quote(s))
		return
	case !slices.Contains(want, target.typ):
		c.ps.add(joinKey(path, "reference"), RuleReference, "reference %s names a %s, want %s", quote(s), target.typ, strings.Join(want, " or "))
		target.referenced = true // one problem is enough
	default:
		target.referenced = true
	}
	if t, ok := ref["type"]; ok && t != target.typ {
		c.ps.add(joinKey(path, "type"), RuleReference, "type does not match the contained %s", target.typ)
	}
}
