package mapper

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
)

// Metrics count what the mapper decided. They are registered on the Registerer given to
// NewMetrics, never on the global registry.
type Metrics struct {
	// Mapped counts records mapped and put in the outbox (replays included).
	Mapped prometheus.Counter
	// Quarantined counts records that could not be mapped or validated.
	Quarantined prometheus.Counter
	// Redactions counts identifiers removed from free text before sending, by kind
	// (privacy.Kind: nhs_number, local_patient_id, date_of_birth, name), once per record.
	Redactions *prometheus.CounterVec
	// Warnings counts the mapping's warnings by source and kind (fhir.WarningKind), once per
	// record: fields not used, values fallen back on or left out.
	Warnings *prometheus.CounterVec
}

// NewMetrics creates the instruments and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Mapped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "psgw_mapper_mapped_total", Help: "Incident records mapped to a valid LFPSE resource and queued for delivery (replays included).",
		}),
		Quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "psgw_mapper_quarantined_total", Help: "Incident records that could not be mapped or validated and were quarantined.",
		}),
		Redactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "psgw_mapper_redactions_total", Help: "Patient identifiers redacted from free text before it could be sent, by kind.",
		}, []string{"kind"}),
		Warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "psgw_mapper_warnings_total", Help: "Mapping warnings (fields not used, values fallen back on or left out), by source and kind.",
		}, []string{"source", "kind"}),
	}
	// Every kind of redaction is there from the start, at 0, so that a rate has a series.
	for _, k := range privacy.Kinds() {
		m.Redactions.WithLabelValues(k.String())
	}
	if reg != nil {
		reg.MustRegister(m.Mapped, m.Quarantined, m.Redactions, m.Warnings)
	}
	return m
}

func (m *Metrics) countRedactions(c privacy.Counts) {
	for _, k := range privacy.Kinds() {
		if n := c[k]; n > 0 {
			m.Redactions.WithLabelValues(k.String()).Add(float64(n))
		}
	}
}

func (m *Metrics) countWarnings(source string, ws []fhir.Warning) {
	for kind, n := range fhir.CountWarnings(ws) {
		m.Warnings.WithLabelValues(source, string(kind)).Add(float64(n))
	}
}
