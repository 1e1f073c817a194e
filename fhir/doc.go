// Package fhir turns psgw's canonical incident into the FHIR AdverseEvent that LFPSE expects,
// in the profile of the configured taxonomy version, and checks it before it may leave: the
// incident rules of the ingest API, the taxonomy (subpackage taxonomy) and the privacy guard
// (subpackage privacy). It is pure: no I/O, no clock of its own, nothing of psgw's imported
// but its own subpackages.
package fhir
