package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/dirlock"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
)

// cmdBackup snapshots every stream and bucket of a running psgw into a new directory
// (docs/deploy.md, "Backup and restore"). The embedded server is reached on its loopback
// admin port (queue.admin_addr) with the token psgw wrote beside its store; an external
// cluster at queue.nats_url with its credentials.
func cmdBackup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("psgw backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config `file` the gateway runs with")
	offline := fs.Bool("offline", false, "the gateway is stopped: open its data_dir directly (refused while it runs)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: psgw backup [--config FILE] [--offline] DIR\n\nSnapshots every JetStream stream and bucket of the running gateway into DIR (new or empty),\nwhile it runs. Needs queue.admin_addr (embedded store) or queue.nats_url; --offline reads a\nstopped gateway's data_dir instead.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	cfg, dir, code, ok := dirCommand(fs, args, cfgPath, stderr, "the directory to write the backup to")
	if !ok {
		return code
	}
	var nc *nats.Conn
	if *offline && cfg.Queue.NATSURL == "" {
		qopts, err := gateway.QueueOptions(cfg, zerolog.Nop())
		if err != nil {
			fmt.Fprintf(stderr, "psgw backup: %v\n", err)
			return 2
		}
		qopts.Listen = false
		lock, err := dirlock.Acquire(cfg.DataDir)
		if err != nil {
			fmt.Fprintf(stderr, "psgw backup: %v\n", err)
			return 1
		}
		defer lock.Release()
		q, err := queue.OpenStore(qopts)
		if err != nil {
			fmt.Fprintf(stderr, "psgw backup: %v\n", err)
			return 1
		}
		defer q.Close()
		nc = q.Conn()
	} else {
		var err error
		if nc, err = adminConn(cfg); err != nil {
			fmt.Fprintf(stderr, "psgw backup: %v\n", err)
			return 1
		}
		defer nc.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := queue.Backup(ctx, nc, dir, version)
	if err != nil {
		fmt.Fprintf(stderr, "psgw backup: %v (the directory is incomplete: it has no %s)\n", err, queue.ManifestFile)
		return 1
	}
	var msgs uint64
	var bytes int64
	for _, s := range m.Streams {
		msgs += s.Messages
		bytes += s.Bytes
	}
	fmt.Fprintf(stdout, "backup of %d streams (%d messages, %d bytes) written to %s in %s\n",
		len(m.Streams), msgs, bytes, dir, m.Finished.Sub(m.Started).Round(time.Millisecond))
	return 0
}

// dirCommand parses the flags of a command that takes one directory after them, and loads the
// configuration its --config flag (cfgPath) names; when ok is false the command exits with code.
func dirCommand(fs *flag.FlagSet, args []string, cfgPath *string, stderr io.Writer, what string) (cfg config.Config, dir string, code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return cfg, "", 0, false
		}
		return cfg, "", 2, false
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "%s: give %s\n", fs.Name(), what)
		return cfg, "", 2, false
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return cfg, "", 2, false
	}
	return cfg, fs.Arg(0), 0, true
}

// adminConn connects to the store a running gateway uses.
func adminConn(cfg config.Config) (*nats.Conn, error) {
	if cfg.Queue.NATSURL != "" {
		opts := []nats.Option{nats.Name("psgw-backup")}
		if cfg.Queue.NATSCredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.Queue.NATSCredsFile))
		}
		nc, err := nats.Connect(cfg.Queue.NATSURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("connecting to queue.nats_url: %w", err)
		}
		return nc, nil
	}
	if cfg.Queue.AdminAddr == "" {
		return nil, errors.New("the embedded NATS server listens on no port: set queue.admin_addr (PSGW_QUEUE_ADMIN_ADDR=127.0.0.1:4222) for the running gateway and restart it")
	}
	tok, err := queue.ReadAdminToken(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("reading the admin token the running gateway wrote (is it running with queue.admin_addr, and is data_dir %s its data directory?): %w", cfg.DataDir, err)
	}
	nc, err := nats.Connect("nats://"+cfg.Queue.AdminAddr, nats.Name("psgw-backup"), nats.Token(tok))
	if err != nil {
		return nil, fmt.Errorf("connecting to the running gateway's admin port %s: %w", cfg.Queue.AdminAddr, err)
	}
	return nc, nil
}

