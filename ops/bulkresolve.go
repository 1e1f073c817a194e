package ops

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/psgw/psgw/ledger"
)

// BulkResolveRequest selects unknown incidents to resolve at once, as a bulk replay selects
// (by source and last change); only unknown incidents are ever selected. The one action is "resend": the operator has found that LFPSE holds none of
// them (resolving as delivered needs each incident's own national id).
type BulkResolveRequest struct {
	Action string `json:"action"`
	BulkFilter
}

// BulkResolveResult says what a bulk resolve did: Matched is Resolved plus the failures
// (the first 100 of them in Errors), outside a dry run.
type BulkResolveResult struct {
	Matched  int `json:"matched"`
	Resolved int `json:"resolved"`
	// Items lists the first 100 matched incidents.
	Items  []BulkItem `json:"items,omitempty"`
	Errors []string   `json:"errors,omitempty"`
}

// BulkItem is one incident a bulk action selected.
type BulkItem struct {
	Source  string       `json:"source"`
	LocalID string       `json:"local_id"`
	State   ledger.State `json:"state"`
}

// bulkResolve serves POST /api/v1/resolve: every unknown incident the filter selects is sent
// again, each flagged possible_duplicate, exactly as the single resolve action's resend.
func (s *Server) bulkResolve(w http.ResponseWriter, r *http.Request) {
	var req BulkResolveRequest
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be JSON: {"action":"resend"} with optional source, from, to, limit, dry_run: ` + err.Error()})
		return
	}
	if req.Action != "resend" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `action must be "resend": a bulk resolve sends again every unknown incident it selects; ` +
			`resolve one that LFPSE holds as delivered on its own, with its national id`})
		return
	}
	var res BulkResolveResult
	var keys []string
	err := s.Ledger.List(r.Context(), func(key string, e *ledger.Entry) bool {
		if e.State == ledger.StateUnknown && req.matches(e) {
			res.Matched++
			keys = append(keys, key)
			if len(res.Items) < maxListed {
				res.Items = append(res.Items, BulkItem{Source: e.Source, LocalID: e.LocalID, State: e.State})
			}
		}
		return res.Matched < req.limit()
	})
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	if !req.DryRun {
		actor := Actor(r.Context())
		for _, k := range keys {
			e, err := s.Ledger.Get(r.Context(), k)
			if err == nil {
				err = e.CheckResend()
			}
			if err == nil {
				_, err = s.Replayer.Resend(r.Context(), k, actor)
			}
			if err != nil {
				if errors.Is(err, ledger.ErrNoRawRecord) {
					err = errors.New("the raw record is no longer kept (older than queue.raw_max_age); ask the source to send it again")
				}
				if len(res.Errors) < maxListed {
					res.Errors = append(res.Errors, k+": "+err.Error())
				}
				continue
			}
			res.Resolved++
		}
	}
	writeJSON(w, http.StatusOK, res)
}
