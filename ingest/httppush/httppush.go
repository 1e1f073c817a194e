// Package httppush is the ingest adapter for incident systems that push: POST
// /api/v1/incidents with one JSON incident (CONTRACT §2). It answers 202 only after the
// incident is durably stored, and 503 with Retry-After when it cannot be.
package httppush

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// Kind is this adapter's registered kind.
const Kind = "httppush"

// Config is the adapter's settings.
type Config struct {
	// MaxBodyBytes caps a request body (413 above it).
	MaxBodyBytes int64
	// Tokens, when not empty, are the accepted bearer tokens.
	Tokens []string
	// RetryAfter is the hint given with 503.
	RetryAfter time.Duration
	// PublishTimeout bounds the wait for durable storage.
	PublishTimeout time.Duration
}

// Adapter serves the push API on the gateway's HTTP server.
type Adapter struct {
	cfg  Config
	deps ingest.Deps
	log  zerolog.Logger
}

var _ ingest.HTTPAdapter = (*Adapter)(nil)

func init() { ingest.Register(Kind, Factory) }

// Factory builds the adapter from deps.Settings (a Config; nil for defaults). It does no I/O.
func Factory(deps ingest.Deps) (ingest.Adapter, error) {
	cfg, err := ingest.SettingsAs[Config](Kind, deps)
	if err != nil {
		return nil, err
	}
	return New(cfg, deps), nil
}

// New builds the adapter. It does no I/O.
func New(cfg Config, deps ingest.Deps) *Adapter {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Adapter{cfg: cfg, deps: deps, log: deps.Logger}
}

// Run has nothing to open: requests arrive through Routes. It waits for ctx.
func (a *Adapter) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Routes mounts POST /api/v1/incidents.
func (a *Adapter) Routes(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/incidents", a.serve)
}

// Accepted is the 202 body.
type Accepted struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error    string         `json:"error"`
	Problems []fhir.Problem `json:"problems,omitempty"`
}

func (a *Adapter) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: "method not allowed: use POST"})
		return
	}
	if len(a.cfg.Tokens) > 0 && !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="psgw"`)
		writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: "missing or invalid bearer token"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, ErrorBody{Error: "Content-Type must be application/json"})
		return
	}
	if r.ContentLength > a.cfg.MaxBodyBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: "body is larger than the limit of " + strconv.FormatInt(a.cfg.MaxBodyBytes, 10) + " bytes"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: "body is larger than the limit of " + strconv.FormatInt(a.cfg.MaxBodyBytes, 10) + " bytes"})
			return
		}
		writeJSON(w, http.StatusBadRequest, ErrorBody{Error: "could not read the request body"})
		return
	}
	in, problems := fhir.ParseIncident(body, fhir.ParseOptions{Now: a.deps.Now(), Sources: a.deps.Sources})
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, ErrorBody{Error: "invalid incident", Problems: problems})
		return
	}
	key := ingest.IncidentKey(in.Source, in.LocalID)
	// The content hash names a record only when it has no revision; with one, canonicalising
	// the body (a decode and an encode) would be wasted work on every request.
	hash := ""
	if in.RevisionOr(0) <= 0 {
		hash = contentHash(body)
	}
	rec := ingest.Record{
		Kind:       ingest.KindIncident,
		Source:     in.Source,
		LocalID:    in.LocalID,
		Key:        key,
		ID:         ingest.IncidentRecordID(in.Source, key, in.RevisionOr(0), hash),
		Revision:   in.RevisionOr(0),
		Data:       body,
		ReceivedAt: a.deps.Now().UTC(),
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PublishTimeout)
	defer cancel()
	res, err := a.deps.Publisher.Publish(ctx, rec)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away; it was told nothing, so it will resend
		}
		a.log.Warn().Err(err).Str("source", in.Source).Str("record", rec.ID).Msg("incident not stored; answered 503")
		w.Header().Set("Retry-After", strconv.Itoa(int((a.cfg.RetryAfter+time.Second-1)/time.Second)))
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: "the gateway cannot store the incident durably right now; retry later"})
		return
	}
	writeJSON(w, http.StatusAccepted, Accepted{ID: rec.ID, Status: "accepted", Duplicate: res.Duplicate})
}

func (a *Adapter) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimSpace(token)
	ok = false
	for _, t := range a.cfg.Tokens {
		// Compare against every token so that timing says nothing about which one matched.
		if subtle.ConstantTimeCompare([]byte(token), []byte(t)) == 1 {
			ok = true
		}
	}
	return ok
}

// contentHash hashes the incident's canonical JSON (keys sorted, no white space), so that the
// same incident re-sent with different formatting is still recognised as the same.
func contentHash(body []byte) string {
	var v any
	canon := body
	if err := json.Unmarshal(body, &v); err == nil {
		if b, err := json.Marshal(v); err == nil {
			canon = b
		}
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:12])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
