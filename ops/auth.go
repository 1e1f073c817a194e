package ops

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/psgw/psgw/config"
)

// Role is what an authenticated person may do. Roles are ordered: an operator may do all a
// viewer may.
type Role int

// The roles. RoleNone is an unauthenticated request.
const (
	RoleNone Role = iota
	RoleViewer
	RoleOperator
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	}
	return "none"
}

// Identity is who made a request.
type Identity struct {
	Name string `json:"name"`
	Role Role   `json:"-"`
}

// Actor is how the ledger history names this person: "alice (operator)".
func (id Identity) Actor() string { return id.Name + " (" + id.Role.String() + ")" }

// anonymous is everyone when access control is off: the gateway is then only for a laptop
// demo on 127.0.0.1, where whoever can reach it is its operator. Off loopback anonymous is
// only a viewer, unless ops.allow_open_actions (exposure.go).
var anonymous = Identity{Name: "anonymous", Role: RoleOperator}

// anonymousCSRF is the X-CSRF-Token the page sends with access control off, where any value
// is taken (checkAction): the header is what a cross-site form cannot send.
const anonymousCSRF = "anonymous"

// sessionCookie holds a browser login's random session id (never the token itself).
const sessionCookie = "psgw_session"

// csrfHeader carries a browser session's CSRF token on state-changing requests: a cookie alone
// never authorises a POST, so another site cannot make a logged-in browser replay incidents.
const csrfHeader = "X-CSRF-Token"

// maxSessions bounds memory held by browser logins; the oldest expired ones go first.
const maxSessions = 10000

type session struct {
	// token is the SHA-256 of the token signed in with, so that a reload of the tokens
	// keeps the session exactly while its token is still configured.
	token   [32]byte
	id      Identity
	csrf    string
	expires time.Time
}

// Auth checks the bearer tokens and browser sessions of the status page and operations API.
// Tokens are compared by their SHA-256, so a lookup takes the same time whatever the guess.
// Sessions live in memory: a restart logs everyone out, which is the safe direction; a reload
// of the tokens (SetTokens) keeps every session whose token is still configured. Safe for
// concurrent use; the zero value is not usable, build one with NewAuth.
type Auth struct {
	// enabled turns on with the first token and stays on: a reload that removes every
	// token locks everyone out rather than opening the gateway.
	enabled        atomic.Bool
	tokens         atomic.Pointer[map[[32]byte]Identity]
	ttl            time.Duration
	secureCookie   bool
	protectMetrics bool
	protectHealth  bool
	now            func() time.Time

	mu       sync.Mutex
	sessions map[string]*session

	exp exposure

	refused *prometheus.CounterVec
}

