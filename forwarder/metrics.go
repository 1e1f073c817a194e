package forwarder

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the forwarder's Prometheus instruments. They are registered on the Registerer
// given to NewMetrics, never on the global registry.
type Metrics struct {
	// Delivered counts incidents the national service now holds (POST or PUT).
	Delivered *prometheus.CounterVec
	// Failed counts incidents that ended without delivery, by reason: rejected, exhausted,
	// unknown, max_deliveries.
	Failed *prometheus.CounterVec
	// Retries counts sends scheduled again after a transient failure.
	Retries prometheus.Counter
	// Sends counts requests to the national service by method and outcome class.
	Sends *prometheus.CounterVec
	// Latency is the time from receipt at the gateway to delivery.
	Latency prometheus.Histogram
	// Paused is 1 while delivery is paused by an auth failure.
	Paused prometheus.Gauge
	// Outage is 1 while delivery waits for a national service that is not answering.
	Outage prometheus.Gauge
}

// FailureReasons are the values of psgw_forwarder_failed_total's reason label.
var FailureReasons = []string{"rejected", "exhausted", "unknown", "max_deliveries"}

// NewMetrics creates the instruments and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "psgw_forwarder_delivered_total", Help: "Incidents delivered to the national service, by method (POST creates, PUT amends).",
		}, []string{"method"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "psgw_forwarder_failed_total", Help: "Incidents that ended without delivery, by reason (rejected, exhausted, unknown, max_deliveries).",
		}, []string{"reason"}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "psgw_forwarder_retries_total", Help: "Sends scheduled again after a transient failure.",
		}),
		Sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "psgw_forwarder_sends_total", Help: "Requests to the national service, by method and outcome class.",
		}, []string{"method", "outcome"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "psgw_forwarder_delivery_latency_seconds", Help: "Time from receipt at the gateway to delivery at the national service.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400},
		}),
		Paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "psgw_forwarder_paused", Help: "1 while delivery is paused because the national service refused the subscription key.",
		}),
		Outage: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "psgw_forwarder_outage", Help: "1 while delivery waits for the national service, which gave no answer (or 502, 503, 504) to a run of sends; it is probed until it answers.",
		}),
	}
	// Every known label value starts at 0, so that a scraper sees the series (and an alert
	// on its rate works) before the first failure rather than only after it.
	for _, method := range []string{"POST", "PUT"} {
		m.Delivered.WithLabelValues(method)
	}
	for _, reason := range FailureReasons {
		m.Failed.WithLabelValues(reason)
	}
	if reg != nil {
		reg.MustRegister(m.Delivered, m.Failed, m.Retries, m.Sends, m.Latency, m.Paused, m.Outage)
	}
	return m
}
