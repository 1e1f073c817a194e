// Package gateway assembles a running psgw from its configuration: the queue, the delivery
// ledger, the ingest adapters, the mapper, the forwarder, the operations endpoints and, in
// demo mode, the simulator. It is the wiring that cmd/psgw runs, kept out of package main so
// that end-to-end tests can start and stop a real gateway in-process.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/mapper"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/patients"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/queue/lease"
	"github.com/psgw/psgw/sim"
)

// DemoKey is the subscription key shared by the gateway and the in-process simulator.
const DemoKey = "psgw-demo-key"

// NoEndpointReason is why events are held when no national endpoint is configured.
const NoEndpointReason = "no national endpoint configured (national.base_url is empty and --demo is off); events are stored and will be delivered once one is set"

// Options are how the gateway is started, beyond its configuration.
type Options struct {
	// Demo starts the in-process simulator and points the forwarder at it.
	Demo   bool
	Logger zerolog.Logger
	// Version is shown on the status page and in psgw_build_info.
	Version string
	// StageBackoff and StageBackoffMax bound the delay before a pipeline stage (mapper,
	// forwarder, patients) that stopped with an error is run again: the first delay, doubling
	// up to the cap. Zero means 1s and 1m.
	StageBackoff, StageBackoffMax time.Duration
	// StageHook, when set, wraps each pipeline stage's Run: tests use it to make a stage
	// fail. Leave it nil otherwise.
	StageHook func(stage string, run func(context.Context) error) func(context.Context) error
}

