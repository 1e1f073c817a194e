// Package taxonomy knows the LFPSE taxonomy, NHS England's question and
// answer model for patient safety events, and checks outgoing AdverseEvent
// payloads against it.
//
// The v5 taxonomy is embedded (data/taxonomy-v5.json and the ODS code list,
// see data/NOTICE) and decoded on first use into indexed tables: V5 returns
// them. Mappers use the tables to find codes; Validate uses them to check a
// decoded payload before it is queued for the national service. The v6
// taxonomy has not been published in a form we hold: V6 is psgw's assumption
// of it (v5's extensions and fields under v6 names, plus what a v6 client
// shows), and v6 payloads are checked against that.
//
// Validate also runs the privacy guard (package privacy) so that no payload
// with a patient identifier passes validation.
//
// The package is pure: no I/O beyond go:embed, no mutable state after the
// one-time decode, safe for concurrent use.
package taxonomy
