// Package queue is psgw's durable store: NATS JetStream, embedded in the process by default or
// an external cluster. It owns the streams (raw source records, and mapped resources awaiting
// delivery), publishing with Nats-Msg-Id so that re-sent records are dropped, the envelope
// each stage writes beside a message and the next one reads, the durable consumers, and the
// creation of key-value buckets (whose layout is their owners': the ledger package's for the
// delivery ledger, the patients package's for the demographics store). Nothing here knows
// about FHIR or the national service.
package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Stream and bucket names. Raw subjects carry the source and an incident key so that one
// incident's records can be found and filtered without reading the others; outbox subjects
// carry only the source (see OutboxSubjectOf).
const (
	RawStream     = "PSGW_RAW"
	RawSubjects   = "psgw.raw.>"
	OutboxStream  = "PSGW_OUTBOX"
	OutboxSubject = "psgw.outbox.>"
)

// Options configure Open.
type Options struct {
	// DataDir holds the embedded server's JetStream files. Ignored with NATSURL.
	DataDir string
	// NATSURL selects an external NATS cluster instead of the embedded server.
	NATSURL string
	// NATSCredsFile authenticates to the external cluster.
	NATSCredsFile string
	// Replicas is the stream and bucket replica count (1 when embedded).
	Replicas int
	// MaxStoreBytes and MaxMemoryBytes are the embedded server's storage limits.
	MaxStoreBytes  int64
	MaxMemoryBytes int64
	// RawMaxBytes, RawMaxAge and OutboxMaxBytes limit the streams. Both discard new writes when
	// full, so a full store refuses ingest instead of dropping what it already holds.
	RawMaxBytes    int64
	RawMaxAge      time.Duration
	OutboxMaxBytes int64
	// DuplicateWindow is how long message ids are remembered.
	DuplicateWindow time.Duration
	// SyncAlways fsyncs every write; otherwise SyncInterval applies.
	SyncAlways   bool
	SyncInterval time.Duration
	// Listen makes the embedded server accept TCP clients on ListenHost:ListenPort (a port of
	// -1 picks a free one); by default it only takes in-process connections.
	Listen     bool
	ListenHost string
	ListenPort int
	// Token, when set, is required of every client of the embedded server, psgw's own
	// in-process connections included. With Listen and no Token, a fresh one is made and
	// written to the data directory (AdminTokenFile): it guards the admin port that
	// `psgw backup` and the NATS tools use (docs/deploy.md, "Backup and restore").
	Token string
	// MaxPayload is the largest message the embedded server takes, headers included (0: the
	// server's default, 1 MiB). An external server has its own; see Queue.MaxPayload.
	MaxPayload int64
	// Waiting, when set, is told the cause (CauseUnreachable, CauseNoQuorum, or "" for
	// another failure) each time Ensure finds the external cluster not usable yet: the
	// gateway answers its sources with it while it waits (docs/cluster.md, "Start-up
	// checks").
	Waiting func(cause string)
	Logger  zerolog.Logger
}

// Queue is an open JetStream connection with psgw's streams and buckets in place. It is safe for
// concurrent use. Close releases it and, when embedded, shuts the server down.
type Queue struct {
	opts Options
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	log  zerolog.Logger

	mu sync.Mutex
	// ownConns are the connections of buckets opened with KeyValueOwnConn.
	ownConns []*nats.Conn
	// raw is the raw stream's handle, once LastRawEnvelope has looked it up.
	raw jetstream.Stream
}

// Open starts the embedded server (or connects to the external one) and creates or updates the
// streams and buckets. It fails rather than run without durable storage.
func Open(ctx context.Context, o Options) (*Queue, error) {
	q, err := OpenStore(o)
	if err != nil {
		return nil, err
	}
	if err := q.Ensure(ctx); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// OpenStore is Open without creating the streams: `psgw restore` creates them from a backup,
// then calls Ensure.
func OpenStore(o Options) (*Queue, error) {
	q := &Queue{opts: o, log: o.Logger}
	if o.Replicas < 1 {
		o.Replicas = 1
		q.opts.Replicas = 1
	}
	if o.NATSURL == "" {
		if err := q.startEmbedded(); err != nil {
			q.Close()
			return nil, err
		}
	}
	var err error
	q.nc, err = q.connect("psgw")
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("connecting to nats: %w", err)
	}
	q.js, err = jetstream.New(q.nc)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("opening jetstream: %w", err)
	}
	return q, nil
}

