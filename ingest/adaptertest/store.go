// Package adaptertest is the conformance suite that every ingest adapter passes. An adapter's
// test describes how to build the adapter and how to send it one source record; Run then checks
// the promises of the ingest.Adapter contract against a real running adapter:
//
//   - every record it publishes is well formed (kind, source, key, id, data);
//   - the same source record sent twice gets the same record id, so it is stored once;
//   - the source is acknowledged only after Publish returned nil, and never when it failed;
//   - Run returns nil promptly when its context is cancelled, even with a publish in flight,
//     and that record is not acknowledged, then or later, nor published after Run returned;
//   - Run can be called again after it returned, and the adapter works as before.
//
// Store, the in-memory Publisher the suite uses, is exported for adapters' own tests.
package adaptertest

import (
	"context"
	"sync"

	"github.com/psgw/psgw/ingest"
)

// Store is an in-memory ingest.Publisher that behaves like the durable store: it drops a
// record whose ID it already holds and reports it as a duplicate. It can be made to block
// (Hold) or to fail (Fail) so that tests can see what the adapter tells its source meanwhile.
// Safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	records []ingest.Record
	calls   []ingest.Record
	ids     map[string]uint64
	gate    chan struct{}
	fail    error
	entered chan ingest.Record
	changed chan struct{}
}

// NewStore returns an empty store that accepts everything.
func NewStore() *Store {
	return &Store{ids: map[string]uint64{}, entered: make(chan ingest.Record, 64), changed: make(chan struct{})}
}

var _ ingest.Publisher = (*Store)(nil)

// Publish stores rec unless a record with the same ID is already stored. While the store is
// held it waits for Release or ctx; while it is failing it returns that error.
func (s *Store) Publish(ctx context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	rec.Data = append([]byte(nil), rec.Data...)
	s.mu.Lock()
	s.calls = append(s.calls, rec)
	gate := s.gate
	s.notifyLocked()
	s.mu.Unlock()
	select {
	case s.entered <- rec:
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ingest.PublishResult{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return ingest.PublishResult{}, s.fail
	}
	if seq, dup := s.ids[rec.ID]; dup {
		return ingest.PublishResult{Seq: seq, Duplicate: true}, nil
	}
	s.records = append(s.records, rec)
	seq := uint64(len(s.records))
	s.ids[rec.ID] = seq
	s.notifyLocked()
	return ingest.PublishResult{Seq: seq}, nil
}

// notifyLocked wakes every WaitRecords and WaitCalls. s.mu must be held.
func (s *Store) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Hold makes every Publish wait until Release (or its context ends).
func (s *Store) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

// Release lets held and future Publish calls proceed.
func (s *Store) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// Fail makes Publish return err (nil: succeed again). Use an error wrapping
// ingest.ErrUnavailable to act as a queue that is down.
func (s *Store) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Entered delivers each record as Publish is called with it (up to 64 are buffered; more are
// dropped from this channel, never from the store). Records of earlier calls stay buffered
// until read, so to wait for one particular call use WaitCalls instead.
func (s *Store) Entered() <-chan ingest.Record { return s.entered }

// Records returns the stored records in order.
func (s *Store) Records() []ingest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingest.Record(nil), s.records...)
}

// Calls returns every record Publish was called with, stored or not.
func (s *Store) Calls() []ingest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingest.Record(nil), s.calls...)
}

// WaitRecords waits until at least n records are stored or ctx ends, and returns them.
func (s *Store) WaitRecords(ctx context.Context, n int) ([]ingest.Record, error) {
	return s.wait(ctx, n, func() []ingest.Record { return s.records })
}

// WaitCalls waits until Publish has been called at least n times (stored or not, held or
// not) or ctx ends, and returns every record it was called with, in order. Call n+1 is the
// record whose Publish is in flight after WaitCalls(ctx, n+1) returned.
func (s *Store) WaitCalls(ctx context.Context, n int) ([]ingest.Record, error) {
	return s.wait(ctx, n, func() []ingest.Record { return s.calls })
}

func (s *Store) wait(ctx context.Context, n int, list func() []ingest.Record) ([]ingest.Record, error) {
	for {
		s.mu.Lock()
		if l := list(); len(l) >= n {
			out := append([]ingest.Record(nil), l...)
			s.mu.Unlock()
			return out, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			out := append([]ingest.Record(nil), list()...)
			s.mu.Unlock()
			return out, ctx.Err()
		}
	}
}
