// Package privacy keeps patient identifiers out of what psgw sends to the
// national service (docs/privacy.md).
//
// It knows what a valid NHS number is (ValidNHSNumber); how to find and redact
// NHS-number-shaped strings in free text, in any spelling that renders as one
// (RedactText, RedactResource); how to redact the identifiers known for one
// incident's patients, its NHS numbers, local ids, dates of birth and names
// (Known, Redactor); and how to spot identifier elements left in a decoded
// FHIR resource (Check). Identifiers may be used inside the gateway, for
// example to work out a patient's age, but must never leave it; this package
// is the last guard before a payload goes out.
//
// Text is searched through a normalised view of it (Unicode compatibility
// decomposition, case and accents folded, any script's digits by value,
// characters that do not show skipped), while what is found is replaced in
// the original, leaving the rest of the text byte for byte.
//
// The package is pure: no I/O, no state, safe for concurrent use. Nothing it
// reports ever contains the value it objects to, so findings can be logged.
package privacy
