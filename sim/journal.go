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

// note appends a finished request to the journal.
func (s *Simulator) note(r *http.Request, w *statusWriter, at time.Time, label string) {
	status := w.status
	if w.dropped && w.fault != FaultTruncated {
		status = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqSeq++
	if len(s.journal) >= MaxJournal {
		s.journal = slices.Delete(s.journal, 0, len(s.journal)/10)
	}
	s.journal = append(s.journal, Request{Seq: s.reqSeq, At: at, Method: r.Method, Path: r.URL.Path,
		Status: status, Fault: w.fault, Stored: w.stored, ID: w.id, Label: label})
}

// Requests returns the journal of national API requests, oldest first (admin calls excluded).
func (s *Simulator) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal)
}
