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
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
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
	// SecretsPollInterval is how often the secret files (the national subscription key,
	// the HTTP listener's TLS certificate and key, ops.tokens_file) are read to see whether
	// they changed (reload.go). Zero means 5s.
	SecretsPollInterval time.Duration
	// Listening, when set, is called once the front door is open (the HTTP listener bound,
	// the listening adapters started) and before the store is awaited, with the gateway
	// whose HTTPAddr and AdapterAddr then answer: a test that starts a gateway before its
	// cluster reaches it so. Nothing else of the gateway may be used in it.
	Listening func(*Gateway)
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
	// owned marks the runners whose adapter keeps state and so runs under a lease; the
	// others are the front door's (gate.go).
	owned map[*ingest.Runner]bool
	// gate holds the front door's records back until the store is there; front is the HTTP
	// server's handler, mux the gateway's routes (gate.go).
	gate     *storeGate
	front    *frontHandler
	mux      *http.ServeMux
	replica  string
	instance string
	leases   *lease.Store
	builder  *fhir.Builder
	// storeLimit is the largest record the store takes, as the adapters were told
	// (storeRecordLimit); 0 for none known.
	storeLimit int64
	received   *prometheus.CounterVec
	stages     *supervisor
	// parts starts and stops every part in order (lifecycle.go): each is added below as it
	// is built, and nothing but the front door (gate.go) runs before the last is.
	parts    group
	stopOnce sync.Once

	// setKey changes the running forwarder's subscription key; auth is the ops access
	// control; cert is the HTTP listener's TLS certificate; adapterTLS and adapterSecrets
	// are the adapters' certificates and secrets that can change while they run; secrets
	// watches the files they all come from (reload.go).
	setKey         func(string)
	auth           *ops.Auth
	cert           atomic.Pointer[tls.Certificate]
	adapterTLS     []*listenerTLS
	adapterSecrets []adapterSecrets
	secrets        *secretFiles
}

