package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/ingest/sqlpoll"
)

// AdapterStateBucket is the JetStream KV bucket holding pull adapters' cursors and file
// progress (ingest.StateStore).
const AdapterStateBucket = "psgw_adapter_state"

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

// startPull adds the CSV drop-folder and SQL polling adapters to g.runners when their
// sections are enabled (csvdrop.dir, sqlpoll.query).
func (g *Gateway) startPull(ctx context.Context, cfg config.Config, sources map[string]bool) error {
	d, q := cfg.CSVDrop, cfg.SQLPoll
	if d.Dir == "" && q.Query == "" {
		return nil
	}
	kv, err := g.Queue.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: AdapterStateBucket, Description: "pull adapters' cursors and file progress", History: 1,
	})
	if err != nil {
		return err
	}
	add := func(f ingest.Factory, name string, settings any) error {
		r, err := ingest.NewRunner(f, ingest.Deps{
			Name: name, Settings: settings, Publisher: queuePublisher{q: g.Queue, ledger: g.Ledger, received: g.received}, Logger: g.log,
			Sources: sources, Metrics: g.Registry, State: kvState{kv: kv, prefix: name},
		})
		if err != nil {
			return err
		}
		r.BackoffMin, r.BackoffMax = time.Second, 5*time.Minute
		g.runners = append(g.runners, r)
		return nil
	}
	if d.Dir != "" {
		delim := ','
		if rs := []rune(d.Delimiter); len(rs) == 1 {
			delim = rs[0]
		}
		if err := add(csvdrop.Factory, csvdrop.Kind, csvdrop.Config{
			Dir: d.Dir, ProcessedDir: d.ProcessedDir, FailedDir: d.FailedDir, Source: d.Source,
			Columns: cfg.Sources[d.Source].CSVColumns, Pattern: d.Pattern, PollInterval: d.PollInterval,
			SettleTime: d.SettleTime, DoneMarker: d.DoneMarker, Encoding: d.Encoding, Delimiter: delim,
			MaxRowBytes: d.MaxRowBytes, MaxFileBytes: d.MaxFileBytes, PublishConcurrency: d.PublishConcurrency,
			PublishTimeout: cfg.Queue.PublishTimeout,
		}); err != nil {
			return err
		}
	}
	if q.Query != "" {
		if err := add(sqlpoll.Factory, sqlpoll.Kind, sqlpoll.Config{
			Driver: q.Driver, DSN: q.DSN, Source: q.Source, Query: q.Query, CursorColumns: q.CursorColumns,
			Columns: cfg.Sources[q.Source].CSVColumns, BatchSize: q.BatchSize, PollInterval: q.PollInterval,
			QueryTimeout: q.QueryTimeout, PublishTimeout: cfg.Queue.PublishTimeout,
		}); err != nil {
			return err
		}
	}
	return nil
}

var _ ingest.StateStore = kvState{}