// NewAuth builds access control from the ops config and the HTTP listener's: under TLS
// (http.tls_cert_file) the session cookie is marked Secure and answers carry HSTS; the Host
// check takes http.addr and http.allowed_hosts. With no tokens configured access control is
// off and every request acts as "anonymous" with the operator role, or only the viewer role
// when http.addr is not loopback and ops.allow_open_actions is off.
func NewAuth(cfg config.OpsConfig, h config.HTTPConfig) (*Auth, error) {
	a := &Auth{ttl: cfg.SessionTTL,
		secureCookie: h.TLSCertFile != "", protectMetrics: cfg.ProtectMetrics, protectHealth: cfg.ProtectHealth,
		now: time.Now, sessions: map[string]*session{}, exp: newExposure(cfg, h),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "psgw_ops_auth_refused_total",
			Help: "Requests to the status page or operations API refused, by reason (unauthenticated, forbidden, csrf, content_type, host, login).",
		}, []string{"reason"})}
	if a.ttl <= 0 {
		a.ttl = 12 * time.Hour
	}
	if err := a.SetTokens(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// SetTokens replaces the viewer and operator tokens, as when ops.tokens_file changed. A
// browser session stays signed in while its token is still configured, with the role the
// token has now; the others end. On error nothing changes.
func (a *Auth) SetTokens(cfg config.OpsConfig) error {
	tokens := map[[32]byte]Identity{}
	add := func(list []string, role Role) error {
		for _, s := range list {
			nt, err := config.ParseNamedToken(s)
			if err != nil {
				return err
			}
			tokens[sha256.Sum256([]byte(nt.Token))] = Identity{Name: nt.Name, Role: role}
		}
		return nil
	}
	if err := add(cfg.ViewerTokens, RoleViewer); err != nil {
		return fmt.Errorf("ops.viewer_tokens: %w", err)
	}
	if err := add(cfg.OperatorTokens, RoleOperator); err != nil {
		return fmt.Errorf("ops.operator_tokens: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens.Store(&tokens)
	if len(tokens) > 0 {
		a.enabled.Store(true)
	}
	for sid, s := range a.sessions {
		if id, ok := tokens[s.token]; ok {
			s.id = id
		} else {
			delete(a.sessions, sid)
		}
	}
	return nil
}

// Enabled reports whether access control is on.
func (a *Auth) Enabled() bool { return a != nil && a.enabled.Load() }

// exposure is the listener's side of the guard; a nil Auth (tests that build a Server by
// hand) checks no Host and sends no HSTS.
func (a *Auth) exposure() exposure {
	if a == nil {
		return exposure{anyHost: true}
	}
	return a.exp
}

func (a *Auth) lookupToken(token string) (Identity, bool) {
	if token == "" {
		return Identity{}, false
	}
	id, ok := (*a.tokens.Load())[sha256.Sum256([]byte(token))]
	return id, ok
}

// authenticate finds who made r: a bearer token, or a browser session cookie (then sess is
// set, and a POST must carry the session's CSRF token).
func (a *Auth) authenticate(r *http.Request) (id Identity, sess *session, ok bool) {
	if !a.Enabled() {
		if a.OpenActionsOff() != "" {
			return Identity{Name: anonymous.Name, Role: RoleViewer}, nil, true
		}
		return anonymous, nil, true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Identity{}, nil, false
		}
		id, ok := a.lookupToken(strings.TrimSpace(tok))
		return id, nil, ok
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return Identity{}, nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, found := a.sessions[c.Value]
	if !found || a.now().After(s.expires) {
		delete(a.sessions, c.Value)
		return Identity{}, nil, false
	}
	return s.id, s, true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// login starts a browser session for a valid token.
func (a *Auth) login(w http.ResponseWriter, token string) (Identity, bool) {
	id, ok := a.lookupToken(strings.TrimSpace(token))
	if !ok {
		return Identity{}, false
	}
	sid := randomHex(32)
	now := a.now()
	a.mu.Lock()
	if len(a.sessions) >= maxSessions {
		for k, s := range a.sessions {
			if now.After(s.expires) {
				delete(a.sessions, k)
			}
		}
		if len(a.sessions) >= maxSessions { // all live: drop an arbitrary one
			for k := range a.sessions {
				delete(a.sessions, k)
				break
			}
		}
	}
	a.sessions[sid] = &session{token: sha256.Sum256([]byte(strings.TrimSpace(token))), id: id, csrf: randomHex(16), expires: now.Add(a.ttl)}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true,
		Secure: a.secureCookie, SameSite: http.SameSiteStrictMode, MaxAge: int(a.ttl.Seconds())})
	return id, true
}

func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: a.secureCookie, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

type identityKey struct{}
type csrfKey struct{}

// identityFrom returns who made the request, as set by the guard.
func identityFrom(ctx context.Context) Identity {
	if id, ok := ctx.Value(identityKey{}).(Identity); ok {
		return id
	}
	return Identity{}
}

func csrfFrom(ctx context.Context) string {
	s, _ := ctx.Value(csrfKey{}).(string)
	return s
}

// guard lets a request through to h only if it is authenticated with at least role. Pages
// send people without a session to the login form; the API answers 401 or 403 in JSON. The
// actor for the ledger history is put in the request context (see Actor).
func (s *Server) guard(role Role, h http.Handler) http.Handler {
	a := s.Auth
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.checkExposure(w, r) {
			return
		}
		if role == RoleNone {
			h.ServeHTTP(w, r)
			return
		}
		id, sess, ok := a.authenticate(r)
		api := strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" || r.URL.Path == "/healthz" || r.URL.Path == "/readyz"
		if !ok {
			a.countRefused("unauthenticated")
			if !api && r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="psgw"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "sign in: send Authorization: Bearer <token> (ops.viewer_tokens or ops.operator_tokens)"})
			return
		}
		if id.Role < role && !a.Enabled() {
			a.countRefused("forbidden")
			writeJSON(w, http.StatusForbidden, map[string]string{"error": a.OpenActionsOff()})
			return
		}
		if id.Role < role {
			a.countRefused("forbidden")
			s.Log.Warn().Str("actor", id.Actor()).Str("method", r.Method).Str("path", r.URL.Path).Msg("action refused: needs the operator role")
			writeJSON(w, http.StatusForbidden, map[string]string{"error": fmt.Sprintf("%s has the %s role; this needs the %s role", id.Name, id.Role, role)})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.checkAction(w, r, sess) {
			return
		}
		ctx := WithActor(r.Context(), id.Actor())
		ctx = context.WithValue(ctx, identityKey{}, id)
		switch {
		case sess != nil:
			ctx = context.WithValue(ctx, csrfKey{}, sess.csrf)
		case !a.Enabled():
			ctx = context.WithValue(ctx, csrfKey{}, anonymousCSRF)
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (a *Auth) countRefused(reason string) {
	if a != nil {
		a.refused.WithLabelValues(reason).Inc()
	}
}

// healthRole and metricsRole are the roles /healthz, /readyz and /metrics need.
func (a *Auth) healthRole() Role {
	if a.Enabled() && a.protectHealth {
		return RoleViewer
	}
	return RoleNone
}

func (a *Auth) metricsRole() Role {
	if a.Enabled() && a.protectMetrics {
		return RoleViewer
	}
	return RoleNone
}

// WhoAmI is the GET /api/v1/whoami body.
type WhoAmI struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Actor      string `json:"actor"`
	AuthActive bool   `json:"auth_enabled"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	writeJSON(w, http.StatusOK, WhoAmI{Name: id.Name, Role: id.Role.String(), Actor: id.Actor(), AuthActive: s.Auth.Enabled()})
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
