package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/dirlock"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/queue"
)

// migrateSpool is the directory inside data_dir where each stream's snapshot waits between
// the embedded store and the cluster: as private as the store it comes from.
const migrateSpool = "migrate.spool"

// cmdMigrate copies a stopped gateway's embedded store to an external cluster
// (docs/cluster.md, "Moving an existing install"): every stream and bucket with its
// sequences, revisions and consumers, at --replicas, checked against the source afterwards.
// Unlike a restore it marks nothing unknown: the gateway was stopped for the whole copy, so
// nothing can have been delivered that the copy does not know of.
func cmdMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("psgw migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config `file` the gateway runs with (its data_dir is the source)")
	to := fs.String("to", "", "the cluster's `URLs`, comma-separated, as queue.nats_url takes them (nats:// or tls://)")
	replicas := fs.Int("replicas", 3, "replica count of every stream and bucket on the cluster (queue.replicas)")
	creds := fs.String("creds", "", "NATS credentials `file` for the cluster (queue.nats_creds_file)")
	waitFor := fs.Duration("wait", 2*time.Minute, "how long to wait for the cluster to answer, and for every replica to catch up")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: psgw migrate [--config FILE] --to URLS [--replicas N] [--creds FILE]\n\nCopies the embedded store of a stopped gateway (its data_dir) to an external NATS cluster:\nevery stream and bucket, with their sequences and the durable consumers' places, at\n--replicas, then checks the copy against the source. Stop the gateway first; then start it\nwith queue.nats_url and queue.replicas set as here.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "psgw migrate: unexpected argument %q (the target is --to)\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "psgw migrate: %v\n", err)
		return 2
	}
	if err := checkMigrateTarget(cfg, *to, *replicas); err != nil {
		fmt.Fprintf(stderr, "psgw migrate: %v\n", err)
		return 2
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := migrate(ctx, cfg, migrateTarget{URL: *to, Replicas: *replicas, CredsFile: *creds, Wait: *waitFor}, stderr, log)
	if err != nil {
		fmt.Fprintf(stderr, "psgw migrate: %v\n", err)
		return 1
	}
	msgs, bytes := res.Totals()
	took := res.Finished.Sub(res.Started)
	fmt.Fprintf(stdout, "migrated %d streams (%d messages, %s) from data_dir %s to %s at %d replicas in %s (copy %s, followers and check %s), and checked them\n",
		len(res.Streams), msgs, mb(bytes), cfg.DataDir, redactURLs(*to), *replicas, took.Round(time.Millisecond),
		res.Copied.Sub(res.Started).Round(time.Millisecond), res.Finished.Sub(res.Copied).Round(time.Millisecond))
	fmt.Fprintf(stdout, "next: start psgw with queue.nats_url: %q and queue.replicas: %d (PSGW_QUEUE_NATS_URL, PSGW_QUEUE_REPLICAS); data_dir %s now refuses to run an embedded gateway (%s); keep it until the cluster has run a while\n",
		redactURLs(*to), *replicas, cfg.DataDir, gateway.MigratedFile)
	return 0
}

// migrateTarget is where `psgw migrate` copies to.
type migrateTarget struct {
	URL       string
	Replicas  int
	CredsFile string
	// Wait bounds the wait for the cluster to answer and for its replicas to catch up.
	Wait time.Duration
}

// checkMigrateTarget refuses what migrate cannot do before anything is opened: a source that
// is not the embedded store, or a target queue.nats_url and queue.replicas would not take.
func checkMigrateTarget(cfg config.Config, to string, replicas int) error {
	if cfg.Queue.NATSURL != "" {
		return errors.New("this configuration already uses an external store (queue.nats_url): migrate copies the embedded store (data_dir) to a cluster; it does not copy one cluster to another")
	}
	if strings.TrimSpace(to) == "" {
		return errors.New("give the cluster to copy to: --to nats://a:4222,nats://b:4222,nats://c:4222")
	}
	// The target must be one the gateway can then run on: the same checks as its config.
	tc := cfg
	tc.Queue.NATSURL, tc.Queue.Replicas, tc.Queue.AdminAddr = to, replicas, ""
	if err := tc.Validate(); err != nil {
		return fmt.Errorf("--to and --replicas as queue.nats_url and queue.replicas:\n%w", err)
	}
	return nil
}

