package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/psgw/psgw/forwarder"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/mapper"
)

// Replayer re-maps and re-queues an incident from its stored raw record.
type Replayer interface {
	Replay(ctx context.Context, ledgerKey, actor string) (*forwarder.Entry, error)
}

var _ Replayer = (*mapper.Mapper)(nil)

// actionRoutes mounts the operator actions. Access control (operator role) is applied by the
// auth middleware around the mux.
func (s *Server) actionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/incidents/{source}/{local_id...}", s.incidentAction)
	mux.HandleFunc("POST /api/v1/replay", s.bulkReplay)
}

// incidentAction serves POST …/{source}/{local_id}/{replay|resolve|review}. The action is
// the last path segment because local ids may themselves contain slashes.
func (s *Server) incidentAction(w http.ResponseWriter, r *http.Request) {
	source, rest := r.PathValue("source"), r.PathValue("local_id")
	localID, action := splitAction(rest)
	if localID == "" || action == "" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action: use …/replay, …/resolve or …/review"})
		return
	}
	key := forwarder.LedgerKey(source, ingest.IncidentKey(source, localID))
	actor := Actor(r.Context())
	var (
		e   *forwarder.Entry
		err error
	)
	switch action {
	case "replay":
		e, err = s.Replayer.Replay(r.Context(), key, actor)
	case "review":
		e, err = s.Ledger.MarkReviewed(r.Context(), key, actor)
	case "resolve":
		var req struct {
			Action            string `json:"action"`
			NationalID        string `json:"national_id"`
			NationalReference string `json:"national_reference"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON: {\"action\":\"delivered\",\"national_id\":\"…\"} or {\"action\":\"resend\"}"})
			return
		}
		switch req.Action {
		case "delivered":
			var stale bool
			e, stale, err = s.Ledger.ResolveDelivered(r.Context(), key, req.NationalID, req.NationalReference, actor)
			if err == nil && stale {
				// A newer revision was mapped while the send was unknown: send it as a PUT.
				e, err = s.Replayer.Replay(r.Context(), key, actor)
			}
		case "resend":
			var cur *forwarder.Entry
			if cur, err = s.Ledger.Get(r.Context(), key); err == nil {
				if cur.State != forwarder.StateUnknown && cur.State != forwarder.StateFailed {
					err = fmt.Errorf("%w: it is %s; resend applies to unknown or failed incidents (use replay otherwise)", forwarder.ErrNotResolvable, cur.State)
				} else {
					e, err = s.Replayer.Replay(r.Context(), key, actor)
				}
			}
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "action must be delivered (with national_id) or resend"})
			return
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action " + action + ": use replay, resolve or review"})
		return
	}
	if err != nil {
		writeActionError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RecordOf(e))
}

func writeActionError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, forwarder.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such incident in the ledger"})
	case errors.Is(err, forwarder.ErrNotResolvable):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case errors.Is(err, mapper.ErrNoRawRecord):
		writeJSON(w, http.StatusGone, map[string]string{"error": "the raw record is no longer kept (older than queue.raw_max_age); ask the source to send it again"})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

func splitAction(rest string) (localID, action string) {
	for i := len(rest) - 1; i >= 0; i-- {
		if rest[i] == '/' {
			return rest[:i], rest[i+1:]
		}
	}
	return "", ""
}

// BulkReplayRequest selects incidents to replay; every filter is optional.
type BulkReplayRequest struct {
	State  forwarder.State `json:"state"`
	Source string          `json:"source"`
	From   time.Time       `json:"from"`
	To     time.Time       `json:"to"`
	Limit  int             `json:"limit"`
	DryRun bool            `json:"dry_run"`
}

// BulkReplayResult says what a bulk replay did.
type BulkReplayResult struct {
	Matched  int      `json:"matched"`
	Replayed int      `json:"replayed"`
	Errors   []string `json:"errors,omitempty"`
}

func (s *Server) bulkReplay(w http.ResponseWriter, r *http.Request) {
	var req BulkReplayRequest
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON with optional state, source, from, to, limit, dry_run: " + err.Error()})
			return
		}
	}
	if req.Limit <= 0 || req.Limit > 100000 {
		req.Limit = 100000
	}
	var keys []string
	err := s.Ledger.List(r.Context(), func(key string, e *forwarder.Entry) bool {
		if (req.State == "" || e.State == req.State) && (req.Source == "" || e.Source == req.Source) &&
			(req.From.IsZero() || !e.UpdatedAt.Before(req.From)) && (req.To.IsZero() || e.UpdatedAt.Before(req.To)) {
			keys = append(keys, key)
		}
		return len(keys) < req.Limit
	})
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	res := BulkReplayResult{Matched: len(keys)}
	if !req.DryRun {
		actor := Actor(r.Context())
		for _, k := range keys {
			if _, err := s.Replayer.Replay(r.Context(), k, actor); err != nil {
				if len(res.Errors) < 100 {
					res.Errors = append(res.Errors, k+": "+err.Error())
				}
				continue
			}
			res.Replayed++
		}
	}
	writeJSON(w, http.StatusOK, res)
}