func (q *Queue) startEmbedded() error {
	dir, err := filepath.Abs(q.opts.DataDir)
	if err != nil {
		return fmt.Errorf("resolving data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if q.opts.Listen && q.opts.Token == "" {
		// The caller holds the data directory's lock (internal/dirlock), so this replaces
		// no running psgw's token.
		if q.opts.Token, err = NewAdminToken(dir); err != nil {
			return err
		}
	}
	so := &server.Options{
		ServerName:         "psgw",
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxStore:  q.opts.MaxStoreBytes,
		JetStreamMaxMemory: q.opts.MaxMemoryBytes,
		SyncAlways:         q.opts.SyncAlways,
		SyncInterval:       q.opts.SyncInterval,
		NoSigs:             true,
		MaxPayload:         int32(q.opts.MaxPayload),
		DontListen:         !q.opts.Listen,
		Host:               q.opts.ListenHost,
		Port:               q.opts.ListenPort,
		// The HTTP monitor is psgw's own job; nats-server's is left off.
		HTTPPort:      0,
		Authorization: q.opts.Token,
	}
	if so.Host == "" {
		so.Host = "127.0.0.1"
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return fmt.Errorf("configuring embedded nats server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{q.log.With().Str("component", "nats-server").Logger()}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return errors.New("embedded nats server did not become ready within 30s")
	}
	q.srv = srv
	return nil
}

// connect opens a connection to the embedded server in process, or to the external cluster.
func (q *Queue) connect(name string) (*nats.Conn, error) {
	if q.srv != nil {
		return nats.Connect("", nats.InProcessServer(q.srv), nats.Name(name), nats.MaxReconnects(-1), nats.Token(q.opts.Token))
	}
	// A server cut off from the network sends no reset: with the client's default pings (every
	// two minutes) a connection to it hangs that long, every write on it times out, and the
	// gateway's presence lease expires while it is alive. Pings every second find it gone in
	// about three and the client moves to another server (docs/cluster.md, "What each
	// failure costs").
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			q.log.Warn().Err(err).Str("connection", name).Msg("disconnected from nats")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			q.log.Info().Str("connection", name).Str("server", nc.ConnectedUrlRedacted()).Msg("reconnected to nats")
		})}
	if q.opts.NATSCredsFile != "" {
		opts = append(opts, nats.UserCredentials(q.opts.NATSCredsFile))
	}
	return nats.Connect(q.opts.NATSURL, opts...)
}

// ClientURL returns the embedded server's client URL when Listen is set, else "".
func (q *Queue) ClientURL() string {
	if q.srv == nil || !q.opts.Listen {
		return ""
	}
	return q.srv.ClientURL()
}

