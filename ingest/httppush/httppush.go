// Package httppush is the ingest adapter for incident systems that push: POST
// /api/v1/incidents with one JSON incident (README, "Send an incident"; the incident's fields
// in docs/incident.schema.json). It answers 202 only after the incident is durably stored, and
// 503 with Retry-After when it cannot be. It is served on the gateway's own HTTP listener, so
// its settings share the http section with the listener's.
package httppush

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// Reasons counted with ingest.Deps.CountRejected, and so in psgw_ingest_errors_total, one for
// every refusal the API answers. A 503 for a publish that failed is counted by the runner
// (unavailable, or publish); the adapter counts only the 503 it answers while stopped.
const (
	ReasonInvalid      = "invalid"      // 400: malformed JSON or breaking the ingest rules
	ReasonBodyRead     = "body_read"    // 400: the body could not be read (the client broke off)
	ReasonUnauthorized = "unauthorized" // 401: missing or wrong bearer token
	ReasonMethod       = "method"       // 405: not a POST
	ReasonTooLarge     = "too_large"    // 413: body over MaxBodyBytes
	ReasonContentType  = "content_type" // 415: not application/json
	ReasonWarnings     = "warnings"     // 400: warnings refused (Config.UnknownFields is UnknownFieldsReject)
	ReasonForbidden    = "forbidden"    // 403: a token bound to sources posted for another
	ReasonUnavailable  = ingest.ReasonUnavailable
)

// Adapter serves the push API on the gateway's HTTP server. Its handler may be called before
// Run starts (it then works on what the Factory set up). Once a Run's context is cancelled,
// publishes in flight are abandoned and answered 503, Run returns only after they returned,
// and every request is answered 503 until Run is called again.
type Adapter struct {
	cfg  Config
	deps ingest.Deps
	log  zerolog.Logger

	// tokens are the accepted bearer tokens: cfg.Tokens at start, then those of each reload
	// (ReloadSecrets). Empty means no ingest auth, and a reload never makes it empty.
	tokens atomic.Pointer[[]IngestToken]

	mu       sync.Mutex
	runCtx   context.Context // the current or last Run's context; nil before the first Run
	inFlight sync.WaitGroup  // publishes under way; Add only with mu held and Run not stopped
}

var (
	_ ingest.HTTPAdapter     = (*Adapter)(nil)
	_ ingest.SecretsReloader = (*Adapter)(nil)
)

func init() {
	ingest.Register(ingest.Module{
		Kind:    Kind,
		Section: Section,
		New:     ingest.NewSettings(Defaults),
		Factory: Factory,
	})
}

// Factory builds the adapter from deps.Settings (a Config or *Config; nil for defaults). It
// does no I/O. Without a publish timeout of its own it takes the gateway's
// (queue.publish_timeout, deps.Shared).
func Factory(deps ingest.Deps) (ingest.Adapter, error) {
	cfg, err := ingest.SettingsAs[Config](Kind, deps)
	if err != nil {
		return nil, err
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = deps.Shared.PublishTimeout
	}
	cfg = cfg.withDefaults()
	cfg.MaxBodyBytes = ingest.FitRecordLimit(deps, Section+".max_body_bytes", cfg.MaxBodyBytes)
	if cfg.MapWarnings == nil {
		cfg.MapWarnings = deps.MapWarnings // the gateway's mapping: the 202 names its fallbacks too
	}
	return New(cfg, deps), nil
}

// New builds the adapter. It does no I/O.
func New(cfg Config, deps ingest.Deps) *Adapter {
	cfg = cfg.withDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	a := &Adapter{cfg: cfg, deps: deps, log: deps.Logger}
	tokens := slices.Clone(cfg.Tokens)
	a.tokens.Store(&tokens)
	return a
}

