// Package privacy keeps patient identifiers out of what psgw sends to the
// national service (CONTRACT.md §6).
//
// It knows three things: what a valid NHS number is (ValidNHSNumber), how to
// find and redact NHS-number-shaped strings in free text (RedactText,
// RedactResource), and how to spot identifier elements left in a decoded
// FHIR resource (Check). Identifiers may be used inside the gateway, for
// example to work out a patient's age, but must never leave it; this package
// is the last guard before a payload goes out.
//
// The package is pure: no I/O, no state, safe for concurrent use. Nothing it
// reports ever contains the value it objects to, so findings can be logged.
package privacy
