package taxonomy

import "strconv"

// Canonical bases of the taxonomy's StructureDefinitions and ValueSets. They
// name things; they are not where payloads are sent, which is configured
// separately (the v6 client that uses V6CanonicalBase still posts to the
// APIM host).
const (
	V5CanonicalBase = "https://psims-uat.azure-api.net/taxonomy/fhir"
	V6CanonicalBase = "https://developer.learn-from-patient-safety-events.nhs.uk/taxonomy/fhir"
)

// CanonicalBase returns the canonical base of a taxonomy version, or "" for
// a version psgw does not know.
func CanonicalBase(version int) string {
	switch version {
	case 5:
		return V5CanonicalBase
	case 6:
		return V6CanonicalBase
	}
	return ""
}

// ProfileURL returns the AdverseEvent profile URL of a taxonomy version, the
// value meta.profile must hold, or "" for an unknown version.
func ProfileURL(version int) string {
	return ExtensionURL(version, "patient-safety-adverse-event")
}

// ExtensionURL returns the absolute URL of a StructureDefinition from its
// version-less id: ExtensionURL(5, "adverse-event-agent") is
// V5CanonicalBase + "/StructureDefinition/adverse-event-agent-5". It
// returns "" for an unknown version.
func ExtensionURL(version int, name string) string {
	base := CanonicalBase(version)
	if base == "" {
		return ""
	}
	return base + "/StructureDefinition/" + name + "-" + strconv.Itoa(version)
}

// structureDefinitionPrefix is what every outer extension url of a version
// starts with.
func structureDefinitionPrefix(version int) string {
	return CanonicalBase(version) + "/StructureDefinition/"
}
