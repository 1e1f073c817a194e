package ops

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/psgw/psgw/config"
)

// This file keeps a gateway that anyone on the network can reach safe by default
// (docs/api.md, "Safe by default"): the Host check against DNS rebinding, operator actions
// only as JSON with the CSRF header, no open actions off loopback, same-origin sign-in
// redirects, HSTS under TLS.

// hstsValue pins browsers to HTTPS for a year. No includeSubDomains: other services of the
// trust's domain are not psgw's to decide for.
const hstsValue = "max-age=31536000"

// exposure is what the guard needs to know of the listener.
type exposure struct {
	// hsts is set when the listener speaks TLS.
	hsts bool
	// anyHost turns the Host check off (http.allowed_hosts: ["*"]).
	anyHost bool
	// hosts are the names, lower case, a Host header may carry beside IP addresses.
	hosts map[string]bool
	// openActionsOff, when set, is why anonymous may not act: access control is off and the
	// listener is reachable beyond this machine.
	openActionsOff string
}

func newExposure(ops config.OpsConfig, h config.HTTPConfig) exposure {
	e := exposure{hsts: h.TLSCertFile != "", hosts: map[string]bool{"localhost": true}}
	listenHost, _, err := net.SplitHostPort(h.Addr)
	if err != nil {
		listenHost = h.Addr
	}
	if listenHost != "" && net.ParseIP(listenHost) == nil {
		e.hosts[hostName(listenHost)] = true
	}
	for _, a := range h.AllowedHosts {
		if a == "*" {
			e.anyHost = true
		}
		e.hosts[hostName(a)] = true
	}
	if !ops.AuthEnabled() && !ops.AllowOpenActions && !isLoopback(listenHost) {
		e.openActionsOff = fmt.Sprintf("operator actions are off: access control is off and psgw listens on %s, "+
			"which is reachable beyond this machine. Set ops.operator_tokens (or ops.tokens_file) to turn access control on, "+
			"or ops.allow_open_actions: true to let anyone who can reach it act (never in production)", h.Addr)
	}
	return e
}

// OpenActionsOff reports why operator actions are refused to everyone, or "" when they
// are not: access control is off and http.addr is not a loopback address.
func (a *Auth) OpenActionsOff() string {
	if a == nil || a.Enabled() {
		return ""
	}
	return a.exp.openActionsOff
}

// isLoopback reports whether a listen host reaches this machine only. An empty host or an
// unspecified address (0.0.0.0, ::) listens on every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostName is a Host header's name without its port, lower case and without a final dot.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
}

// hostAllowed reports whether a request's Host may reach the page and the API. An IP
// address is always allowed: DNS rebinding needs a name the attacker controls, and a page
// whose origin is psgw's own address is psgw's own page.
func (e exposure) hostAllowed(host string) bool {
	if e.anyHost || host == "" {
		return true
	}
	name := hostName(host)
	return e.hosts[name] || net.ParseIP(name) != nil
}

// hostChecked reports whether a path's Host is checked: the page, the API and sign-in are;
// health and metrics, which machines read by whatever name they know, are not.
func hostChecked(path string) bool {
	return path != "/healthz" && path != "/readyz" && path != "/metrics"
}

// isJSON reports whether a Content-Type is application/json (parameters such as charset
// allowed). A cross-site form can send only urlencoded, multipart or text/plain bodies.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// safeNext keeps the sign-in redirect on this site: a path of printable ASCII with no
// backslash, not starting "//" even once unescaped, with no scheme or host. A browser drops
// tabs and newlines from a URL and reads a backslash as a slash, so "/\t/evil.example" and
// "/\evil.example" would lead elsewhere.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/"
		}
	}
	dec, err := url.PathUnescape(next)
	if err != nil || strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, `/\`) {
		return "/"
	}
	for i := 0; i < len(dec); i++ {
		if c := dec[i]; c < ' ' || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

// checkExposure applies the Host check and HSTS to every request through the guard; it
// returns false when it has answered.
func (s *Server) checkExposure(w http.ResponseWriter, r *http.Request) bool {
	e := s.Auth.exposure()
	if e.hsts {
		w.Header().Set("Strict-Transport-Security", hstsValue)
	}
	if hostChecked(r.URL.Path) && !e.hostAllowed(r.Host) {
		s.Auth.countRefused("host")
		s.Log.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("request refused: its Host is not one of this gateway's names")
		writeJSON(w, http.StatusForbidden, map[string]string{"error": fmt.Sprintf(
			"Host %q is not one of this gateway's names; add it to http.allowed_hosts", hostName(r.Host))})
		return false
	}
	return true
}

// checkAction lets an operator action through only as JSON, and, unless it carries a bearer
// token (which a cross-site page cannot send without a CORS preflight that psgw never
// grants), with the X-CSRF-Token header: a browser session's own token, or with access
// control off any value (a header a cross-site form cannot send). It returns false when it
// has answered.
func (s *Server) checkAction(w http.ResponseWriter, r *http.Request, sess *session) bool {
	if !isJSON(r.Header.Get("Content-Type")) {
		s.Auth.countRefused("content_type")
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "operator actions take a JSON body: send Content-Type: application/json"})
		return false
	}
	got := r.Header.Get(csrfHeader)
	ok := true
	switch {
	case sess != nil:
		ok = constantTimeEqual(got, sess.csrf)
	case r.Header.Get("Authorization") == "":
		ok = got != ""
	}
	if !ok {
		s.Auth.countRefused("csrf")
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "missing or wrong " + csrfHeader + " header; from the page, reload it; from a program, send a bearer token (or, with access control off, any " + csrfHeader + " value)"})
	}
	return ok
}
