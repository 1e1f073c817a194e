package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
)

// Replayer re-maps and re-queues an incident from its stored raw record (the mapper stage,
// wired by the gateway). Both return ledger.ErrNoRawRecord once the raw record is no longer
// kept.
type Replayer interface {
	// Resend replays an incident whose POST had an unknown outcome: it is sent again and
	// flagged as a possible duplicate. Replay refuses such an incident.
	Resend(ctx context.Context, ledgerKey, actor string) (*ledger.Entry, error)
	Replay(ctx context.Context, ledgerKey, actor string) (*ledger.Entry, error)
}

// actionRoutes mounts the operator actions. Access control (operator role) is applied by the
// auth middleware around the mux.
func (s *Server) actionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/incidents/{source}/{local_id...}", s.incidentAction)
	mux.HandleFunc("POST /api/v1/replay", s.bulkReplay)
	mux.HandleFunc("POST /api/v1/resolve", s.bulkResolve)
	mux.HandleFunc("POST /api/v1/adapters/{name}/skip", s.adapterSkip)
}

// adapterSkip serves POST /api/v1/adapters/{name}/skip {"past": [V1, ...]}: it moves a
// cursor adapter's cursor past a source row that cannot be read at all (docs/api.md).
func (s *Server) adapterSkip(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Past []string `json:"past"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || len(req.Past) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `the body must be {"past": [value, ...]}, one value per cursor column`})
		return
	}
	for _, run := range s.Adapters {
		if run.Status().Name != name {
			continue
		}
		sk, ok := run.Adapter().(ingest.CursorSkipper)
		if !ok {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "adapter " + name + " has no cursor to move"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		previous, err := sk.SkipPast(ctx, req.Past)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.Log.Warn().Str("adapter", name).Str("actor", Actor(r.Context())).Str("from", previous).Msg("adapter cursor moved by an operator")
		writeJSON(w, http.StatusOK, map[string]any{"adapter": name, "previous": previous, "past": req.Past})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no adapter " + name})
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
	key := ledger.Key(source, ingest.IncidentKey(source, localID))
	actor := Actor(r.Context())
	var (
		e   *ledger.Entry
		err error
	)
	switch action {
	case "replay":
		var cur *ledger.Entry
		if cur, err = s.Ledger.Get(r.Context(), key); err == nil {
			if code, why := cur.ReplayRefusal(); code != "" {
				writeJSON(w, http.StatusConflict, ActionError{Error: source + "/" + localID + " " + why + ". " + refusalAdvice[code],
					Code: code, Reason: why, State: cur.State})
				return
			}
			e, err = s.Replayer.Replay(r.Context(), key, actor)
		}
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
			var cur *ledger.Entry
			if cur, err = s.Ledger.Get(r.Context(), key); err == nil {
				if err = cur.CheckResend(); err == nil {
					e, err = s.Replayer.Resend(r.Context(), key, actor)
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
	case errors.Is(err, ledger.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such incident in the ledger"})
	case errors.Is(err, ledger.ErrAwaitingResolution):
		// The ledger write refused it: the send turned unknown after the check above.
		writeJSON(w, http.StatusConflict, ActionError{Error: "the incident " + ledger.AwaitingReason + ". " + refusalAdvice[CodeNeedsResolve],
			Code: CodeNeedsResolve, Reason: ledger.AwaitingReason, State: ledger.StateUnknown})
	case errors.Is(err, ledger.ErrNotResolvable):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case errors.Is(err, ledger.ErrNoRawRecord):
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

// Codes of a refused replay, in ActionError.Code and BulkSkip.Code: the ledger's refusals
// (ledger.Entry.ReplayRefusal).
const (
	// CodeNeedsResolve: a POST of the incident had an unknown outcome; only resolve may act.
	CodeNeedsResolve = ledger.RefusalNeedsResolve
	// CodePostInFlight: a POST of the incident is being sent right now.
	CodePostInFlight = ledger.RefusalPostInFlight
)

// refusalAdvice tells the operator what to do instead of a refused replay.
var refusalAdvice = map[string]string{
	CodeNeedsResolve: "Find out whether LFPSE holds it, then resolve it instead of replaying: " +
		"as delivered with the national id LFPSE shows (POST …/resolve {\"action\":\"delivered\",\"national_id\":\"…\"}; " +
		"psgw resolve SOURCE LOCAL_ID --delivered --national-id ID), or, if LFPSE does not hold it, " +
		"resend it, which flags it as a possible duplicate ({\"action\":\"resend\"}; psgw resolve SOURCE LOCAL_ID --resend)",
	CodePostInFlight: "Wait for the outcome of that send, then look at the incident again",
}

// ActionError is the body of a refused action.
type ActionError struct {
	Error string `json:"error"`
	// Code, when set, names the refusal for programs: CodeNeedsResolve or CodePostInFlight.
	Code string `json:"code,omitempty"`
	// Reason is the refusal's reason alone, without the advice that Error adds.
	Reason string       `json:"reason,omitempty"`
	State  ledger.State `json:"state,omitempty"`
}

// BulkFilter selects incidents for a bulk action by source and last change (updated_at, as
// the search does); every field is optional.
type BulkFilter struct {
	Source string    `json:"source"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Limit caps the incidents matched: 1 to 100,000, which is also the default.
	Limit  int  `json:"limit"`
	DryRun bool `json:"dry_run"`
}