// ReloadSecrets takes the ingest tokens of settings whose token files were read afresh
// (ingest.SecretsReloader): a request after it returns is checked against them, each bound to
// the sources its entry names. Everything else in settings is ignored: only the files are
// re-read. Settings with no token at all, while tokens are required now, are refused (and
// the running tokens kept): a token file emptied by mistake must not turn ingest auth off.
func (a *Adapter) ReloadSecrets(s ingest.Settings) error {
	var cfg Config
	switch c := s.(type) {
	case *Config:
		cfg = *c
	case Config:
		cfg = c
	default:
		return fmt.Errorf("%s: settings of type %T are not this adapter's", Section, s)
	}
	if len(cfg.Tokens) == 0 && len(*a.tokens.Load()) > 0 {
		return errors.New(Section + ".ingest_tokens: the token files give no token, which would turn ingest auth off; the running tokens are kept")
	}
	tokens := slices.Clone(cfg.Tokens)
	a.tokens.Store(&tokens)
	return nil
}

// Run has nothing to open: requests arrive through Routes. It waits for ctx; when ctx is
// cancelled, every publish in flight is abandoned without a 202, and Run returns once they
// all returned.
func (a *Adapter) Run(ctx context.Context) error {
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	<-ctx.Done()
	// From here on no handler starts a publish (begin sees ctx cancelled), so waiting for the
	// ones under way is enough. Taking mu orders a begin that was just registering one before
	// the Wait.
	a.mu.Lock()
	a.mu.Unlock() //nolint:staticcheck // an empty critical section on purpose, see above
	a.inFlight.Wait()
	return nil
}

// begin registers a publish about to start and returns the context that ends with the current
// Run (context.Background before the first Run). It returns ok false, registering nothing,
// once a Run was stopped. Call end when the publish returned.
func (a *Adapter) begin() (run context.Context, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	run = a.runCtx
	if run == nil {
		run = context.Background()
	}
	if run.Err() != nil {
		return run, false
	}
	a.inFlight.Add(1)
	return run, true
}

func (a *Adapter) end() { a.inFlight.Done() }

// refuse counts a refusal by reason and answers it.
func (a *Adapter) refuse(w http.ResponseWriter, status int, reason string, body ErrorBody) {
	a.deps.CountRejected(reason)
	writeJSON(w, status, body)
}

// Routes mounts POST /api/v1/incidents.
func (a *Adapter) Routes(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/incidents", a.serve)
}

