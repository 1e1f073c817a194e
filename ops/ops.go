// Package ops is the operators' side of the gateway: health and readiness, the status page,
// the JSON API under /api/v1/, Prometheus metrics, and the access control in front of them.
// It presents only: it renders status that the other parts compute (the ledger's index and
// rules, the forwarder's and the stages' status, through small interfaces the gateway wires)
// and hands actions to the ledger and to a Replayer; it decides nothing about delivery itself.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/patients"
	"github.com/psgw/psgw/queue"
)

// DemographicsReporter is the demographics store (patients.Stage) as the status page sees it.
type DemographicsReporter interface {
	Status() patients.Status
}

// Server serves the operations endpoints on the gateway's HTTP mux: health, the status page,
// the JSON API under /api/v1/ and /metrics. Set the fields, then call Routes once. Its counts
// and searches come from the ledger's index, which the gateway keeps current
// (ledger.RunIndex). Safe for concurrent use once Routes has been called.
type Server struct {
	Queue  *queue.Queue
	Ledger *ledger.Ledger
	// Forwarder reports the delivery stage; nil reports none.
	Forwarder ForwarderReporter
	// Replayer re-maps incidents for the replay and resolve actions.
	Replayer Replayer
	Adapters []*ingest.Runner
	// Stages reports the pipeline stages (mapper, forwarder, patients); nil reports none.
	// While one is down the gateway is not ready.
	Stages StageReporter
	// Demographics reports the EPR's demographics store; nil when there is no MLLP listener.
	Demographics DemographicsReporter
	// Demo is set when the in-process simulator stands in for the national service.
	Demo bool
	// NationalURL is the configured national endpoint ("" when none).
	NationalURL     string
	TaxonomyVersion int
	// HeldReason explains why events are held, when they are.
	HeldReason string
	Log        zerolog.Logger
	Started    time.Time
	// Auth is access control; nil leaves everything open (as with no tokens configured).
	Auth *Auth
	// Registry, when set, gets the ops collector and is served at /metrics. Never the
	// global registry.
	Registry *prometheus.Registry
	// Version is the gateway's version, shown in the page footer and psgw_build_info.
	Version string
	// Replica is this gateway's name where several share one cluster (config key replica).
	Replica string
	// Insights is the learning store, InsightsRebuilder rebuilds it; nil serves none
	// (docs/insights.md). SuppressionThreshold is insights.suppression_threshold.
	Insights             InsightsReader
	InsightsRebuilder    InsightsRebuilder
	SuppressionThreshold int
	// StoreWaiting, when set, says why the store is awaited at start ("server
	// unreachable"), or "" once it is not; while it says something, Queue and Ledger are
	// nil and only WaitingRoutes are mounted (waiting.go).
	StoreWaiting func() string
}

// ForwarderReporter is the delivery stage (the forwarder) as readiness and the status page see
// it; the gateway adapts the forwarder to it.
type ForwarderReporter interface {
	Status() ForwarderStatus
}

// Routes mounts the endpoints. Every route passes the access guard: the page and the API
// need a viewer, the actions an operator; health and metrics are open unless configured
// otherwise. The ingest route (POST /api/v1/incidents) is not mounted here and keeps its own
// ingest tokens.
func (s *Server) Routes(mux *http.ServeMux) {
	handle := func(pattern string, role Role, h http.HandlerFunc) { mux.Handle(pattern, s.guard(role, h)) }
	handle("GET /healthz", s.Auth.healthRole(), s.healthz)
	handle("GET /readyz", s.Auth.healthRole(), s.readyz)
	handle("GET /api/v1/incidents/{source}/{local_id...}", RoleViewer, s.incident)
	handle("GET /api/v1/incidents", RoleViewer, s.searchJSON)
	handle("GET /api/v1/status", RoleViewer, s.statusJSON)
	handle("GET /api/v1/adapters", RoleViewer, s.adaptersJSON)
	handle("GET /api/v1/whoami", RoleViewer, s.whoami)
	s.pageRoutes(handle)
	s.insightsRoutes(mux, handle)
	if s.Registry != nil {
		s.Registry.MustRegister(s.collector())
		if s.Auth != nil {
			s.Registry.MustRegister(s.Auth.refused)
		}
		mux.Handle("GET /metrics", s.guard(s.Auth.metricsRole(), promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{ErrorLog: nil})))
	}
	// The actions (actions.go) mount on a mux of their own, so that all of them, present and
	// future, sit behind the operator guard.
	actions := http.NewServeMux()
	s.actionRoutes(actions)
	mux.Handle("POST /api/v1/incidents/{source}/{rest...}", s.guard(RoleOperator, actions))
	mux.Handle("POST /api/v1/replay", s.guard(RoleOperator, actions))
	mux.Handle("POST /api/v1/resolve", s.guard(RoleOperator, actions))
	mux.Handle("POST /api/v1/adapters/{name}/skip", s.guard(RoleOperator, actions))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness is the /readyz body.
type Readiness struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
	// Degraded names what is wrong behind the front door without stopping it from storing
	// (a pipeline stage restarting): shown, never a reason to refuse sources.
	Degraded []string `json:"degraded,omitempty"`
}

// Ready reports whether the gateway can accept and durably store records: JetStream usable.
// Nothing behind the store counts: a pipeline stage that is restarting (the mapper, say)
// and a paused or failing national delivery leave ingest storing, and sources must keep
// pushing what psgw would accept and hold, so a load balancer must not take it out of
// service. A restarting stage is named in Degraded; both show on the page, the status API
// and metrics (docs/api.md, "Readiness").
func (s *Server) Ready(ctx context.Context) Readiness {
	rd, _ := s.ready(ctx)
	return rd
}

