package ops

import (
	"net/http"
	"time"

	"github.com/psgw/psgw/ledger"
)

// While the gateway waits for its store at start (an external cluster unreachable or
// without a JetStream quorum: docs/cluster.md, "Start-up checks"), its listeners are open
// already and a Server with StoreWaiting set answers for the operations side: /healthz says
// alive, /readyz 503 naming the cause, the status page and GET /api/v1/status say that the
// gateway is waiting for the store and why, and everything else that needs the ledger
// answers 503 with the same words. Such a Server has no Queue and no Ledger: nothing here
// may touch them.

// waitingReason is the readiness reason while the store is awaited: the words of
// queue.Healthy's reason ("jetstream unavailable: server unreachable"), so that an alert on
// one matches the other, and what the gateway is doing about it.
func waitingReason(cause string) string {
	return "jetstream: jetstream unavailable: " + cause + " (waiting for the store; the gateway starts by itself once it is there)"
}

// waiting reports the store's cause while it is awaited, "" once it is not (or never was).
func (s *Server) waiting() string {
	if s.StoreWaiting == nil {
		return ""
	}
	return s.StoreWaiting()
}

// WaitingRoutes mounts on mux the endpoints a Server with StoreWaiting answers while the
// store is awaited; the gateway serves mux ahead of its own until the store is there, and
// the ingest routes answer 503 through their adapters meanwhile.
func (s *Server) WaitingRoutes(mux *http.ServeMux) {
	handle := func(pattern string, role Role, h http.HandlerFunc) { mux.Handle(pattern, s.guard(role, h)) }
	handle("GET /healthz", s.Auth.healthRole(), s.healthz)
	handle("GET /readyz", s.Auth.healthRole(), s.readyz)
	handle("GET /api/v1/status", RoleViewer, s.statusJSON)
	handle("GET /api/v1/adapters", RoleViewer, s.adaptersJSON)
	handle("GET /api/v1/whoami", RoleViewer, s.whoami)
	handle("GET /{$}", RoleViewer, s.overviewPage)
	handle("GET /login", RoleNone, s.loginPage)
	handle("POST /login", RoleNone, s.loginSubmit)
	handle("POST /logout", RoleNone, s.logoutSubmit)
	handle("GET /assets/", RoleNone, s.assets)
	// Every other GET needs the ledger or the queue.
	handle("GET /", s.Auth.healthRole(), s.WaitingAnswer)
}

// WaitingAnswer is the 503 for a request that needs the store while it is awaited.
func (s *Server) WaitingAnswer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "5")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the gateway is waiting for its store: " + s.waiting() + "; retry later"})
}

// waitingOverview is the overview while the store is awaited: what the gateway knows without
// it, and the cause as its problem.
func (s *Server) waitingOverview(o Overview, cause string) Overview {
	o.Problems = append(o.Problems, "Waiting for the store: "+cause+". Ingest answers 503 and MLLP AE until it is there; the gateway starts by itself then.")
	o.Rate.Minutes = make([]int, ledger.RateWindow)
	o.Stages = []StageStatus{}
	for _, a := range s.Adapters {
		o.Adapters = append(o.Adapters, a.Status())
	}
	o.Endpoint = Endpoint{Status: "stopped", Summary: "waiting for the store"}
	o.GeneratedAt = time.Now().UTC()
	return o
}
