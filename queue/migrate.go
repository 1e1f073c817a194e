package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Migrate copies a stopped store into another one, stream by stream: a JetStream snapshot of
// each (consumers and their delivered and acknowledged floors included) restored on the
// target at the replica count asked for, so that every message keeps its sequence, every key
// its revision, and every durable consumer its place (docs/cluster.md, "Moving an existing
// install"). Nothing may write to the source meanwhile: `psgw migrate` holds its data
// directory's lock.

// ErrTargetNotEmpty means the target already holds streams of psgw's: a migration goes only
// into a store that has none, so that it never merges two histories.
var ErrTargetNotEmpty = errors.New("the target already holds psgw streams")

// ErrVerify means the copy differs from the source.
var ErrVerify = errors.New("the copy differs from the source")

// MigrateOptions adjust Migrate.
type MigrateOptions struct {
	// Replicas is the replica count every stream is created with on the target.
	Replicas int
	// SpoolDir holds each stream's snapshot between reading it from the source and restoring
	// it on the target (then removed): a directory as private as the data directory, with
	// room for the largest stream.
	SpoolDir string
	// CurrentTimeout bounds the wait for every replica of every stream and consumer to have
	// caught up with its leader; 0 means 2 minutes.
	CurrentTimeout time.Duration
	// Progress, when set, is told of each stream once it is on the target.
	Progress func(StreamCopy)
}

// StreamCopy is one stream moved.
type StreamCopy struct {
	Name string
	// Messages and Bytes are the stream's, as the source held it.
	Messages uint64
	Bytes    uint64
	// SnapshotBytes is the size of its snapshot (compressed).
	SnapshotBytes int64
	// Consumers is how many durable consumers came with it.
	Consumers int
	// Snapshot and Restore are how long reading it from the source and writing it to the
	// target took.
	Snapshot, Restore time.Duration
}

// MigrateResult is what Migrate copied.
type MigrateResult struct {
	Streams []StreamCopy
	// Started, Copied (every stream on the target) and Finished (every follower caught up
	// and the copy checked).
	Started, Copied, Finished time.Time
}

// Totals are the messages and bytes of every stream copied.
func (r MigrateResult) Totals() (msgs, bytes uint64) {
	for _, s := range r.Streams {
		msgs += s.Messages
		bytes += s.Bytes
	}
	return msgs, bytes
}

// IsPsgwStream says whether a stream's name is one of psgw's: its own streams (PSGW_…) and
// buckets (KV_psgw_…).
func IsPsgwStream(name string) bool {
	return strings.HasPrefix(name, "PSGW_") || strings.HasPrefix(name, "KV_psgw_")
}

// Migrate copies every stream of src to dst at o.Replicas, waits until every replica has
// caught up, and checks the copy against the source (Verify). It refuses, before copying
// anything, when dst holds any psgw stream already or src holds none.
func Migrate(ctx context.Context, src, dst *nats.Conn, o MigrateOptions) (MigrateResult, error) {
	res := MigrateResult{Started: time.Now().UTC()}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.CurrentTimeout <= 0 {
		o.CurrentTimeout = 2 * time.Minute
	}
	names, err := streamNames(ctx, src)
	if err != nil {
		return res, fmt.Errorf("source: %w", err)
	}
	if len(names) == 0 {
		return res, errors.New("the source store holds no streams: is data_dir the gateway's data directory?")
	}
	slices.SortStableFunc(names, func(a, b string) int { return backupRank(a) - backupRank(b) })
	existing, err := streamNames(ctx, dst)
	if err != nil {
		return res, fmt.Errorf("target: %w", err)
	}
	var clash []string
	for _, n := range existing {
		if IsPsgwStream(n) || slices.Contains(names, n) {
			clash = append(clash, n)
		}
	}
	if len(clash) > 0 {
		slices.Sort(clash)
		return res, fmt.Errorf("%w: %s", ErrTargetNotEmpty, strings.Join(clash, ", "))
	}
	if err := os.MkdirAll(o.SpoolDir, 0o700); err != nil {
		return res, fmt.Errorf("creating spool directory: %w", err)
	}
	jsSrc, err := jetstream.New(src)
	if err != nil {
		return res, err
	}
	for _, name := range names {
		c, err := copyStream(ctx, src, dst, jsSrc, name, o)
		if err != nil {
			return res, fmt.Errorf("copying stream %s: %w", name, err)
		}
		res.Streams = append(res.Streams, c)
		if o.Progress != nil {
			o.Progress(c)
		}
	}
	res.Copied = time.Now().UTC()
	if err := waitCurrent(ctx, dst, names, o.Replicas, o.CurrentTimeout); err != nil {
		return res, err
	}
	if err := Verify(ctx, src, dst, names, o.Replicas); err != nil {
		return res, err
	}
	res.Finished = time.Now().UTC()
	return res, nil
}