// cmdRestore creates a stopped install's store from a backup: the embedded server's data
// directory (which must hold no streams), or the external cluster at queue.nats_url. Incidents
// the backup cannot vouch for are then moved to unknown (ledger.RestoredUnsure).
func cmdRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("psgw restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config `file` the gateway runs with")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: psgw restore [--config FILE] DIR\n\nCreates the gateway's store from the backup in DIR: the embedded server's data_dir, which\nmust be empty and not in use, or the external cluster at queue.nats_url (at queue.replicas).\nRun it with the gateway stopped.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	cfg, dir, code, ok := dirCommand(fs, args, cfgPath, stderr, "the backup directory to restore from")
	if !ok {
		return code
	}
	if _, err := queue.ReadManifest(dir); err != nil {
		fmt.Fprintf(stderr, "psgw restore: %s: %v\n", dir, err)
		return 2
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := restore(ctx, cfg, dir, log)
	if err != nil {
		fmt.Fprintf(stderr, "psgw restore: %v\n", err)
		return 1
	}
	where := "data_dir " + cfg.DataDir
	if cfg.Queue.NATSURL != "" {
		where = "the cluster at queue.nats_url"
	}
	fmt.Fprintf(stdout, "restored %d streams from the backup taken %s into %s\n", res.streams, res.taken.Format(time.RFC3339), where)
	if res.unknown > 0 {
		fmt.Fprintf(stdout, "%d incidents were not yet delivered when the backup was taken and may have been since: they are now unknown; check each in LFPSE, then `psgw resolve` it (psgw events --state unknown lists them)\n", res.unknown)
	}
	return 0
}

type restored struct {
	streams, unknown int
	taken            time.Time
}

// restore is `psgw restore` (and the tests'): the streams from dir, then the ledger's
// incidents whose delivery the backup cannot vouch for moved to unknown.
func restore(ctx context.Context, cfg config.Config, dir string, log zerolog.Logger) (restored, error) {
	var res restored
	qopts, err := gateway.QueueOptions(cfg, log.With().Str("component", "queue").Logger())
	if err != nil {
		return res, err
	}
	qopts.Listen = false
	if cfg.Queue.NATSURL == "" {
		// The gateway must be stopped: a restore into a store in use would corrupt it.
		lock, err := dirlock.Acquire(cfg.DataDir)
		if err != nil {
			return res, err
		}
		defer lock.Release()
	}
	q, err := queue.OpenStore(qopts)
	if err != nil {
		return res, err
	}
	defer q.Close()
	replicas := 0
	if cfg.Queue.NATSURL != "" {
		replicas = cfg.Queue.Replicas
	}
	m, err := queue.Restore(ctx, q.Conn(), dir, queue.RestoreOptions{Replicas: replicas})
	if err != nil {
		return res, err
	}
	res.streams, res.taken = len(m.Streams), m.Started
	if err := q.Ensure(ctx); err != nil {
		return res, err
	}
	l, err := ledger.Open(ctx, q, ledger.Options{Logger: log.With().Str("component", "ledger").Logger()})
	if err != nil {
		return res, err
	}
	res.unknown, err = l.MarkRestored(ctx)
	if err != nil {
		return res, fmt.Errorf("marking incidents whose delivery the backup cannot vouch for: %w", err)
	}
	// Records the backup's raw stream holds but its ledger does not (a mapping backlog) may
	// have been delivered after it: the mapper records them unknown (ledger.Options.RestoredThrough).
	rawSeq, err := m.LastSeq(queue.RawStream)
	if err != nil {
		return res, err
	}
	if err := gateway.MarkRestored(ctx, q, rawSeq); err != nil {
		return res, err
	}
	return res, nil
}
