package mapper

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the mapper decided. They are registered on the Registerer given to
// NewMetrics, never on the global registry.
type Metrics struct {
	// Mapped counts records mapped and put in the outbox (replays included).
	Mapped prometheus.Counter
	// Quarantined counts records that could not be mapped or validated.
	Quarantined prometheus.Counter
	// Redactions counts NHS-number-shaped strings removed from free text before sending.
	Redactions prometheus.Counter
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
		Redactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "psgw_mapper_redactions_total", Help: "NHS-number-shaped strings redacted from free text before it could be sent.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Mapped, m.Quarantined, m.Redactions)
	}
	return m
}
