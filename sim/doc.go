// Package sim is a stand-in for NHS England's LFPSE submission API, for demos and tests.
//
// A Simulator is an http.Handler that speaks the national API of docs/delivery.md "The national
// API": it creates and amends AdverseEvents, serves a CapabilityStatement, demands the APIM
// subscription key, and checks payloads as strictly as it can without the real service: profile and
// taxonomy version, contained references, no patient identifiers or NHS numbers, and (through an
// injected function) codes against the taxonomy. It keeps everything it accepted, so tests can
// check exactly what the gateway sent, and it can be told to misbehave the ways the real service
// may: 5xx answers, 429 storms, latency, connection resets, and events stored whose answer never
// arrives, arrives late, is a 5xx, is a reset or is cut short (docs/simulator.md).
//
// National API (every request needs the Ocp-Apim-Subscription-Key header):
//
//	POST /adverse-event/fhir/AdverseEvent        create: 201 + stored AdverseEvent
//	PUT  /adverse-event/fhir/AdverseEvent/{id}   amend:  200 + stored AdverseEvent
//	GET  /adverse-event/fhir/metadata            CapabilityStatement
//
// Test and admin endpoints (no key; never expose them beyond a test or demo host):
//
//	GET  /_sim/events   JSON array of Event, oldest first, stored resource included
//	GET  /_sim/stats    Stats
//	GET  /_sim/requests JSON array of Request: what was done with each national API request
//	GET  /_sim/faults   Faults as JSON (durations as Go duration strings, e.g. "250ms")
//	PUT  /_sim/faults   replace the Faults (fields left out are zero); "storm_for" starts a 429 storm now
//	PUT  /_sim/keys     JSON array of accepted subscription keys (rotation)
//	POST /_sim/reset    forget all events and zero the stats
//
// The simulator never logs a payload, a description or a subscription key: payloads hold
// patient data even when they should not.
package sim