// ready is Ready, and whether the store was found unusable (then the overview reads nothing
// more of it: each read would only wait out its timeout).
func (s *Server) ready(ctx context.Context) (Readiness, bool) {
	var rd Readiness
	storeDown := false
	if cause := s.waiting(); cause != "" || s.Queue == nil {
		rd.Reasons = append(rd.Reasons, waitingReason(cause))
		storeDown = true
	} else if err := s.Queue.Healthy(ctx); err != nil {
		rd.Reasons = append(rd.Reasons, "jetstream: "+err.Error())
		storeDown = true
	}
	if s.Stages != nil {
		now := time.Now()
		for _, st := range s.Stages.Stages() {
			if st.Down() {
				rd.Degraded = append(rd.Degraded, st.reason(now))
			}
		}
	}
	rd.Ready = len(rd.Reasons) == 0
	return rd, storeDown
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	rd := s.Ready(r.Context())
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// Record is an incident's delivery record (docs/api.md, "GET /api/v1/incidents/{source}/{local_id}"),
// with a few extra fields operators need.
type Record struct {
	Source            string                `json:"source"`
	LocalID           string                `json:"local_id"`
	Revision          int                   `json:"revision"`
	State             ledger.State          `json:"state"`
	NationalID        string                `json:"national_id"`
	NationalReference string                `json:"national_reference"`
	Attempts          int                   `json:"attempts"`
	LastError         string                `json:"last_error"`
	History           []ledger.HistoryEntry `json:"history"`
	// Warnings are what the newest mapping did not use or fell back on (docs/api.md).
	Warnings          []ledger.Warning `json:"warnings"`
	NationalVersion   string           `json:"national_version,omitempty"`
	PossibleDuplicate bool             `json:"possible_duplicate,omitempty"`
	Redactions        int              `json:"redactions,omitempty"`
	ReceivedAt        time.Time        `json:"received_at,omitzero"`
	UpdatedAt         time.Time        `json:"updated_at,omitzero"`
	DeliveredAt       time.Time        `json:"delivered_at,omitzero"`
	// UnknownSend is the POST whose outcome is unknown, until it is resolved: what an operator
	// needs to look the event up in LFPSE (docs/delivery.md, "Resolving unknown").
	UnknownSend *UnknownSend `json:"unknown_send,omitempty"`
}

// UnknownSend is a POST whose outcome is unknown, as an operator looks for it in LFPSE.
type UnknownSend struct {
	SentAt    time.Time `json:"sent_at"`
	Revision  int       `json:"revision,omitempty"`
	EventType string    `json:"event_type,omitempty"`
	EventDate string    `json:"event_date,omitempty"`
	Location  string    `json:"location,omitempty"`
}

// RecordOf renders a ledger entry.
func RecordOf(e *ledger.Entry) Record {
	h := e.History
	if h == nil {
		h = []ledger.HistoryEntry{}
	}
	ws := e.Warnings
	if ws == nil {
		ws = []ledger.Warning{}
	}
	return Record{
		Source: e.Source, LocalID: e.LocalID, Revision: e.Revision, State: e.State,
		NationalID: e.NationalID, NationalReference: e.NationalReference, Attempts: e.Attempts,
		LastError: e.LastError, History: h, Warnings: ws, NationalVersion: e.NationalVersion,
		PossibleDuplicate: e.PossibleDuplicate, Redactions: e.Redactions,
		ReceivedAt: e.ReceivedAt, UpdatedAt: e.UpdatedAt, DeliveredAt: e.DeliveredAt,
		UnknownSend: unknownSendOf(e),
	}
}

func unknownSendOf(e *ledger.Entry) *UnknownSend {
	u := e.UnknownSend
	if u == nil || !e.AwaitingResolution() {
		return nil
	}
	return &UnknownSend{SentAt: u.StartedAt, Revision: u.Revision, EventType: u.EventType, EventDate: u.EventDate, Location: u.Location}
}

func (s *Server) incident(w http.ResponseWriter, r *http.Request) {
	source, localID := r.PathValue("source"), r.PathValue("local_id")
	key := ingest.IncidentKey(source, localID)
	e, err := s.Ledger.Get(r.Context(), ledger.Key(source, key))
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, RecordOf(e))
		return
	case !errors.Is(err, ledger.ErrNotFound):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "ledger unavailable: " + err.Error()})
		return
	}
	// Stored but not yet mapped: the raw stream has it, the ledger does not yet.
	m, err := s.Queue.LastRaw(r.Context(), queue.RawSubject(ingest.KindIncident, source, key))
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, receivedRecord(source, localID, m.Header))
	case errors.Is(err, jetstream.ErrMsgNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no incident " + localID + " from source " + source})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "queue unavailable: " + err.Error()})
	}
}

// receivedRecord is the delivery record of an incident stored but not yet mapped, from the
// envelope of its raw record. With no ledger entry yet this is the incident's first record:
// its own revision, or 1 when the source sends none (the ledger numbers those from 1).
func receivedRecord(source, localID string, h nats.Header) Record {
	env, err := queue.ReadRawEnvelope(h)
	revision := max(env.Revision, 1)
	rec := Record{Source: source, LocalID: localID, Revision: revision, State: ledger.StateReceived,
		History:    []ledger.HistoryEntry{{At: env.ReceivedAt, State: ledger.StateReceived, Detail: "stored; waiting to be mapped"}},
		Warnings:   []ledger.Warning{},
		ReceivedAt: env.ReceivedAt}
	if err != nil {
		// Said, not guessed: the mapper will quarantine it for the same reason.
		rec.LastError = "the stored record's envelope is unreadable: " + err.Error()
	}
	return rec
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
