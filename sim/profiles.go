package sim

import (
	"strconv"
	"time"
)

// canonicalBases maps a taxonomy version to the base of its StructureDefinition URLs. v6
// moved to a new canonical host while submissions still go to the APIM host (README §4).
var canonicalBases = map[int]string{
	4: "https://psims-uat.azure-api.net/taxonomy/fhir/StructureDefinition",
	5: "https://psims-uat.azure-api.net/taxonomy/fhir/StructureDefinition",
	6: "https://developer.learn-from-patient-safety-events.nhs.uk/taxonomy/fhir/StructureDefinition",
}

// fhirR4 reports whether a taxonomy version is built on FHIR R4 rather than STU3.
func fhirR4(version int) bool { return version >= 6 }

const profilePrefix = "/patient-safety-adverse-event-"

// ProfileURL returns the AdverseEvent profile URL of a taxonomy version the simulator knows,
// or "" for one it does not.
func ProfileURL(version int) string {
	base, ok := canonicalBases[version]
	if !ok {
		return ""
	}
	return base + profilePrefix + strconv.Itoa(version)
}

func referenceMetadataURL(version int) string {
	return canonicalBases[version] + "/adverse-event-reference-metadata-" + strconv.Itoa(version)
}

// fhirInstant is how FHIR writes meta.lastUpdated.
const fhirInstant = "2006-01-02T15:04:05.000Z07:00"

// stamp makes res what the service stores: server id and version, and the national
// reference inside the reference-metadata extension. The structural checks have made sure
// meta is an object and extension, if present, an array of objects.
func stamp(res map[string]any, id, versionID string, at time.Time, reference string, version int) {
	res["id"] = id
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		res["meta"] = meta
	}
	meta["versionId"] = versionID
	meta["lastUpdated"] = at.UTC().Format(fhirInstant)

	refEntry := map[string]any{"url": "ReferenceNumber", "valueString": reference}
	exts, _ := res["extension"].([]any)
	url := referenceMetadataURL(version)
	for _, e := range exts {
		outer, _ := e.(map[string]any)
		if outer == nil || outer["url"] != url {
			continue
		}
		inner, _ := outer["extension"].([]any)
		kept := inner[:0:0]
		for _, ie := range inner {
			if m, _ := ie.(map[string]any); m != nil && m["url"] == "ReferenceNumber" {
				continue // the service, not the sender, owns the reference
			}
			kept = append(kept, ie)
		}
		outer["extension"] = append(kept, refEntry)
		return
	}
	res["extension"] = append(exts, map[string]any{"url": url, "extension": []any{refEntry}})
}

// capabilityStatement lists one AdverseEvent entry per served version, so a client that
// reads each entry's profile and one that reads supportedProfile both find every version.
func (s *Simulator) capabilityStatement() map[string]any {
	resources := make([]any, 0, len(s.versions))
	for _, v := range s.versions {
		p := ProfileURL(v)
		resources = append(resources, map[string]any{
			"type":             "AdverseEvent",
			"profile":          p,
			"supportedProfile": []any{p},
			"interaction":      []any{map[string]any{"code": "create"}, map[string]any{"code": "update"}},
		})
	}
	return map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         s.now().UTC().Format(time.RFC3339),
		"kind":         "instance",
		"software":     map[string]any{"name": "psgw national-service simulator"},
		"implementation": map[string]any{
			"description": "Simulated LFPSE submission API for demos and tests; not the national service",
		},
		"format": []any{"application/fhir+json", "application/json"},
		"rest": []any{map[string]any{
			"mode":     "server",
			"resource": resources,
		}},
	}
}

// Top-level elements of AdverseEvent in each FHIR release. A strict server refuses others,
// and refusing them here catches an R4 field sent in a v5 (STU3) payload and vice versa.
// description is STU3 only in FHIR, but LFPSE v6 clients send it too (README §4), so it is
// common here.
var (
	elementsCommon = []string{
		"resourceType", "id", "meta", "implicitRules", "language", "text", "contained",
		"extension", "modifierExtension", "identifier", "category", "subject", "date",
		"location", "seriousness", "outcome", "recorder", "description", "suspectEntity",
		"subjectMedicalHistory", "referenceDocument", "study",
	}
	elementsSTU3 = []string{"type", "reaction", "eventParticipant"}
	elementsR4   = []string{
		"actuality", "event", "encounter", "detected", "recordedDate", "resultingCondition",
		"severity", "contributor",
	}
)

func knownElements(version int) map[string]bool {
	m := map[string]bool{}
	extra := elementsSTU3
	if fhirR4(version) {
		extra = elementsR4
	}
	for _, list := range [][]string{elementsCommon, extra} {
		for _, e := range list {
			m[e] = true
		}
	}
	return m
}
