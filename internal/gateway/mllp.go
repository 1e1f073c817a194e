package gateway

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/mapper"
	"github.com/psgw/psgw/patients"
)

// startEPR sets up the EPR feed when mllp.addr is set: the demographics store's stage, started
// at once on runCtx, and the HL7 v2 MLLP adapter, added to g.runners so that Start runs it
// with the others. It returns the mapper's Enricher, which reads the store; with no EPR feed it
// is mapper.NoEnrichment.
func (g *Gateway) startEPR(runCtx context.Context, cfg config.Config) (mapper.Enricher, error) {
	m := cfg.MLLP
	if m.Addr == "" {
		return mapper.NoEnrichment{}, nil
	}
	var tlsConfig *tls.Config
	if m.TLSCertFile != "" {
		// The gateway reads the files; the adapter only gets the result.
		cert, err := tls.LoadX509KeyPair(m.TLSCertFile, m.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("mllp.tls_cert_file: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	enrichWait := m.EnrichWait
	if enrichWait == 0 {
		enrichWait = -1 // configured off
	}
	g.Patients = patients.New(g.Queue, patients.Options{
		Source: m.Source, EnrichWait: enrichWait, MaxAge: m.DemographicsMaxAge,
		Logger: g.log.With().Str("component", "patients").Logger(),
	})
	g.stages.start(runCtx, &g.wg, "patients", g.Patients.Run)

	r, err := ingest.NewRunner(hl7mllp.Factory, ingest.Deps{
		Name: hl7mllp.Kind,
		Settings: hl7mllp.Config{
			Addr: m.Addr, Source: m.Source, MaxMessageBytes: m.MaxMessageBytes, ReadTimeout: m.ReadTimeout,
			IdleTimeout: m.IdleTimeout, MaxConnections: m.MaxConnections, TLS: tlsConfig, PublishTimeout: m.PublishTimeout,
			FirstMessageTimeout: m.FirstMessageTimeout, DefaultCharset: m.DefaultCharset,
		},
		Publisher: queuePublisher{q: g.Queue, received: g.received, adtTTL: cfg.Queue.ADTMaxAge},
		Logger:    g.log,
		Metrics:   g.Registry,
	})
	if err != nil {
		return nil, err
	}
	g.runners = append(g.runners, r)
	return g.Patients, nil
}

// MLLPAddr is the address the HL7 v2 listener is bound to (useful with port 0), or "" when
// it is off or not listening yet.
func (g *Gateway) MLLPAddr(ctx context.Context) string {
	for _, r := range g.runners {
		if a, ok := r.Adapter().(*hl7mllp.Adapter); ok {
			if addr, err := a.Addr(ctx); err == nil {
				return addr.String()
			}
		}
	}
	return ""
}
