package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest"
	_ "github.com/psgw/psgw/ingest/all" // every adapter psgw ships; they register themselves
	"github.com/psgw/psgw/mapper"
	"github.com/psgw/psgw/patients"
)

// The gateway knows no adapter by name. It asks the config for the enabled ones, found
// through the ingest registry by their config section (ingest/all links them in), and gives
// each what its settings ask for through ingest's interfaces: a listener certificate
// (ingest.TLSFiles), a state store (ingest.Module.State), routes on the HTTP server
// (ingest.HTTPAdapter), the demographics store (ingest.DemographicsFeed). docs/adapters.md,
// "Adding an adapter", is the recipe.

// AdapterStateBucket is the JetStream KV bucket holding pull adapters' cursors and file
// progress (ingest.StateStore).
const AdapterStateBucket = "psgw_adapter_state"

// recordHeadroom is what a record's headers may take in a NATS message beside the record.
const recordHeadroom = 64 << 10

// storeRecordLimit is the largest record a NATS server whose max_payload is maxPayload takes
// in one message, or 0 when that leaves too little to be a limit worth keeping to.
func storeRecordLimit(maxPayload int64) int64 {
	if limit := maxPayload - recordHeadroom; limit >= 1024 {
		return limit
	}
	return 0
}

// addDemographics builds the demographics store's stage when an enabled adapter feeds it
// (the HL7 listener, mllp.addr set) and returns the mapper's Enricher, which reads the store;
// with no feed it is mapper.NoEnrichment. Config.Validate allows at most one feed.
func (g *Gateway) addDemographics(cfg config.Config) mapper.Enricher {
	for _, a := range cfg.EnabledAdapters() {
		feed, ok := a.Settings.(ingest.DemographicsFeed)
		if !ok {
			continue
		}
		d := feed.Demographics()
		enrichWait := d.EnrichWait
		if enrichWait == 0 {
			enrichWait = -1 // configured off
		}
		g.Patients = patients.New(g.Queue, patients.Options{
			Source: d.Source, EnrichWait: enrichWait, MaxAge: d.MaxAge,
			Logger: g.log.With().Str("component", "patients").Logger(),
		})
		g.parts.add(part{name: "patients", run: g.stages.add("patients", g.Patients.Run)})
		return g.Patients
	}
	return mapper.NoEnrichment{}
}

// sourceNames are the configured sources, as adapters and the publisher take them.
func sourceNames(cfg config.Config) map[string]bool {
	sources := map[string]bool{}
	for name := range cfg.Sources {
		sources[name] = true
	}
	return sources
}

// publisher is the one publisher behind every adapter: it treats each record by its kind
// (ADT records get queue.adt_max_age; incidents are checked against the ledger for
// re-sends). The front door's adapters reach it through the gate.
func (g *Gateway) publisher(cfg config.Config) queuePublisher {
	return queuePublisher{q: g.Queue, ledger: g.Ledger, received: g.received, adtTTL: cfg.Queue.ADTMaxAge,
		labels: ingest.NewSourceLabels(sourceNames(cfg), ingest.DefaultUnconfiguredSourceLabels)}
}

// buildAdapters builds a runner for the enabled adapters, in kind order, into g.runners, and
// mounts the routes of those served on the gateway's HTTP server on mux. With front it builds
// those that keep no state, the front door's (gate.go), before the store is open: they
// publish through the gate. Without it, those that keep state (pull adapters), on the open
// store; Start runs them as one part, so that they stop together.
func (g *Gateway) buildAdapters(ctx context.Context, cfg config.Config, mux *http.ServeMux, front bool) error {
	shared := cfg.Shared()
	codes := CodeMaps(cfg)
	sources := sourceNames(cfg)
	var pub ingest.Publisher = g.gate
	limit := g.storeLimit
	if !front {
		pub = g.publisher(cfg)
		limit = storeRecordLimit(g.Queue.MaxPayload())
		g.checkRecordLimit(cfg, limit)
	}
	var state jetstream.KeyValue // opened for the first adapter that keeps state
	for _, a := range cfg.EnabledAdapters() {
		m := a.Module
		if m.State == front {
			continue
		}
		deps := ingest.Deps{
			Name: m.Kind, Settings: a.Settings, Publisher: pub, Logger: g.log, Sources: sources, Shared: shared,
			Metrics: g.Registry, MaxRecordBytes: limit,
			MapWarnings: g.builder.Warnings, Codes: codes,
		}
		if f, ok := a.Settings.(ingest.TLSFiles); ok {
			l, err := loadListenerTLS(f, a.Settings)
			if err != nil {
				return err
			}
			if l != nil {
				deps.TLS = l.config()
				g.adapterTLS = append(g.adapterTLS, l)
			}
		}
		if m.State {
			if state == nil {
				var err error
				state, err = g.Queue.KeyValue(ctx, jetstream.KeyValueConfig{
					Bucket: AdapterStateBucket, Description: "pull adapters' cursors and file progress", History: 1,
				})
				if err != nil {
					return err
				}
			}
			deps.State = kvState{kv: state, prefix: m.Kind}
		}
		r, err := ingest.NewRunner(m.Factory, deps)
		if err != nil {
			return err
		}
		if m.BackoffMax > 0 {
			r.BackoffMax = m.BackoffMax
		}
		if h, ok := r.Adapter().(ingest.HTTPAdapter); ok {
			h.Routes(mux)
		}
		if rl, ok := r.Adapter().(ingest.SecretsReloader); ok {
			g.adapterSecrets = append(g.adapterSecrets, adapterSecrets{section: m.Section, reloader: rl})
		}
		g.runners = append(g.runners, r)
		g.owned[r] = m.State
	}
	if !front {
		// Kind order on the page, as configured, whichever were built first.
		order := map[string]int{}
		for i, a := range cfg.EnabledAdapters() {
			order[a.Module.Kind] = i
		}
		slices.SortStableFunc(g.runners, func(a, b *ingest.Runner) int { return order[a.Status().Name] - order[b.Status().Name] })
	}
	return nil
}

