package ops

import (
	"context"
	"embed"
	"html/template"
	"net/http"
	"time"

	"github.com/psgw/psgw/forwarder"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/queue"
)

// Overview is the gateway's state at a glance: what the status page shows and
// GET /api/v1/status returns.
type Overview struct {
	Demo            bool                    `json:"demo"`
	NationalURL     string                  `json:"national_url"`
	TaxonomyVersion int                     `json:"taxonomy_version"`
	HeldReason      string                  `json:"held_reason,omitempty"`
	Ready           Readiness               `json:"readiness"`
	Forwarder       forwarder.Status        `json:"forwarder"`
	States          map[forwarder.State]int `json:"states"`
	OutboxDepth     uint64                  `json:"outbox_depth"`
	RawRecords      uint64                  `json:"raw_records"`
	Adapters        []ingest.Status         `json:"adapters"`
	Uptime          string                  `json:"uptime"`
	GeneratedAt     time.Time               `json:"generated_at"`
}

// Overview computes the overview. It reads the whole ledger, which is fine for the volumes of
// one trust; the metrics keep running counts for scraping.
func (s *Server) Overview(ctx context.Context) Overview {
	o := Overview{Demo: s.Demo, NationalURL: s.NationalURL, TaxonomyVersion: s.TaxonomyVersion,
		HeldReason: s.HeldReason, Ready: s.Ready(ctx), States: map[forwarder.State]int{},
		Uptime: time.Since(s.Started).Round(time.Second).String(), GeneratedAt: time.Now().UTC()}
	if s.Forwarder != nil {
		o.Forwarder = s.Forwarder.Status()
	}
	_ = s.Ledger.List(ctx, func(_ string, e *forwarder.Entry) bool {
		o.States[e.State]++
		return true
	})
	if si, err := s.Queue.StreamInfo(ctx, queue.OutboxStream); err == nil {
		o.OutboxDepth = si.State.Msgs
	}
	if si, err := s.Queue.StreamInfo(ctx, queue.RawStream); err == nil {
		o.RawRecords = si.State.Msgs
	}
	for _, a := range s.Adapters {
		o.Adapters = append(o.Adapters, a.Status())
	}
	return o
}

func (s *Server) statusJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Overview(r.Context()))
}

//go:embed web
var webFS embed.FS

var pageTmpl = template.Must(template.ParseFS(webFS, "web/overview.html"))

// stateOrder is how states are listed: the ones that need an operator first.
var stateOrder = []forwarder.State{
	forwarder.StateUnknown, forwarder.StateFailed, forwarder.StateRejected, forwarder.StateQuarantined,
	forwarder.StateHeld, forwarder.StateRetrying, forwarder.StateDelivering, forwarder.StateQueued,
	forwarder.StateReceived, forwarder.StateDelivered,
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	o := s.Overview(r.Context())
	type row struct {
		State forwarder.State
		Count int
	}
	var rows []row
	for _, st := range stateOrder {
		rows = append(rows, row{st, o.States[st]})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
	_ = pageTmpl.Execute(w, map[string]any{"O": o, "Rows": rows})
}