func (f BulkFilter) matches(e *ledger.Entry) bool {
	return (f.Source == "" || e.Source == f.Source) &&
		(f.From.IsZero() || !e.UpdatedAt.Before(f.From)) && (f.To.IsZero() || e.UpdatedAt.Before(f.To))
}

func (f BulkFilter) limit() int {
	if f.Limit <= 0 || f.Limit > 100000 {
		return 100000
	}
	return f.Limit
}

// BulkReplayRequest selects incidents to replay; every filter is optional.
type BulkReplayRequest struct {
	State ledger.State `json:"state"`
	BulkFilter
}

// BulkReplayResult says what a bulk replay did. Outside a dry run, Matched is Replayed plus
// Skipped plus the incidents that failed (the first 100 of them in Errors).
type BulkReplayResult struct {
	Matched  int `json:"matched"`
	Replayed int `json:"replayed"`
	// Skipped counts matched incidents that were not replayed because a replay could POST
	// them a second time (unknown ones, even when the filter asks for state unknown): resolve
	// each of those instead.
	Skipped int `json:"skipped"`
	// SkippedItems lists the first 100 skipped incidents, each with its reason.
	SkippedItems []BulkSkip `json:"skipped_items,omitempty"`
	Errors       []string   `json:"errors,omitempty"`
}

// BulkSkip is one incident a bulk replay left alone, and why.
type BulkSkip struct {
	BulkItem
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

const maxListed = 100

func (s *Server) bulkReplay(w http.ResponseWriter, r *http.Request) {
	var req BulkReplayRequest
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON with optional state, source, from, to, limit, dry_run: " + err.Error()})
			return
		}
	}
	var res BulkReplayResult
	skip := func(e *ledger.Entry) bool {
		code, why := e.ReplayRefusal()
		if code == "" {
			return false
		}
		res.Skipped++
		if len(res.SkippedItems) < maxListed {
			res.SkippedItems = append(res.SkippedItems, BulkSkip{BulkItem: BulkItem{Source: e.Source, LocalID: e.LocalID, State: e.State},
				Code: code, Reason: why + "; resolve it instead"})
		}
		return true
	}
	var keys []string
	err := s.Ledger.List(r.Context(), func(key string, e *ledger.Entry) bool {
		if (req.State == "" || e.State == req.State) && req.matches(e) {
			res.Matched++
			if !skip(e) {
				keys = append(keys, key)
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
			// Read again: a send may have ended unknown since the list was read.
			e, err := s.Ledger.Get(r.Context(), k)
			if err == nil && skip(e) {
				continue
			}
			if err == nil {
				_, err = s.Replayer.Replay(r.Context(), k, actor)
				if errors.Is(err, ledger.ErrAwaitingResolution) {
					// Its send turned unknown between the read and the replay's ledger write.
					e.State = ledger.StateUnknown
					skip(e)
					continue
				}
			}
			if err != nil {
				if len(res.Errors) < maxListed {
					res.Errors = append(res.Errors, k+": "+err.Error())
				}
				continue
			}
			res.Replayed++
		}
	}
	writeJSON(w, http.StatusOK, res)
}
