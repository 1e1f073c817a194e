// Package lease gives work that must have one owner among several gateways (a CSV drop
// folder, an SQL poller's cursor, a replica's name) one owner at a time: a key in a
// JetStream key-value bucket whose entries expire, created by the holder, renewed by a
// revision-checked update, lost on a renewal that fails, and taken by another gateway once it
// expires. With the embedded store there is only ever one gateway, and a lease is held
// without asking (docs/cluster.md, "Work with one owner").
package lease

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Bucket is the key-value bucket leases are kept in.
const Bucket = "psgw_leases"

// DefaultTTL is how long a lease outlives its holder's last renewal: how long work with one
// owner stops when its holder dies without letting go.
const DefaultTTL = 15 * time.Second

// Store takes and keeps leases for one holder (a gateway process). Safe for concurrent use.
type Store struct {
	kv     jetstream.KeyValue // nil: single gateway, every lease held
	nc     *nats.Conn
	holder string
	ttl    time.Duration
	log    zerolog.Logger

	mu   sync.Mutex
	held map[string]bool
}

// Creator makes the bucket and reads it through its stream's leader: queue.Queue.
type Creator interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
	Conn() *nats.Conn
}

// Open opens the lease bucket in q for holder, a name unique to this process (the replica
// name and a per-start id). ttl 0 is DefaultTTL.
func Open(ctx context.Context, q Creator, holder string, ttl time.Duration, log zerolog.Logger) (*Store, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	kv, err := q.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "one owner for work that must have one (docs/cluster.md)",
		History: 1, TTL: ttl,
	})
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, nc: q.Conn(), holder: holder, ttl: ttl, log: log, held: map[string]bool{}}, nil
}

// Single is the store of a gateway that is alone on its store (the embedded server): every
// lease is held at once and never lost.
func Single(holder string) *Store {
	return &Store{holder: holder, held: map[string]bool{}}
}

// Holder is this store's holder name.
func (s *Store) Holder() string { return s.holder }

// Held reports whether this store holds the named lease now.
func (s *Store) Held(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[name]
}

// HolderOf returns who holds the named lease now, "" when nobody does. It asks the bucket's
// stream leader, not any replica: a replica that was cut off from the others for longer than
// the TTL has expired the key on its own and answers "nobody" until it catches up, which
// would make a live gateway read as dead (docs/cluster.md, "Work with one owner").
func (s *Store) HolderOf(ctx context.Context, name string) (string, error) {
	if s.kv == nil {
		if s.Held(name) {
			return s.holder, nil
		}
		return "", nil
	}
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + Bucket + "." + name})
	resp, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+Bucket, req)
	if err != nil {
		return "", fmt.Errorf("reading lease %s: %w", name, err)
	}
	var got struct {
		Message *struct {
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &got); err != nil {
		return "", fmt.Errorf("reading lease %s: %w", name, err)
	}
	switch {
	case got.Error != nil && got.Error.ErrCode == errNoMessage:
		return "", nil
	case got.Error != nil:
		return "", fmt.Errorf("reading lease %s: %s (%d)", name, got.Error.Description, got.Error.ErrCode)
	case got.Message == nil:
		return "", fmt.Errorf("reading lease %s: empty answer", name)
	case bytes.Contains(got.Message.Hdrs, []byte("KV-Operation")):
		return "", nil // deleted or purged: let go
	}
	return string(got.Message.Data), nil
}

// errNoMessage is JetStream's error code for a subject with no message.
const errNoMessage = 10037

// Run runs work while this store holds the named lease, until ctx ends: it waits for the
// lease, runs work with a context cancelled as soon as a renewal fails, and after work
// returns waits for the lease again. standby, when set, is called each time it starts
// waiting. Run lets the lease go when ctx ends, so that another holder takes over at once
// instead of after the TTL. The work must save its progress only after what it did is stored,
// so that a new holder starting from the saved progress repeats at most what dedup absorbs.
func (s *Store) Run(ctx context.Context, name string, standby func(), work func(context.Context)) {
	if s.kv == nil {
		s.setHeld(name, true)
		defer s.setHeld(name, false)
		work(ctx)
		return
	}
	for ctx.Err() == nil {
		if standby != nil {
			standby()
		}
		rev, ok := s.acquire(ctx, name)
		if !ok {
			return
		}
		s.setHeld(name, true)
		s.log.Info().Str("lease", name).Msg("lease taken")
		wctx, cancel := context.WithCancel(ctx)
		renewed := make(chan uint64, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			renewed <- s.keep(wctx, cancel, name, rev)
		}()
		work(wctx)
		cancel()
		<-done
		rev = <-renewed
		s.setHeld(name, false)
		if ctx.Err() != nil {
			s.release(name, rev)
			return
		}
	}
}

// acquire waits until the lease is this holder's and returns its revision; false when ctx
// ended first.
func (s *Store) acquire(ctx context.Context, name string) (uint64, bool) {
	every := s.ttl / 3
	for {
		if rev, err := s.take(ctx, name); err == nil {
			return rev, true
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, false
		case <-t.C:
		}
	}
}

// take creates the lease, or takes it back when the entry is already this holder's (a
// renewal that failed only for want of an answer).
func (s *Store) take(ctx context.Context, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.ttl/3)
	defer cancel()
	rev, err := s.kv.Create(ctx, name, []byte(s.holder))
	if err == nil {
		return rev, nil
	}
	e, gerr := s.kv.Get(ctx, name)
	if gerr != nil || string(e.Value()) != s.holder {
		return 0, err
	}
	return s.kv.Update(ctx, name, []byte(s.holder), e.Revision())
}

// keep renews the lease every third of its TTL until ctx ends, and cancels the work
// (lost) at the first renewal that fails: the holder stops before the entry can expire and
// another gateway take it. It returns the last revision it wrote.
func (s *Store) keep(ctx context.Context, lost context.CancelFunc, name string, rev uint64) uint64 {
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return rev
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.ttl/3)
		next, err := s.kv.Update(rctx, name, []byte(s.holder), rev)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return rev
			}
			s.log.Warn().Err(err).Str("lease", name).Msg("lease lost: renewal failed; stopping its work")
			lost()
			return rev
		}
		rev = next
	}
}

// release deletes the lease if it is still this holder's revision, so that another gateway
// need not wait out the TTL.
func (s *Store) release(name string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.kv.Delete(ctx, name, jetstream.LastRevision(rev)); err != nil {
		s.log.Warn().Err(err).Str("lease", name).Msg("lease not released; it expires after its TTL")
		return
	}
	s.log.Info().Str("lease", name).Msg("lease released")
}

func (s *Store) setHeld(name string, held bool) {
	s.mu.Lock()
	s.held[name] = held
	s.mu.Unlock()
}
