package gateway

import (
	"context"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/forwarder"
	"github.com/psgw/psgw/ops"
)

// This file starts the delivery stage, and is the only one in the gateway that knows the
// forwarder package: every other part sees the forwarder only through the ledger it writes
// and the status it reports (test/imports keeps it so).

// newForwarder builds the forwarder stage for the national service at baseURL with key
// (baseURL "": no national endpoint, and the stage waits, holding every event). It returns
// the stage's Run, for the supervisor, and its status, for ops; and sets g.setKey, which
// changes the subscription key of the running stage (reload.go).
func (g *Gateway) newForwarder(cfg config.Config, baseURL, key string) (run func(context.Context) error, status ops.ForwarderReporter) {
	var client *forwarder.Client
	if baseURL != "" {
		client = forwarder.NewClient(baseURL, key, cfg.National.Timeout)
	}
	f := forwarder.New(forwarder.Config{
		Concurrency: cfg.National.Concurrency, MaxAttempts: cfg.National.MaxAttempts, MaxAge: cfg.National.MaxAge,
		BackoffInitial: cfg.National.BackoffInitial, BackoffMax: cfg.National.BackoffMax,
		Timeout: cfg.National.Timeout, OnAmbiguousPost: cfg.National.OnAmbiguousPost,
		ProbeInterval: cfg.National.AuthProbeInterval, Metrics: forwarder.NewMetrics(g.Registry),
		TaxonomyVersion: cfg.National.TaxonomyVersion,
		Instance:        g.instance, Alive: g.alive,
	}, g.Queue, g.Ledger, client, g.log.With().Str("component", "forwarder").Logger())
	g.setKey = f.SetKey
	return f.Run, forwarderStatus{f}
}

// forwarderStatus is the forwarder as ops sees it.
type forwarderStatus struct{ f *forwarder.Forwarder }

// Status converts the forwarder's status: the two types have the same fields, so a field
// added to one and not the other fails to compile here.
func (s forwarderStatus) Status() ops.ForwarderStatus { return ops.ForwarderStatus(s.f.Status()) }
