package ops

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/patients"
	"github.com/psgw/psgw/queue"
)

// Overview is the gateway's state at a glance: what the status page's overview shows and
// GET /api/v1/status returns.
type Overview struct {
	Demo            bool      `json:"demo"`
	NationalURL     string    `json:"national_url"`
	TaxonomyVersion int       `json:"taxonomy_version"`
	HeldReason      string    `json:"held_reason,omitempty"`
	Ready           Readiness `json:"readiness"`
	// Endpoint is the national service's health as the forwarder sees it.
	Endpoint  Endpoint        `json:"endpoint"`
	Forwarder ForwarderStatus `json:"forwarder"`
	// States counts incidents per delivery state; every state is present.
	States map[ledger.State]int `json:"states"`
	// NeedsReview counts incidents in unknown, failed, rejected and quarantined that no
	// operator has marked reviewed.
	NeedsReview map[ledger.State]int `json:"needs_review"`
	Total       int                  `json:"total"`
	// Counting is true while the ledger index is still being loaded at start-up; the counts
	// are then incomplete.
	Counting    bool   `json:"counting,omitempty"`
	OutboxDepth uint64 `json:"outbox_depth"`
	// OldestUndelivered is when the oldest message still in the outbox was queued; zero when
	// the outbox is empty.
	OldestUndelivered    time.Time       `json:"oldest_undelivered,omitzero"`
	OldestUndeliveredAge float64         `json:"oldest_undelivered_age_seconds"`
	Rate                 DeliveryRate    `json:"delivery_rate"`
	RawRecords           uint64          `json:"raw_records"`
	Adapters             []ingest.Status `json:"adapters"`
	// Sources are the source systems with incidents in the ledger, by name, each with how
	// many of its incidents were mapped with warnings and with fallbacks.
	Sources []SourceStatus `json:"sources"`
	// Stages are the pipeline stages the gateway keeps running (mapper, forwarder, patients).
	Stages []StageStatus `json:"stages"`
	// Demographics is the EPR's demographics store: what it applied, skipped and how
	// enrichment went. Absent without an MLLP listener.
	Demographics *patients.Status `json:"demographics,omitempty"`
	Version      string           `json:"version,omitempty"`
	// Replica is the name of the gateway answering, where several share one cluster.
	Replica     string    `json:"replica,omitempty"`
	Uptime      string    `json:"uptime"`
	GeneratedAt time.Time `json:"generated_at"`
	// Problems lists parts of the overview that could not be read (e.g. the queue).
	Problems []string `json:"problems,omitempty"`
}

// SourceStatus is one source system's incidents in the ledger, at their newest mapping: how
// many there are, how many carried warnings (fields not used, values left out), and how
// many fell back on a guess ("Other" answers, organisations outside the ODS list, local
// values taken as LFPSE codes), which an operator should map (docs/mapping.md).
type SourceStatus struct {
	Source string `json:"source"`
	ledger.SourceCounts
}