// checkRecordLimit warns, once the store is open, when an external server takes smaller
// records than the front door's adapters were built to accept before it was reachable: a
// larger record is refused for good when its publish fails (413, AR), not at the limit.
func (g *Gateway) checkRecordLimit(cfg config.Config, limit int64) {
	if g.storeLimit == 0 && limit > 0 && limit < cfg.MaxRecordBytes() {
		g.log.Warn().Int64("configured", cfg.MaxRecordBytes()).Int64("store_takes", limit).
			Msg("the NATS server's max_payload is below the configured record limits: larger records are refused when stored (HTTP 413, HL7 AR); raise max_payload on the server")
	}
}

// listenerTLS is the TLS of a listener an adapter opens itself (ingest.TLSFiles): its
// certificate and, when its settings name one (ingest.TLSClientCAs), the CAs client
// certificates are verified against. The gateway reads the files, so that the adapter only
// gets the result, and reads them again when they change (reload.go): every handshake takes
// the certificate and CAs in hand (tls.Config.GetConfigForClient), so the next connection
// gets the new ones while open connections keep theirs, and the listener is never reopened.
type listenerTLS struct {
	certFile, keyFile, certKey string
	caFile, caKey              string
	cert                       atomic.Pointer[tls.Certificate]
	cas                        atomic.Pointer[x509.CertPool]
}

// loadListenerTLS reads the certificate, key and client CAs an adapter's settings name; nil
// when they name no certificate.
func loadListenerTLS(f ingest.TLSFiles, settings ingest.Settings) (*listenerTLS, error) {
	l := &listenerTLS{}
	l.certFile, l.keyFile, l.certKey = f.TLSFiles()
	if l.certFile == "" {
		return nil, nil
	}
	if err := l.loadCert(); err != nil {
		return nil, err
	}
	if ca, ok := settings.(ingest.TLSClientCAs); ok {
		l.caFile, l.caKey = ca.TLSClientCAFile()
	}
	if l.caFile != "" {
		if err := l.loadCAs(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// loadCert reads the certificate and key; on error what runs is kept.
func (l *listenerTLS) loadCert() error {
	cert, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err != nil {
		return fmt.Errorf("%s: %w", l.certKey, err)
	}
	l.cert.Store(&cert)
	return nil
}

// loadCAs reads the client CAs (mllp.tls.client_ca_file); on error what runs is kept.
func (l *listenerTLS) loadCAs() error {
	pem, err := os.ReadFile(l.caFile)
	if err != nil {
		return fmt.Errorf("%s: %w", l.caKey, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: %s holds no PEM certificate", l.caKey, l.caFile)
	}
	l.cas.Store(pool)
	return nil
}

// config is the listener's tls.Config: as loaded at start (so that an adapter can see that
// client certificates are verified), and for each handshake what is loaded at the time.
func (l *listenerTLS) config() *tls.Config {
	current := func() *tls.Config {
		c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*l.cert.Load()}}
		if l.caFile != "" {
			c.ClientCAs = l.cas.Load()
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return c
	}
	c := current()
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return current(), nil }
	return c
}

// adapterSecrets is an adapter that takes its section's secret files read afresh.
type adapterSecrets struct {
	section  string
	reloader ingest.SecretsReloader
}

// AdapterAddr is the address the adapter of the given kind listens on (useful with port 0),
// or "" when it is off, has no listener of its own, or is not listening before ctx ends.
func (g *Gateway) AdapterAddr(ctx context.Context, kind string) string {
	for _, r := range g.runners {
		if r.Status().Name != kind {
			continue
		}
		if l, ok := r.Adapter().(ingest.Listener); ok {
			if addr, err := l.Addr(ctx); err == nil {
				return addr.String()
			}
		}
	}
	return ""
}

// kvState is the ingest.StateStore of one adapter on the shared bucket: keys are scoped by
// the adapter's name and encoded so that any string is a valid KV key.
type kvState struct {
	kv     jetstream.KeyValue
	prefix string
}

func (s kvState) key(k string) string {
	return s.prefix + "." + base64.RawURLEncoding.EncodeToString([]byte(k))
}

func (s kvState) Get(ctx context.Context, k string) ([]byte, error) {
	e, err := s.kv.Get(ctx, s.key(k))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading adapter state: %v", ingest.ErrUnavailable, err)
	}
	return e.Value(), nil
}

func (s kvState) Put(ctx context.Context, k string, v []byte) error {
	if _, err := s.kv.Put(ctx, s.key(k), v); err != nil {
		return fmt.Errorf("%w: writing adapter state: %v", ingest.ErrUnavailable, err)
	}
	return nil
}

func (s kvState) Delete(ctx context.Context, k string) error {
	if err := s.kv.Delete(ctx, s.key(k)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: deleting adapter state: %v", ingest.ErrUnavailable, err)
	}
	return nil
}

var _ ingest.StateStore = kvState{}
