package sim

import (
	"net/http"
	"slices"
	"time"
)

// MaxJournal bounds the request journal; the oldest requests are forgotten first.
const MaxJournal = 200000

// Request is one national API request as the simulator saw and answered it: what a test needs
// to explain an outcome on the gateway's side (an incident left unknown, say) by what the
// service did. It never holds the body.
type Request struct {
	Seq    int       `json:"seq"`
	At     time.Time `json:"at"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	// Status is the status sent; 0 when no answer was sent (a reset, a lost response, a
	// client that gave up waiting). A truncated answer has its status and Fault "truncated".
	Status int `json:"status"`
	// Fault is the fault injected (a Fault* kind), "" for none.
	Fault string `json:"fault,omitempty"`
	// Stored: the write was stored, whatever the answer said.
	Stored bool `json:"stored"`
	// ID is the AdverseEvent the request created or amended, when known.
	ID string `json:"id,omitempty"`
	// Label is what Options.Label named the body, if set.
	Label string `json:"label,omitempty"`
}

// arrived numbers a national API request as it arrives: the journal is in the order requests
// came, not the order their handlers ended (a truncated answer's handler can end after the
// next request's, since the client stops reading when the body breaks off).
func (s *Simulator) arrived() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqSeq++
	return s.reqSeq
}

// note adds a finished request to the journal, in the place its arrival gives it.
func (s *Simulator) note(r *http.Request, w *statusWriter, seq int, at time.Time, label string) {
	status := w.status
	if w.dropped && w.fault != FaultTruncated {
		status = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.journal) >= MaxJournal {
		s.journal = slices.Delete(s.journal, 0, len(s.journal)/10)
	}
	req := Request{Seq: seq, At: at, Method: r.Method, Path: r.URL.Path,
		Status: status, Fault: w.fault, Stored: w.stored, ID: w.id, Label: label}
	// Mostly it belongs at the end; a request that outlived later ones goes back a few places.
	i := len(s.journal)
	for i > 0 && s.journal[i-1].Seq > seq {
		i--
	}
	s.journal = slices.Insert(s.journal, i, req)
}

// Requests returns the journal of national API requests, oldest first (admin calls excluded).
func (s *Simulator) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal)
}
