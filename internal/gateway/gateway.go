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
	"github.com/psgw/psgw/insights"
	"github.com/psgw/psgw/internal/dirlock"
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
	// Insights is the learning store (docs/insights.md).
	Insights *insights.Store
	Mapper   *mapper.Mapper
	Sim      *sim.Simulator
	Ops      *ops.Server
	// Registry holds every psgw metric; /metrics serves it. Never the global registry.
	Registry *prometheus.Registry
	// Patients is the demographics store fed by the EPR's ADT messages; nil when no enabled
	// adapter feeds it (mllp.addr empty).
	Patients *patients.Stage

	// dirLock keeps a second gateway off the embedded server's data_dir; nil with an
	// external NATS.
	dirLock *dirlock.Lock
	httpLn  net.Listener
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
	// parts starts and stops every part in order (lifecycle.go): each is added below as it
	// is built, and nothing runs before the last is.
	parts    group
	stopOnce sync.Once
}

// Start builds every part and then starts them, in this order: the queue, the ledger's
// index, the simulator (demo mode), the patients stage, the mapper, the forwarder, the
// adapters and the HTTP server. Stop stops them in the reverse order. On error, whatever was
// opened is released again.
func Start(ctx context.Context, cfg config.Config, opts Options) (_ *Gateway, err error) {
	g := &Gateway{cfg: cfg, opts: opts, replica: replicaName(cfg), instance: newInstance(), owned: map[*ingest.Runner]bool{}}
	g.log = opts.Logger.With().Str("replica", g.replica).Logger()
	g.parts.log = g.log
	g.stages = newSupervisor(g.log, opts)
	defer func() {
		if err != nil {
			g.Stop(context.Background())
		}
	}()
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
	if cfg.Queue.NATSURL == "" {
		// Before anything touches the store: a second gateway must not open it at all.
		if g.dirLock, err = dirlock.Acquire(cfg.DataDir); err != nil {
			return nil, err
		}
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
	g.parts.add(part{name: "queue", stop: func(context.Context) error { g.Queue.Close(); return nil }})
	g.Insights, err = insights.Open(ctx, g.Queue, insights.Options{Logger: g.log.With().Str("component", "insights").Logger()})
	if err != nil {
		return nil, err
	}
	// Added before the ledger's index, which feeds it, so that it stops after the index.
	g.parts.add(part{name: "insights", run: g.Insights.Run})
	// The learning store follows delivery states through the ledger's index, which reads
	// every transition anyway, so no stage needs to know it.
	g.Ledger, err = ledger.Open(ctx, g.Queue, ledger.Options{Logger: g.log.With().Str("component", "ledger").Logger(),
		Observe: func(key string, st ledger.State, delivered time.Time) { g.Insights.Observe(key, string(st), delivered) },
		Replica: g.replica, Instance: g.instance})
	if err != nil {
		return nil, err
	}
	if err := g.openLeases(ctx, cfg); err != nil {
		return nil, err
	}
	// Before the forwarder, so that other replicas see this run alive before its first send.
	g.parts.add(part{name: "presence", run: g.holdPresence})
	// The ledger's index feeds the status page and spares the publisher and the mapper a
	// read of a key it knows has no entry; it reopens its own watch.
	g.parts.add(part{name: "ledger index", run: g.Ledger.RunIndex})

	baseURL, key := cfg.National.BaseURL, cfg.National.SubscriptionKey
	if opts.Demo {
		if err := g.addSim(); err != nil {
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

	g.builder = NewBuilder(cfg)
	enricher := g.addDemographics(cfg)
	g.Mapper = mapper.New(g.Queue, g.Ledger, mapper.Options{
		Enricher:   enricher,
		Facts:      g.Insights,
		Builder:    g.builder,
		HeldReason: heldReason,
		Metrics:    mapper.NewMetrics(g.Registry),
		Logger:     g.log.With().Str("component", "mapper").Logger(),
	})
	g.parts.add(part{name: "mapper", run: g.stages.add("mapper", g.Mapper.Run)})
	runForwarder, forwarderStatus := g.newForwarder(cfg, baseURL, key)
	g.parts.add(part{name: "forwarder", run: g.stages.add("forwarder", runForwarder)})

	mux := http.NewServeMux()
	if err := g.buildAdapters(ctx, cfg, mux); err != nil {
		return nil, err
	}
	g.parts.add(part{name: "adapters", run: g.runAdapters})

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
		Auth: auth, Registry: g.Registry, Version: opts.Version, Replica: g.replica,
		Insights: g.Insights, InsightsRebuilder: g.Mapper, SuppressionThreshold: cfg.Insights.SuppressionThreshold}
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
	g.parts.add(serverPart("http", &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: cfg.HTTP.ReadTimeout, IdleTimeout: 2 * time.Minute}, g.httpLn))

	// Every part runs until Stop, not until ctx, which only bounds the start.
	g.parts.start(context.WithoutCancel(ctx))
	if err := g.waitPresent(ctx); err != nil {
		return nil, err
	}
	g.log.Info().Str("http", g.httpLn.Addr().String()).Int("taxonomy_version", cfg.National.TaxonomyVersion).Msg("psgw started")
	return g, nil
}

// runAdapters runs every adapter's runner until ctx ends: the adapters are one part, so that
// they stop together.
func (g *Gateway) runAdapters(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range g.runners {
		wg.Go(func() { g.runAdapter(ctx, r, g.owned[r]) })
	}
	wg.Wait()
	return nil
}

// serverPart serves srv on ln; its stop lets in-flight requests finish within the stop's
// context (http.Server.Shutdown), and closes ln even if srv never served it.
func serverPart(name string, srv *http.Server, ln net.Listener) part {
	return part{
		name: name,
		run: func(context.Context) error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
		stop: func(ctx context.Context) error {
			err := srv.Shutdown(ctx)
			_ = ln.Close() // already closed if srv served it
			return err
		},
	}
}

// HTTPAddr is the address the API listens on (useful with port 0).
func (g *Gateway) HTTPAddr() string { return g.httpLn.Addr().String() }

// SimURL is the in-process simulator's base URL in demo mode.
func (g *Gateway) SimURL() string { return g.simURL }

// Stop shuts everything down in the reverse order of Start: it stops taking requests and
// lets in-flight ones finish within ctx, stops the adapters, the stages one after another
// (each finishes what it is doing first), the simulator and the index, and closes the queue.
// A part that did not stop cleanly is logged.
func (g *Gateway) Stop(ctx context.Context) {
	g.stopOnce.Do(func() {
		if err := g.parts.stop(ctx); err != nil {
			g.log.Error().Err(err).Msg("psgw did not stop cleanly")
		}
		g.dirLock.Release() // last: the store is closed
	})
}