// Accepted is the 202 body. Warnings name what the gateway did not use or fell back on
// (docs/api.md, "Ingest"); nothing the source sent is dropped without one.
type Accepted struct {
	ID        string         `json:"id"`
	Status    string         `json:"status"`
	Duplicate bool           `json:"duplicate"`
	Warnings  []fhir.Warning `json:"warnings,omitempty"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error    string         `json:"error"`
	Problems []fhir.Problem `json:"problems,omitempty"`
}

func (a *Adapter) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.refuse(w, http.StatusMethodNotAllowed, ReasonMethod, ErrorBody{Error: "method not allowed: use POST"})
		return
	}
	token, ok := a.authorized(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="psgw"`)
		a.refuse(w, http.StatusUnauthorized, ReasonUnauthorized, ErrorBody{Error: "missing or invalid bearer token"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		a.refuse(w, http.StatusUnsupportedMediaType, ReasonContentType, ErrorBody{Error: "Content-Type must be application/json"})
		return
	}
	tooLarge := ErrorBody{Error: "body is larger than the limit of " + strconv.FormatInt(a.cfg.MaxBodyBytes, 10) + " bytes"}
	if r.ContentLength > a.cfg.MaxBodyBytes {
		a.refuse(w, http.StatusRequestEntityTooLarge, ReasonTooLarge, tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.refuse(w, http.StatusRequestEntityTooLarge, ReasonTooLarge, tooLarge)
			return
		}
		a.refuse(w, http.StatusBadRequest, ReasonBodyRead, ErrorBody{Error: "could not read the request body"})
		return
	}
	in, problems := fhir.ParseIncident(body, fhir.ParseOptions{Now: a.deps.Now(), Sources: a.deps.Sources, Codes: a.deps.Codes})
	if in != nil && in.Source != "" && !token.mayPost(in.Source) {
		// The token is good, and its holder may know what it is for.
		a.refuse(w, http.StatusForbidden, ReasonForbidden, ErrorBody{Error: "this token may not post incidents for this source",
			Problems: []fhir.Problem{{Field: "source", Message: "is not a source this token may post for (" + strings.Join(token.Sources, ", ") + "); http.ingest_tokens binds it"}}})
		return
	}
	if len(problems) > 0 {
		a.refuse(w, http.StatusBadRequest, ReasonInvalid, ErrorBody{Error: "invalid incident", Problems: problems})
		return
	}
	warnings := in.Warnings
	if a.cfg.MapWarnings != nil {
		warnings = a.cfg.MapWarnings(in) // fhir.Builder.Warnings starts with in.Warnings
	}
	if len(warnings) > 0 && a.cfg.UnknownFields == UnknownFieldsReject {
		ps := make([]fhir.Problem, len(warnings))
		for i, w := range warnings {
			ps[i] = fhir.Problem{Field: w.Field, Message: w.Message}
		}
		a.refuse(w, http.StatusBadRequest, ReasonWarnings, ErrorBody{
			Error:    "the incident has fields or values the gateway would not use as sent, and this gateway refuses them (http.unknown_fields: reject)",
			Problems: ps})
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
	retryAfter := strconv.Itoa(int((a.cfg.RetryAfter + time.Second - 1) / time.Second))
	run, ok := a.begin()
	if !ok {
		w.Header().Set("Retry-After", retryAfter)
		a.refuse(w, http.StatusServiceUnavailable, ReasonUnavailable, ErrorBody{Error: "the gateway is stopping; retry later"})
		return
	}
	// The publish ends with the request, its timeout, or Run: a stopping adapter abandons it.
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PublishTimeout)
	stopCancel := context.AfterFunc(run, cancel)
	res, err := a.deps.Publisher.Publish(ctx, rec)
	stopCancel()
	cancel()
	a.end()
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away; it was told nothing, so it will resend
		}
		if errors.Is(err, ingest.ErrTooLarge) {
			// The store can never take it: a 503 would have the source resend it for ever.
			// (The runner counted the failed publish.)
			writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{Error: "the incident is larger than the gateway's store takes in one message; shorten it"})
			return
		}
		w.Header().Set("Retry-After", retryAfter)
		if run.Err() != nil {
			// Stopping: the record may or may not be stored. Never 202; the client resends
			// and the record id makes the resend a duplicate if the write did land.
			a.refuse(w, http.StatusServiceUnavailable, ReasonUnavailable, ErrorBody{Error: "the gateway is stopping; retry later"})
			return
		}
		// The runner counted the failed publish (unavailable or publish).
		a.log.Warn().Err(err).Str("source", in.Source).Str("record", rec.ID).Msg("incident not stored; answered 503")
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: unavailableText(err)})
		return
	}
	writeJSON(w, http.StatusAccepted, Accepted{ID: rec.ID, Status: "accepted", Duplicate: res.Duplicate, Warnings: warnings})
}

// unavailableText is the 503's error: it names the store's cause when the publisher gave one
// (ingest.Unavailable: "server unreachable", "no JetStream quorum"), so that a source's log
// says why (docs/cluster.md).
func unavailableText(err error) string {
	if cause := ingest.UnavailableCause(err); cause != "" {
		return "the gateway cannot store the incident durably right now: " + cause + "; retry later"
	}
	return "the gateway cannot store the incident durably right now; retry later"
}

// authorized finds the request's bearer token among the configured ones. With none
// configured there is no ingest auth: every request is authorized, for any source.
func (a *Adapter) authorized(r *http.Request) (IngestToken, bool) {
	tokens := *a.tokens.Load()
	if len(tokens) == 0 {
		return IngestToken{}, true
	}
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return IngestToken{}, false
	}
	token = strings.TrimSpace(token)
	found := -1
	for i, t := range tokens {
		// Compare against every token so that timing says nothing about which one matched.
		if subtle.ConstantTimeCompare([]byte(token), []byte(t.Token)) == 1 && t.Token != "" && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return IngestToken{}, false
	}
	return tokens[found], true
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