// Start opens the front door first: the HTTP listener and the adapters that sources reach
// (push API, MLLP), which answer 503 / AE naming the cause until the store is there
// (gate.go). Then it opens the store, waiting for an external cluster as long as ctx lasts,
// builds every other part and starts them, in this order: the queue, the learning store's
// index, the ledger's index, the simulator (demo mode), the patients stage, the mapper, the
// forwarder and the pull adapters; and only then lets records through the door. Stop stops
// the front door first and the rest in the reverse order. On error, whatever was opened is
// released again.
func Start(ctx context.Context, cfg config.Config, opts Options) (_ *Gateway, err error) {
	if opts.Demo {
		// Before anything opens: psgw run says the same (config.CheckDemo, H-014).
		if err := cfg.CheckDemo(); err != nil {
			return nil, err
		}
	}
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

	qopts, err := QueueOptions(cfg, g.log.With().Str("component", "queue").Logger())
	if err != nil {
		return nil, err
	}
	if cfg.Queue.NATSURL == "" {
		// Before anything touches the store: a second gateway must not open it at all.
		if g.dirLock, err = dirlock.Acquire(cfg.DataDir); err != nil {
			return nil, err
		}
		if err := checkNotMigrated(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	g.gate = newStoreGate()
	qopts.Waiting = g.gate.wait
	g.builder = NewBuilder(cfg)
	if err := g.openFront(ctx, cfg, qopts, opts); err != nil {
		return nil, err
	}
	// The front door serves from here on; every other part is built below and started at
	// the end.
	g.parts.start(context.WithoutCancel(ctx))
	if cfg.Queue.NATSURL != "" {
		// The cluster may keep it waiting (queue.Open logs why); say that sources are
		// answered meanwhile. The embedded store is there at once: nothing to say.
		g.log.Info().Str("http", g.httpLn.Addr().String()).Msg("listening; sources are answered 503 / AE until the NATS cluster is usable")
	}
	if opts.Listening != nil {
		opts.Listening(g)
	}

	g.Queue, err = queue.Open(ctx, qopts)
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
	restored, err := restoredThrough(ctx, g.Queue)
	if err != nil {
		return nil, err
	}
	g.Ledger, err = ledger.Open(ctx, g.Queue, ledger.Options{Logger: g.log.With().Str("component", "ledger").Logger(),
		Observe:         func(key string, st ledger.State, delivered time.Time) { g.Insights.Observe(key, string(st), delivered) },
		RestoredThrough: restored, Replica: g.replica, Instance: g.instance})
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
	if err := g.checkDemoStore(ctx, opts.Demo, baseURL); err != nil {
		return nil, err
	}
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

	if err := g.buildAdapters(ctx, cfg, g.mux, false); err != nil {
		return nil, err
	}
	g.parts.add(part{name: "adapters", run: g.runPullAdapters})

	g.Ops = &ops.Server{Queue: g.Queue, Ledger: g.Ledger, Forwarder: forwarderStatus, Replayer: g.Mapper, Adapters: g.runners, Stages: g.stages,
		Demo: opts.Demo, NationalURL: baseURL, TaxonomyVersion: cfg.National.TaxonomyVersion,
		HeldReason: heldReason, Log: g.log.With().Str("component", "ops").Logger(), Started: time.Now(),
		Auth: g.auth, Registry: g.Registry, Version: opts.Version, Replica: g.replica,
		Insights: g.Insights, InsightsRebuilder: g.Mapper, SuppressionThreshold: cfg.Insights.SuppressionThreshold}
	if g.Patients != nil {
		g.Ops.Demographics = g.Patients // only when set: a nil *Stage in the interface is not nil
	}
	g.addSecretsWatch(cfg)

	// Every part runs until Stop, not until ctx, which only bounds the start.
	g.parts.start(context.WithoutCancel(ctx))
	if err := g.waitPresent(ctx); err != nil {
		return nil, err
	}
	// Only now, with every part running, do records pass the front door, and the API and
	// the page join the push API on its mux (until then the front handler answers for them
	// and a request for any other route, an operator's action among them, is refused).
	g.gate.open(g.publisher(cfg))
	g.Ops.Routes(g.mux)
	g.front.markReady()
	g.log.Info().Str("http", g.httpLn.Addr().String()).Int("taxonomy_version", cfg.National.TaxonomyVersion).Msg("psgw started")
	return g, nil
}

// openFront builds and adds the front door (gate.go): the adapters that sources reach, on
// the gate, and the HTTP server on its listener, serving the waiting endpoints until the
// gateway is built. Start starts them before it opens the store.
func (g *Gateway) openFront(ctx context.Context, cfg config.Config, qopts queue.Options, opts Options) error {
	auth, err := ops.NewAuth(cfg.Ops, cfg.HTTP)
	if err != nil {
		return err
	}
	g.auth = auth
	switch {
	case auth.Enabled():
	case auth.OpenActionsOff() != "":
		g.log.Warn().Str("http", cfg.HTTP.Addr).Msg("ops access control is off and http.addr is not loopback: operator actions are refused until ops.operator_tokens is set")
	case cfg.Ops.AllowOpenActions:
		g.log.Error().Str("http", cfg.HTTP.Addr).Msg("UNSAFE: ops.allow_open_actions is on and access control is off: anyone who can reach the listener can replay and resolve incidents")
	default:
		g.log.Warn().Msg("ops access control is off (no ops.viewer_tokens or ops.operator_tokens): anyone who can reach the status page can replay and resolve")
	}
	g.mux = http.NewServeMux()
	// The embedded server's max_payload is ours to set; an external server's is known only
	// once connected, so the front door's adapters keep their configured limits and a record
	// larger than the server takes is refused for good when its publish says so (413, AR);
	// checkRecordLimit warns of it once the store is there.
	g.storeLimit = 0
	if cfg.Queue.NATSURL == "" {
		g.storeLimit = storeRecordLimit(qopts.MaxPayload)
	}
	if err := g.buildAdapters(ctx, cfg, g.mux, true); err != nil {
		return err
	}
	front := slices.Clone(g.runners)
	g.parts.add(part{name: "listeners", front: true, run: func(ctx context.Context) error {
		var wg sync.WaitGroup
		for _, r := range front {
			wg.Go(func() { r.Run(ctx) })
		}
		wg.Wait()
		return nil
	}})

	waiting := &ops.Server{Adapters: front, Demo: opts.Demo, TaxonomyVersion: cfg.National.TaxonomyVersion,
		Log: g.log.With().Str("component", "ops").Logger(), Started: time.Now(), Auth: auth,
		Version: opts.Version, Replica: g.replica, StoreWaiting: g.gate.Cause}
	hold := holdEmbedded
	if cfg.Queue.NATSURL != "" {
		hold = holdCluster
	}
	g.front = newFrontHandler(g.mux, waiting, hold)
	waiting.WaitingRoutes(g.front.waiting)

	g.httpLn, err = net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listening on http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	if cfg.HTTP.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile)
		if err != nil {
			_ = g.httpLn.Close()
			return fmt.Errorf("http.tls_cert_file: %w", err)
		}
		g.cert.Store(&cert)
		// Each handshake takes the certificate in hand, so a reload serves the new one to
		// the next connection without closing any open one.
		g.httpLn = tls.NewListener(g.httpLn, &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return g.cert.Load(), nil }})
	}
	p := serverPart("http", &http.Server{Handler: g.front, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: cfg.HTTP.ReadTimeout, IdleTimeout: 2 * time.Minute}, g.httpLn)
	p.front = true
	g.parts.add(p)
	return nil
}

