package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// Event is one AdverseEvent the simulator accepted, as it stands after its latest write.
type Event struct {
	ID        string          `json:"id"`         // server-assigned id, the PUT target
	VersionID string          `json:"version_id"` // meta.versionId: "1" on create, +1 per amendment
	Reference string          `json:"reference"`  // the national reference (ReferenceNumber)
	Version   int             `json:"version"`    // taxonomy version of the latest write
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
	Updates   int             `json:"updates"`  // amendments accepted
	Resource  json.RawMessage `json:"resource"` // the stored resource, exactly as last answered
}

// Stats counts what the simulator has seen since it started or was last Reset.
type Stats struct {
	Requests      int            `json:"requests"`       // national API requests, admin calls excluded
	Creates       int            `json:"creates"`        // events stored by POST, lost responses included
	Updates       int            `json:"updates"`        // amendments stored by PUT, lost responses included
	Rejected      int            `json:"rejected"`       // refused: 400, 404 (unknown id), 405, 413, 415 or 422
	Unauthorized  int            `json:"unauthorized"`   // answered 401
	Faults        map[string]int `json:"faults"`         // injected faults by kind (the Fault* constants)
	LostResponses int            `json:"lost_responses"` // writes stored whose answer was dropped
	Events        int            `json:"events"`         // events held now
}

// store keeps accepted events in creation order. The Simulator's mutex guards it.
type store struct {
	byID  map[string]*Event
	order []string
	seq   int // references handed out
}

func (st *store) init() {
	*st = store{byID: map[string]*Event{}}
}

// nextReference returns a new national reference. The tag differs per Simulator, so a
// restarted demo does not hand out references an earlier run already used. The letter before
// the number keeps the tag's digits and the number's apart: joined across the hyphen they
// could make ten digits that pass Modulus 11, and a resource sent back with its reference (an
// amendment) would then be refused as holding an NHS number.
func (st *store) nextReference(tag string) string {
	st.seq++
	return fmt.Sprintf("SIM-%s-R%06d", tag, st.seq)
}

// Events returns copies of every accepted event, oldest first.
func (s *Simulator) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, 0, len(s.store.order))
	for _, id := range s.store.order {
		e := *s.store.byID[id]
		e.Resource = append(json.RawMessage(nil), e.Resource...)
		out = append(out, e)
	}
	return out
}

// Stats returns a snapshot of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Faults = maps.Clone(s.stats.Faults)
	st.Events = len(s.store.order)
	return st
}

// count applies fn to the stats under the lock.
func (s *Simulator) count(fn func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.stats)
}
