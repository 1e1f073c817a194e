// Package ops is the operators' side of the gateway: health and readiness, the delivery-record
// API, and the status page. It renders status that the other parts compute; it decides
// nothing about delivery itself.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/forwarder"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/queue"
)

// Server serves the operations endpoints on the gateway's HTTP mux.
type Server struct {
	Queue     *queue.Queue
	Ledger    *forwarder.Ledger
	Forwarder *forwarder.Forwarder
	// Replayer re-maps incidents for the replay and resolve actions.
	Replayer Replayer
	Adapters []*ingest.Runner
	// Demo is set when the in-process simulator stands in for the national service.
	Demo bool
	// NationalURL is the configured national endpoint ("" when none).
	NationalURL     string
	TaxonomyVersion int
	// HeldReason explains why events are held, when they are.
	HeldReason string
	Log        zerolog.Logger
	Started    time.Time
}

// Routes mounts the endpoints.
func (s *Server) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/v1/incidents/{source}/{local_id...}", s.incident)
	mux.HandleFunc("GET /api/v1/status", s.statusJSON)
	mux.HandleFunc("GET /{$}", s.page)
	s.actionRoutes(mux)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness is the /readyz body.
type Readiness struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

// Ready reports whether the gateway can do its job: JetStream usable and delivery not
// stopped by an auth failure.
func (s *Server) Ready(ctx context.Context) Readiness {
	var rd Readiness
	if err := s.Queue.Healthy(ctx); err != nil {
		rd.Reasons = append(rd.Reasons, "jetstream: "+err.Error())
	}
	if s.Forwarder != nil {
		if st := s.Forwarder.Status(); st.Paused {
			rd.Reasons = append(rd.Reasons, st.PauseReason)
		}
	}
	rd.Ready = len(rd.Reasons) == 0
	return rd
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	rd := s.Ready(r.Context())
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// Record is the delivery record of CONTRACT §2, with a few extra fields operators need.
type Record struct {
	Source            string                   `json:"source"`
	LocalID           string                   `json:"local_id"`
	Revision          int                      `json:"revision"`
	State             forwarder.State          `json:"state"`
	NationalID        string                   `json:"national_id"`
	NationalReference string                   `json:"national_reference"`
	Attempts          int                      `json:"attempts"`
	LastError         string                   `json:"last_error"`
	History           []forwarder.HistoryEntry `json:"history"`
	NationalVersion   string                   `json:"national_version,omitempty"`
	PossibleDuplicate bool                     `json:"possible_duplicate,omitempty"`
	Redactions        int                      `json:"redactions,omitempty"`
	ReceivedAt        time.Time                `json:"received_at,omitzero"`
	UpdatedAt         time.Time                `json:"updated_at,omitzero"`
	DeliveredAt       time.Time                `json:"delivered_at,omitzero"`
}

// RecordOf renders a ledger entry.
func RecordOf(e *forwarder.Entry) Record {
	h := e.History
	if h == nil {
		h = []forwarder.HistoryEntry{}
	}
	return Record{
		Source: e.Source, LocalID: e.LocalID, Revision: e.Revision, State: e.State,
		NationalID: e.NationalID, NationalReference: e.NationalReference, Attempts: e.Attempts,
		LastError: e.LastError, History: h, NationalVersion: e.NationalVersion,
		PossibleDuplicate: e.PossibleDuplicate, Redactions: e.Redactions,
		ReceivedAt: e.ReceivedAt, UpdatedAt: e.UpdatedAt, DeliveredAt: e.DeliveredAt,
	}
}

func (s *Server) incident(w http.ResponseWriter, r *http.Request) {
	source, localID := r.PathValue("source"), r.PathValue("local_id")
	key := ingest.IncidentKey(source, localID)
	e, err := s.Ledger.Get(r.Context(), forwarder.LedgerKey(source, key))
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, RecordOf(e))
		return
	case !errors.Is(err, forwarder.ErrNotFound):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "ledger unavailable: " + err.Error()})
		return
	}
	// Stored but not yet mapped: the raw stream has it, the ledger does not yet.
	m, err := s.Queue.LastRaw(r.Context(), queue.RawSubject(ingest.KindIncident, source, key))
	switch {
	case err == nil:
		at, _ := time.Parse(time.RFC3339Nano, m.Header.Get(queue.HeaderReceived))
		writeJSON(w, http.StatusOK, Record{Source: source, LocalID: localID, State: forwarder.StateReceived,
			History:    []forwarder.HistoryEntry{{At: at, State: forwarder.StateReceived, Detail: "stored; waiting to be mapped"}},
			ReceivedAt: at})
	case errors.Is(err, jetstream.ErrMsgNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no incident " + localID + " from source " + source})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "queue unavailable: " + err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