// Gateway is a running psgw. Start it once and Stop it once.
type Gateway struct {
	cfg  config.Config
	opts Options
	log  zerolog.Logger

	Queue  *queue.Queue
	Ledger *ledger.Ledger
	Mapper *mapper.Mapper
	Sim    *sim.Simulator
	Ops    *ops.Server
	// Registry holds every psgw metric; /metrics serves it. Never the global registry.
	Registry *prometheus.Registry
	// Patients is the demographics store fed by the EPR's ADT messages; nil when no enabled
	// adapter feeds it (mllp.addr empty).
	Patients *patients.Stage

	httpSrv *http.Server
	httpLn  net.Listener
	simSrv  *http.Server
	simURL  string
	runners []*ingest.Runner
	// owned marks the runners whose adapter keeps state and so runs under a lease.
	owned    map[*ingest.Runner]bool
	replica  string
	instance string
	leases   *lease.Store
	builder  *fhir.Builder
	received *prometheus.CounterVec
	stages   *supervisor
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start builds and starts every part. On error, whatever was started is stopped again.
func Start(ctx context.Context, cfg config.Config, opts Options) (_ *Gateway, err error) {
	g := &Gateway{cfg: cfg, opts: opts, replica: replicaName(cfg), instance: newInstance(), owned: map[*ingest.Runner]bool{}}
	g.log = opts.Logger.With().Str("replica", g.replica).Logger()
	g.stages = newSupervisor(g.log, opts)
	defer func() {
		if err != nil {
			g.Stop(context.Background())
		}
	}()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.cancel = cancel
	g.Registry = prometheus.NewRegistry()
	g.received = newReceivedCounter(g.Registry)

	syncEvery, _ := config.SyncInterval(cfg.Queue.Sync)
	// Every record an adapter accepts must fit in one message with its headers, or the store
	// would refuse it as if it were only unavailable and the source would retry for ever.
	// The embedded server is given room for the mapped resource too (it can be larger than
	// its record); an external cluster must take at least the record itself.
	maxPayload := cfg.MaxRecordBytes() + recordHeadroom
	if cfg.Queue.NATSURL == "" {
		maxPayload = max(8<<20, 2*cfg.MaxRecordBytes()+recordHeadroom)
	}
	g.Queue, err = queue.Open(ctx, queue.Options{
		DataDir: cfg.DataDir, NATSURL: cfg.Queue.NATSURL, NATSCredsFile: cfg.Queue.NATSCredsFile,
		Replicas: cfg.Queue.Replicas, MaxStoreBytes: cfg.Queue.MaxStoreBytes, MaxMemoryBytes: cfg.Queue.MaxMemoryBytes,
		RawMaxBytes: cfg.Queue.RawMaxBytes, RawMaxAge: cfg.Queue.RawMaxAge, OutboxMaxBytes: cfg.Queue.OutboxMaxBytes,
		DuplicateWindow: cfg.Queue.DuplicateWindow, SyncAlways: cfg.Queue.Sync == "always", SyncInterval: syncEvery,
		MaxPayload: maxPayload,
		Logger:     g.log.With().Str("component", "queue").Logger(),
	})
	if err != nil {
		return nil, err
	}
	g.Ledger, err = ledger.Open(ctx, g.Queue, ledger.Options{Logger: g.log.With().Str("component", "ledger").Logger(),
		Replica: g.replica, Instance: g.instance})
	if err != nil {
		return nil, err
	}
	if err := g.openLeases(ctx, cfg); err != nil {
		return nil, err
	}

	baseURL, key := cfg.National.BaseURL, cfg.National.SubscriptionKey
	if opts.Demo {
		if err := g.startSim(); err != nil {
			return nil, err
		}
		baseURL, key = g.simURL, DemoKey
		g.log.Warn().Str("simulator", g.simURL).Msg("DEMO MODE: delivering to the in-process national-service simulator, not to LFPSE")
	}
	heldReason := ""
	if baseURL == "" {
		heldReason = NoEndpointReason
		g.log.Warn().Msg("no national endpoint configured: events will be accepted and held")
	}
	runForwarder, forwarderStatus := g.newForwarder(cfg, baseURL, key)

	g.builder = NewBuilder(cfg)
	enricher := g.startDemographics(runCtx, cfg)
	g.Mapper = mapper.New(g.Queue, g.Ledger, mapper.Options{
		Enricher:   enricher,
		Builder:    g.builder,
		HeldReason: heldReason,
		Metrics:    mapper.NewMetrics(g.Registry),
		Logger:     g.log.With().Str("component", "mapper").Logger(),
	})

	mux := http.NewServeMux()
	if err := g.buildAdapters(ctx, cfg, mux); err != nil {
		return nil, err
	}

	useTLS := cfg.HTTP.TLSCertFile != ""
	auth, err := ops.NewAuth(cfg.Ops, useTLS)
	if err != nil {
		return nil, err
	}
	if !auth.Enabled() {
		g.log.Warn().Msg("ops access control is off (no ops.viewer_tokens or ops.operator_tokens): anyone who can reach the status page can replay and resolve")
	}
	g.Ops = &ops.Server{Queue: g.Queue, Ledger: g.Ledger, Forwarder: forwarderStatus, Replayer: g.Mapper, Adapters: g.runners, Stages: g.stages,
		Demo: opts.Demo, NationalURL: baseURL, TaxonomyVersion: cfg.National.TaxonomyVersion,
		HeldReason: heldReason, Log: g.log.With().Str("component", "ops").Logger(), Started: time.Now(),
		Auth: auth, Registry: g.Registry, Version: opts.Version, Replica: g.replica}
	if g.Patients != nil {
		g.Ops.Demographics = g.Patients // only when set: a nil *Stage in the interface is not nil
	}
	g.Ops.Routes(mux)

	g.httpLn, err = net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	if useTLS {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("http.tls_cert_file: %w", err)
		}
		g.httpLn = tls.NewListener(g.httpLn, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	g.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.HTTP.ReadTimeout,
		IdleTimeout: 2 * time.Minute, ErrorLog: nil}

	g.goRun("http", func() error {
		if err := g.httpSrv.Serve(g.httpLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if err := g.announce(runCtx, ctx); err != nil {
		return nil, err
	}
	for _, r := range g.runners {
		g.wg.Go(func() { g.runAdapter(runCtx, r, g.owned[r]) })
	}
	g.stages.start(runCtx, &g.wg, "mapper", g.Mapper.Run)
	// The ledger's index feeds the status page and spares the publisher and the mapper a
	// read of a key it knows has no entry.
	g.goRun("ledger index", func() error { return g.Ledger.RunIndex(runCtx) })
	g.stages.start(runCtx, &g.wg, "forwarder", runForwarder)
	g.log.Info().Str("http", g.httpLn.Addr().String()).Int("taxonomy_version", cfg.National.TaxonomyVersion).Msg("psgw started")
	return g, nil
}

// goRun runs a long-lived part that is not a pipeline stage (the HTTP server, the ledger's
// index, which reopens its own watch) and logs if it stops with an error. Pipeline stages run
// under g.stages, which restarts them.
func (g *Gateway) goRun(name string, fn func() error) {
	g.wg.Go(func() {
		if err := fn(); err != nil {
			g.log.Error().Err(err).Str("part", name).Msg("part stopped with an error")
		}
	})
}

// HTTPAddr is the address the API listens on (useful with port 0).
func (g *Gateway) HTTPAddr() string { return g.httpLn.Addr().String() }

// SimURL is the in-process simulator's base URL in demo mode.
func (g *Gateway) SimURL() string { return g.simURL }

// Stop shuts everything down: it stops taking requests, lets in-flight ones finish within
// ctx, stops the stages and closes the queue.
func (g *Gateway) Stop(ctx context.Context) {
	g.stopOnce.Do(func() {
		if g.httpSrv != nil {
			_ = g.httpSrv.Shutdown(ctx)
		}
		if g.cancel != nil {
			g.cancel()
		}
		g.wg.Wait()
		if g.simSrv != nil {
			_ = g.simSrv.Shutdown(ctx)
		}
		if g.Queue != nil {
			g.Queue.Close()
		}
	})
}