// copyStream snapshots one stream of src into the spool directory and restores it on dst.
func copyStream(ctx context.Context, src, dst *nats.Conn, jsSrc jetstream.JetStream, name string, o MigrateOptions) (StreamCopy, error) {
	c := StreamCopy{Name: name}
	s, err := jsSrc.Stream(ctx, name)
	if err != nil {
		return c, err
	}
	info := s.CachedInfo()
	c.Messages, c.Bytes, c.Consumers = info.State.Msgs, info.State.Bytes, info.State.Consumers
	began := time.Now()
	snap, err := snapshotStream(ctx, src, name, o.SpoolDir)
	spooled := filepath.Join(o.SpoolDir, snap.File)
	defer os.Remove(spooled)
	if err != nil {
		return c, fmt.Errorf("snapshot: %w", err)
	}
	c.SnapshotBytes = snap.Bytes
	c.Snapshot = time.Since(began)
	began = time.Now()
	if err := restoreStream(ctx, dst, o.SpoolDir, snap, RestoreOptions{Replicas: o.Replicas}); err != nil {
		return c, fmt.Errorf("restore on the target: %w", err)
	}
	c.Restore = time.Since(began)
	return c, nil
}

// waitCurrent waits until every follower of every stream and consumer named has caught up
// with its leader, so that the copy stands on o.Replicas servers before the source is left.
func waitCurrent(ctx context.Context, dst *nats.Conn, names []string, replicas int, timeout time.Duration) error {
	if replicas <= 1 {
		return nil
	}
	js, err := jetstream.New(dst)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	behind := func() (string, error) {
		for _, name := range names {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return "", err
			}
			if why := peersBehind(s.CachedInfo().Cluster, replicas); why != "" {
				return "stream " + name + ": " + why, nil
			}
			cl := s.ListConsumers(ctx)
			for ci := range cl.Info() {
				if why := peersBehind(ci.Cluster, replicas); why != "" {
					return "consumer " + name + "/" + ci.Name + ": " + why, nil
				}
			}
			if err := cl.Err(); err != nil {
				return "", err
			}
		}
		return "", nil
	}
	for {
		why, err := behind()
		if err == nil && why == "" {
			return nil
		}
		if err != nil {
			why = err.Error()
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("the copy is not yet on %d servers after %s (%s): the target cluster is short of a server or too slow; it holds the streams, so check it with `nats stream report` before starting psgw on it", replicas, timeout, why)
		case <-t.C:
		}
	}
}

// peersBehind says why a stream or consumer is not yet on replicas current servers, or "".
func peersBehind(ci *jetstream.ClusterInfo, replicas int) string {
	if ci == nil || ci.Leader == "" {
		return "no leader yet"
	}
	if len(ci.Replicas) < replicas-1 {
		return fmt.Sprintf("%d of %d followers", len(ci.Replicas), replicas-1)
	}
	for _, p := range ci.Replicas {
		if !p.Current || p.Offline || p.Lag > 0 {
			return fmt.Sprintf("follower %s catching up (lag %d)", p.Name, p.Lag)
		}
	}
	return ""
}
