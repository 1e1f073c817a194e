package adaptertest

import (
	"context"
	"sync"

	"github.com/psgw/psgw/ingest"
)

// State is an in-memory ingest.StateStore for adapters' tests. It can be made to fail (Fail)
// to act as a queue that is down. Safe for concurrent use.
type State struct {
	mu   sync.Mutex
	m    map[string][]byte
	fail error
}

// NewState returns an empty state store.
func NewState() *State { return &State{m: map[string][]byte{}} }

var _ ingest.StateStore = (*State)(nil)

// Get implements ingest.StateStore.
func (s *State) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	v, ok := s.m[key]
	if !ok {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

// Put implements ingest.StateStore.
func (s *State) Put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// Delete implements ingest.StateStore.
func (s *State) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	delete(s.m, key)
	return nil
}

// Keys returns the number of keys held.
func (s *State) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Fail makes every call return err (nil: work again).
func (s *State) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}