// migrate is `psgw migrate` (and the tests'): it takes the data directory's lock, opens the
// embedded store without listening, and copies it to the target, telling progress on
// progress. It never marks incidents unknown, as a restore does (ledger.MarkRestored,
// gateway.MarkRestored): the source was stopped for the whole copy, so the copy is exactly
// what the gateway last knew; and it leaves MigratedFile in data_dir when done.
func migrate(ctx context.Context, cfg config.Config, t migrateTarget, progress io.Writer, log zerolog.Logger) (queue.MigrateResult, error) {
	var res queue.MigrateResult
	if m, ok, err := gateway.ReadMigrated(cfg.DataDir); err != nil {
		return res, err
	} else if ok {
		return res, fmt.Errorf("data_dir %s was migrated already, to %s on %s (%s); migrate again only after deleting psgw's streams on the target and %s",
			cfg.DataDir, m.To, m.At.Format(time.RFC3339), gateway.MigratedFile, gateway.MigratedFile)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "jetstream")); err != nil {
		return res, fmt.Errorf("data_dir %s holds no embedded store (%v): give the configuration of the gateway to move", cfg.DataDir, err)
	}
	// The gateway must be stopped: what it delivered or accepted during the copy would be
	// missing from it.
	lock, err := dirlock.Acquire(cfg.DataDir)
	if err != nil {
		if errors.Is(err, dirlock.ErrLocked) {
			return res, fmt.Errorf("%w; stop the gateway first: migrate copies a stopped store", err)
		}
		return res, err
	}
	defer lock.Release()

	qopts, err := gateway.QueueOptions(cfg, log.With().Str("component", "queue").Logger())
	if err != nil {
		return res, err
	}
	qopts.Listen = false
	src, err := queue.OpenStore(qopts)
	if err != nil {
		return res, fmt.Errorf("opening the embedded store: %w", err)
	}
	defer src.Close()

	dst, err := queue.OpenStore(queue.Options{NATSURL: t.URL, NATSCredsFile: t.CredsFile, Replicas: t.Replicas,
		Logger: log.With().Str("component", "target").Logger()})
	if err != nil {
		return res, fmt.Errorf("connecting to %s: %w", redactURLs(t.URL), err)
	}
	defer dst.Close()
	wctx, cancel := context.WithTimeout(ctx, t.Wait)
	err = dst.WaitCluster(wctx)
	cancel()
	if err != nil {
		return res, fmt.Errorf("the target: %w", err)
	}

	spool := filepath.Join(cfg.DataDir, migrateSpool)
	if err := os.RemoveAll(spool); err != nil { // what an interrupted run left
		return res, err
	}
	defer os.RemoveAll(spool)
	fmt.Fprintf(progress, "copying data_dir %s to %s at %d replicas\n", cfg.DataDir, redactURLs(t.URL), t.Replicas)
	res, err = queue.Migrate(ctx, src.Conn(), dst.Conn(), queue.MigrateOptions{
		Replicas: t.Replicas, SpoolDir: spool, CurrentTimeout: t.Wait,
		Progress: func(c queue.StreamCopy) {
			took := c.Snapshot + c.Restore
			fmt.Fprintf(progress, "  %-26s %9d messages %10s  %d consumer(s)  %s (read %s, written %s)\n", c.Name, c.Messages, mb(c.Bytes),
				c.Consumers, took.Round(time.Millisecond), c.Snapshot.Round(time.Millisecond), c.Restore.Round(time.Millisecond))
		},
	})
	switch {
	case errors.Is(err, queue.ErrTargetNotEmpty):
		return res, fmt.Errorf("%w. migrate copies only into a cluster without psgw's streams, so that two histories are never merged. If they are left from an earlier attempt and no gateway has run on the cluster since, delete them (nats stream rm NAME for each) and run migrate again; if a gateway has run there, that cluster is in use: do not migrate into it", err)
	case errors.Is(err, queue.ErrVerify):
		return res, fmt.Errorf("%w. The cluster's copy cannot be trusted: do not start psgw on it. data_dir is unchanged; delete psgw's streams on the cluster, and run the embedded gateway again or migrate again", err)
	case err != nil:
		return res, fmt.Errorf("%w. data_dir is unchanged; the cluster may hold part of the copy: delete psgw's streams there before trying again", err)
	}
	if err := gateway.WriteMigrated(cfg.DataDir, gateway.Migrated{To: redactURLs(t.URL), Replicas: t.Replicas, At: res.Finished}); err != nil {
		return res, fmt.Errorf("the copy is complete and checked, but marking data_dir as migrated failed (%w): do not start the embedded gateway again", err)
	}
	return res, nil
}

// redactURLs drops credentials from a comma-separated list of URLs.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		parts[i] = config.RedactCredentials(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// mb prints a byte count in megabytes.
func mb(n uint64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