// ForwarderStatus is the delivery stage's state as the forwarder reports it: its fields are
// those of forwarder.Status, which the gateway converts to this type (so that a field added
// there and not here fails to compile rather than vanish from the page).
type ForwarderStatus struct {
	Enabled bool `json:"enabled"`
	Running bool `json:"running"`
	// Paused: the national service refused the subscription key. Readiness does not fail:
	// ingest still stores.
	Paused      bool   `json:"paused"`
	PauseReason string `json:"pause_reason,omitempty"`
	// Outage: the national service is not answering; delivery waits and probes it.
	Outage       bool      `json:"outage"`
	OutageReason string    `json:"outage_reason,omitempty"`
	OutageSince  time.Time `json:"outage_since,omitzero"`
	Delivered    uint64    `json:"delivered"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
}

// Endpoint is the national endpoint's health.
type Endpoint struct {
	// Status is one of: healthy, waiting (nothing delivered yet), degraded (incidents are
	// retrying), paused (the national service refused the subscription key), down (it is
	// not answering: delivery waits and probes it), held (no endpoint configured), stopped.
	Status string `json:"status"`
	// Summary is a short phrase for people, e.g. "paused: auth failure".
	Summary     string    `json:"summary"`
	Detail      string    `json:"detail,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// DeliveryRate is how fast incidents reach the national service, from the delivered_at of
// ledger entries (so it survives a restart).
type DeliveryRate struct {
	Last5Min  int     `json:"last_5m"`
	LastHour  int     `json:"last_hour"`
	PerMinute float64 `json:"per_minute_5m"`
	// Minutes holds deliveries per minute over the last hour, oldest first.
	Minutes []int `json:"minutes"`
}

// Overview computes the overview from the ledger index, the queue and the parts' Status.
func (s *Server) Overview(ctx context.Context) Overview {
	now := time.Now().UTC()
	rd, storeDown := s.ready(ctx)
	o := Overview{Sources: []SourceStatus{}, Demo: s.Demo, NationalURL: s.NationalURL, TaxonomyVersion: s.TaxonomyVersion,
		HeldReason: s.HeldReason, Ready: rd, States: map[ledger.State]int{},
		NeedsReview: map[ledger.State]int{}, Version: s.Version, Replica: s.Replica,
		Uptime: time.Since(s.Started).Round(time.Second).String(), GeneratedAt: now}
	if s.Forwarder != nil {
		o.Forwarder = s.Forwarder.Status()
	}
	for _, st := range ledger.States() {
		o.States[st] = 0
	}
	for _, st := range ledger.AttentionStates() {
		o.NeedsReview[st] = 0
	}
	if cause := s.waiting(); cause != "" || s.Ledger == nil {
		return s.waitingOverview(o, cause)
	}
	// A restarting stage does not fail readiness (ingest still stores) but nothing behind it
	// moves, so the page says so in red.
	o.Problems = append(o.Problems, rd.Degraded...)
	c, err := s.Ledger.Counts(ctx)
	if err == nil {
		o.Counting = c.Loading
		for st, n := range c.States {
			o.States[st] = n
			o.Total += n
		}
		for st, n := range c.NeedsReview {
			o.NeedsReview[st] = n
		}
		for name, sc := range c.Sources {
			o.Sources = append(o.Sources, SourceStatus{Source: name, SourceCounts: sc})
		}
		slices.SortFunc(o.Sources, func(a, b SourceStatus) int { return strings.Compare(a.Source, b.Source) })
		o.Rate.Minutes = c.PerMinute
	} else {
		o.Problems = append(o.Problems, "ledger: "+err.Error())
		o.Rate.Minutes = make([]int, ledger.RateWindow)
	}
	for i, n := range o.Rate.Minutes {
		o.Rate.LastHour += n
		if i >= ledger.RateWindow-5 {
			o.Rate.Last5Min += n
		}
	}
	o.Rate.PerMinute = float64(o.Rate.Last5Min) / 5
	if storeDown {
		// The counts above are the ledger index's, kept in memory; the streams' figures
		// would each wait out a request's timeout, and the page must render now with the
		// cause (docs/cluster.md, "What each failure costs").
		o.Problems = append(o.Problems, "outbox: not read while the store is unavailable (see readiness)")
	} else if si, err := s.Queue.StreamInfo(ctx, queue.OutboxStream); err == nil {
		o.OutboxDepth = si.State.Msgs
		if si.State.Msgs > 0 && !si.State.FirstTime.IsZero() {
			o.OldestUndelivered = si.State.FirstTime.UTC()
			o.OldestUndeliveredAge = max(0, now.Sub(si.State.FirstTime).Seconds())
		}
	} else {
		o.Problems = append(o.Problems, "outbox: "+err.Error())
	}
	if !storeDown {
		if si, err := s.Queue.StreamInfo(ctx, queue.RawStream); err == nil {
			o.RawRecords = si.State.Msgs
		}
	}
	for _, a := range s.Adapters {
		o.Adapters = append(o.Adapters, a.Status())
	}
	o.Stages = []StageStatus{}
	if s.Stages != nil {
		o.Stages = s.Stages.Stages()
	}
	if s.Demographics != nil {
		d := s.Demographics.Status()
		o.Demographics = &d
	}
	o.Endpoint = endpointOf(o)
	return o
}

func endpointOf(o Overview) Endpoint {
	f := o.Forwarder
	e := Endpoint{LastSuccess: f.LastSuccess}
	switch {
	case !f.Enabled:
		e.Status, e.Summary, e.Detail = "held", "held: no national endpoint", o.HeldReason
	case f.Paused:
		e.Status, e.Summary, e.Detail = "paused", "paused: auth failure", f.PauseReason
	case f.Outage:
		e.Status, e.Summary, e.Detail = "down", "down: delivery waits for the national service", f.OutageReason+" (since "+f.OutageSince.Format(time.RFC3339)+")"
	case !f.Running:
		e.Status, e.Summary = "stopped", "stopped"
	case o.States[ledger.StateRetrying] > 0:
		e.Status, e.Summary = "degraded", "degraded: incidents retrying"
	case f.LastSuccess.IsZero():
		e.Status, e.Summary = "waiting", "reachable: nothing delivered yet"
	default:
		e.Status, e.Summary = "healthy", "healthy"
	}
	return e
}

func (s *Server) statusJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Overview(r.Context()))
}

func (s *Server) adaptersJSON(w http.ResponseWriter, r *http.Request) {
	out := []ingest.Status{}
	for _, a := range s.Adapters {
		out = append(out, a.Status())
	}
	writeJSON(w, http.StatusOK, out)
}