// Ensure creates the streams, or updates them to the options' limits and replicas.
func (q *Queue) Ensure(ctx context.Context) error {
	if q.srv == nil {
		// An external cluster may be starting, or have lost its quorum: wait for it, naming
		// the cause, and check it has the servers queue.replicas needs (docs/cluster.md).
		if err := q.waitUsable(ctx, 500*time.Millisecond); err != nil {
			return err
		}
		if err := q.checkClusterSize(); err != nil {
			return err
		}
	}
	streams := []jetstream.StreamConfig{{
		Name:        RawStream,
		Description: "raw source records as received, kept for replay",
		Subjects:    []string{RawSubjects},
		Retention:   jetstream.LimitsPolicy,
		MaxBytes:    q.opts.RawMaxBytes,
		MaxAge:      q.opts.RawMaxAge,
		Discard:     jetstream.DiscardNew,
		Duplicates:  q.opts.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    q.opts.Replicas,
		// Records that are not kept for replay (ADT messages) carry their own shorter
		// lifetime in a Nats-TTL header; see PublishTTL.
		AllowMsgTTL: true,
	}, {
		Name:        OutboxStream,
		Description: "mapped resources awaiting delivery to the national service",
		Subjects:    []string{OutboxSubject},
		Retention:   jetstream.WorkQueuePolicy,
		MaxBytes:    q.opts.OutboxMaxBytes,
		Discard:     jetstream.DiscardNew,
		Duplicates:  q.opts.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    q.opts.Replicas,
	}}
	for _, sc := range streams {
		what := "stream " + sc.Name
		err := q.whileUnavailable(ctx, what, func() error {
			if err := q.checkReplicas(ctx, q.js, sc.Name, what); err != nil {
				return err
			}
			if _, err := q.js.CreateOrUpdateStream(ctx, sc); err != nil {
				return fmt.Errorf("creating %s: %w", what, q.replicaError(what, err))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// MaxPayload is the largest message the server takes, headers included.
func (q *Queue) MaxPayload() int64 { return q.nc.MaxPayload() }

// JetStream returns the JetStream handle for parts that build their own consumers.
func (q *Queue) JetStream() jetstream.JetStream { return q.js }

// Conn returns the NATS connection, for core subscriptions such as JetStream advisories.
func (q *Queue) Conn() *nats.Conn { return q.nc }

// KeyValue creates or opens a bucket (for example the demographics store), with the queue's
// replica count unless cfg sets one.
func (q *Queue) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return q.keyValue(ctx, q.js, cfg)
}

// KeyValueOwnConn is KeyValue on a connection of its own, named name, which Close closes. A
// read from a bucket (a direct get) is served inline by the server's reader for the reading
// connection, and waits while the bucket's stream holds its lock to fsync a write: on the
// connection everything else shares, that wait would stall every publish and ack of the
// gateway behind one bucket's fsync. The delivery ledger's shards each take one.
func (q *Queue) KeyValueOwnConn(ctx context.Context, name string, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	nc, err := q.connect(name)
	if err != nil {
		return nil, fmt.Errorf("connecting to nats for bucket %s: %w", cfg.Bucket, err)
	}
	q.mu.Lock()
	q.ownConns = append(q.ownConns, nc)
	q.mu.Unlock()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("opening jetstream for bucket %s: %w", cfg.Bucket, err)
	}
	return q.keyValue(ctx, js, cfg)
}

func (q *Queue) keyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = q.opts.Replicas
	}
	what := "bucket " + cfg.Bucket
	var kv jetstream.KeyValue
	err := q.whileUnavailable(ctx, what, func() error {
		if cfg.Replicas == q.opts.Replicas {
			if err := q.checkReplicas(ctx, js, "KV_"+cfg.Bucket, what); err != nil {
				return err
			}
		}
		var err error
		if kv, err = js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("creating %s: %w", what, q.replicaError(what, err))
		}
		return nil
	})
	return kv, err
}

// Healthy reports whether JetStream can take writes now: connected and answering.
func (q *Queue) Healthy(ctx context.Context) error {
	if q.nc == nil || !q.nc.IsConnected() {
		return fmt.Errorf("%w: %s", ErrUnavailable, CauseUnreachable)
	}
	if err := q.probeStream(ctx); err != nil {
		if cause := Cause(q.nc, err); cause != "" {
			return fmt.Errorf("%w: %s: %v", ErrUnavailable, cause, err)
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Close flushes and closes the connection and stops the embedded server. It is safe to call twice.
func (q *Queue) Close() {
	q.mu.Lock()
	own := q.ownConns
	q.ownConns = nil
	q.mu.Unlock()
	for _, nc := range own {
		_ = nc.FlushTimeout(5 * time.Second)
		nc.Close()
	}
	if q.nc != nil {
		// Flush before closing: acks and naks are buffered publishes, and a nak lost here
		// would leave its message waiting out the consumer's AckWait after a restart.
		_ = q.nc.FlushTimeout(5 * time.Second)
		q.nc.Close()
		q.nc = nil
	}
	if q.srv != nil {
		q.srv.Shutdown()
		q.srv.WaitForShutdown()
		q.srv = nil
	}
}

// StoreUsage is what JetStream file storage the account holds, and its limit: the embedded
// server's queue.max_store_bytes, or the external account's limit (-1 for none).
func (q *Queue) StoreUsage(ctx context.Context) (used, limit int64, err error) {
	ai, err := q.js.AccountInfo(ctx)
	if err != nil {
		return 0, 0, err
	}
	limit = ai.Limits.MaxStore
	if q.srv != nil && q.opts.MaxStoreBytes > 0 && (limit <= 0 || q.opts.MaxStoreBytes < limit) {
		limit = q.opts.MaxStoreBytes
	}
	return int64(ai.Store), limit, nil
}

// DiskSpace is the free and total bytes of the file system holding the embedded server's data
// directory; ok is false with an external cluster, whose disks are its own.
func (q *Queue) DiskSpace() (free, total uint64, ok bool) {
	if q.srv == nil {
		return 0, 0, false
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(q.opts.DataDir, &st); err != nil {
		return 0, 0, false
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), true
}