// QueueOptions are the queue's options for cfg, as `psgw run` opens it; `psgw restore` opens
// the same store with them.
func QueueOptions(cfg config.Config, log zerolog.Logger) (queue.Options, error) {
	syncEvery, _ := config.SyncInterval(cfg.Queue.Sync)
	// Every record an adapter accepts must fit in one message with its headers, or the store
	// would refuse it as if it were only unavailable and the source would retry for ever.
	// The embedded server is given room for the mapped resource too (it can be larger than
	// its record); an external cluster must take at least the record itself.
	maxPayload := cfg.MaxRecordBytes() + recordHeadroom
	if cfg.Queue.NATSURL == "" {
		maxPayload = max(8<<20, 2*cfg.MaxRecordBytes()+recordHeadroom)
	}
	admin, err := adminListener(cfg)
	if err != nil {
		return queue.Options{}, err
	}
	return queue.Options{
		Listen: admin.listen, ListenHost: admin.host, ListenPort: admin.port,
		DataDir: cfg.DataDir, NATSURL: cfg.Queue.NATSURL, NATSCredsFile: cfg.Queue.NATSCredsFile,
		Replicas: cfg.Queue.Replicas, MaxStoreBytes: cfg.Queue.MaxStoreBytes, MaxMemoryBytes: cfg.Queue.MaxMemoryBytes,
		RawMaxBytes: cfg.Queue.RawMaxBytes, RawMaxAge: cfg.Queue.RawMaxAge, OutboxMaxBytes: cfg.Queue.OutboxMaxBytes,
		DuplicateWindow: cfg.Queue.DuplicateWindow, SyncAlways: cfg.Queue.Sync == "always", SyncInterval: syncEvery,
		MaxPayload: maxPayload,
		Logger:     log,
	}, nil
}

// admin is the embedded server's admin port, when queue.admin_addr asks for one.
type admin struct {
	listen bool
	host   string
	port   int
}

// adminListener opens the admin port only on the embedded server; the queue guards it with a
// fresh token written beside the store for `psgw backup` (docs/deploy.md, "Backup and
// restore").
func adminListener(cfg config.Config) (admin, error) {
	if cfg.Queue.AdminAddr == "" || cfg.Queue.NATSURL != "" {
		return admin{}, nil
	}
	host, p, err := net.SplitHostPort(cfg.Queue.AdminAddr)
	if err != nil {
		return admin{}, fmt.Errorf("queue.admin_addr: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return admin{}, fmt.Errorf("queue.admin_addr: port %q: %w", p, err)
	}
	return admin{listen: true, host: host, port: port}, nil
}

// runPullAdapters runs the runner of every adapter that keeps state (the front door's run
// from the start) until ctx ends: they are one part, so that they stop together.
func (g *Gateway) runPullAdapters(ctx context.Context) error {
	var wg sync.WaitGroup
	for r, owned := range g.owned {
		if owned {
			wg.Go(func() { g.runAdapter(ctx, r, true) })
		}
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
