// Package insights is the gateway's learning store: one identifier-free fact per incident (its
// latest revision), holding the coded LFPSE answers psgw sent, the source, four dates and the
// delivery state, and nothing else: no free text, no identifier, no exact age. It keeps the
// facts in a JetStream key-value bucket, which the mapper writes as it maps and which can be
// rebuilt from the raw stream, and an in-memory index over them that answers the insights API
// (counts by dimension and interval, with small-number suppression) and the SPC charts of the
// /insights page. It sits beside the ledger, which it reads for delivery states, and knows no
// stage (docs/insights.md).
package insights
