package ops_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/test/tlstest"
)

// send makes one request with the given headers (Host among them) and returns the status and
// body.
func send(t *testing.T, c *http.Client, method, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if c == nil {
		c = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func openGateway(c *config.Config) { c.Ops.OperatorTokens, c.Ops.ViewerTokens = nil, nil }

// TestOpenActionsNeedJSONAndCSRF: with access control off (a laptop on loopback), an
// operator action still needs a JSON body and the X-CSRF-Token header, so a cross-site form
// (urlencoded, multipart or text/plain, none of which can carry a custom header) cannot act
// through the operator's browser (issue 18: a cross-site form bulk-replayed every incident).
func TestOpenActionsNeedJSONAndCSRF(t *testing.T) {
	base := startGateway(t, openGateway)
	postIncident(t, base, "CSRF-1", "Fall on ward.")
	waitState(t, base, "CSRF-1", "delivered")
	for _, tc := range []struct {
		name, ctype, body string
		csrf              bool
		want              int
	}{
		{"cross-site form bulk replay", "application/x-www-form-urlencoded", "state=delivered", false, 415},
		{"cross-site multipart", "multipart/form-data; boundary=x", "--x--", false, 415},
		{"text/plain JSON body", "text/plain", `{"state":"delivered"}`, false, 415},
		{"text/plain with the header", "text/plain", `{"state":"delivered"}`, true, 415},
		{"no content type", "", `{"state":"delivered"}`, true, 415},
		{"JSON without the header", "application/json", `{"state":"delivered"}`, false, 403},
		{"JSON with the header", "application/json; charset=utf-8", `{"state":"delivered","dry_run":true}`, true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.ctype != "" {
				h["Content-Type"] = tc.ctype
			}
			if tc.csrf {
				h["X-CSRF-Token"] = "1"
			}
			code, body := send(t, nil, "POST", base+"/api/v1/replay", tc.body, h)
			if code != tc.want {
				t.Errorf("got %d %s, want %d", code, body, tc.want)
			}
		})
	}
	// None of the refused ones replayed anything: the incident was delivered once.
	_, b := call(t, "GET", base+"/api/v1/incidents/datix/CSRF-1", "", nil)
	if !strings.Contains(string(b), `"attempts":1`) || strings.Contains(string(b), "replay") {
		t.Errorf("record after refused replays: got %s, want one attempt and no replay", b)
	}
}

// TestOpenActionsRefusedOffLoopback: with access control off and the listener on an address
// other than loopback, operator actions are refused with a 403 that says how to turn access
// control on; reading stays open. ops.allow_open_actions opts out.
func TestOpenActionsRefusedOffLoopback(t *testing.T) {
	json := map[string]string{"Content-Type": "application/json", "X-CSRF-Token": "1"}
	onAll := func(c *config.Config) { openGateway(c); c.HTTP.Addr = "0.0.0.0:0" }
	base := loopbackURL(t, startGateway(t, onAll))
	code, body := send(t, nil, "POST", base+"/api/v1/replay", `{"dry_run":true}`, json)
	if code != http.StatusForbidden || !strings.Contains(body, "ops.operator_tokens") || !strings.Contains(body, "ops.allow_open_actions") {
		t.Errorf("open action on 0.0.0.0: got %d %s, want 403 naming ops.operator_tokens and ops.allow_open_actions", code, body)
	}
	if code, body := send(t, nil, "GET", base+"/api/v1/status", "", nil); code != 200 {
		t.Errorf("reading status on 0.0.0.0 with access control off: got %d %s, want 200", code, body)
	}
	if code, page := send(t, nil, "GET", base+"/", "", nil); code != 200 || !strings.Contains(page, "Operator actions are off") {
		t.Errorf("page on 0.0.0.0 with access control off: got %d, want 200 saying operator actions are off", code)
	}

	optOut := loopbackURL(t, startGateway(t, func(c *config.Config) { onAll(c); c.Ops.AllowOpenActions = true }))
	if code, body := send(t, nil, "POST", optOut+"/api/v1/replay", `{"dry_run":true}`, json); code != 200 {
		t.Errorf("open action with ops.allow_open_actions: got %d %s, want 200", code, body)
	}
}

// loopbackURL turns the base URL of a gateway listening on every interface into one on
// 127.0.0.1.
func loopbackURL(t *testing.T, base string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return "http://127.0.0.1:" + port
}

// TestHostHeaderChecked: a page or API request whose Host is not a loopback name, an IP
// address, the listen address or one of http.allowed_hosts is refused, so a DNS-rebinding
// page (Host: attacker.example) cannot read or act; health, metrics and ingest, for
// machines, are not checked.
func TestHostHeaderChecked(t *testing.T) {
	base := startGateway(t, func(c *config.Config) { c.HTTP.AllowedHosts = []string{"psgw.trust.example"} })
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	auth := map[string]string{"Authorization": "Bearer " + viewerToken}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"attacker.example", 403},
		{"attacker.example:" + port, 403},
		{"localhost.attacker.example", 403},
		{"psgw.trust.example.attacker.example", 403},
		{"localhost:" + port, 200},
		{"LOCALHOST", 200},
		{"127.0.0.1:" + port, 200},
		{"[::1]:" + port, 200},
		{"10.1.2.3", 200},
		{"psgw.trust.example", 200},
		{"PSGW.Trust.Example.:" + port, 200},
	} {
		auth["Host"] = tc.host
		if code, body := send(t, nil, "GET", base+"/api/v1/status", "", auth); code != tc.want {
			t.Errorf("Host %q: got %d %.200s, want %d", tc.host, code, body, tc.want)
		} else if code == 403 && !strings.Contains(body, "http.allowed_hosts") {
			t.Errorf("Host %q refused without naming http.allowed_hosts: %s", tc.host, body)
		}
	}
	rebind := map[string]string{"Host": "attacker.example"}
	if code, _ := send(t, nil, "GET", base+"/login", "", rebind); code != 403 {
		t.Errorf("sign-in page with Host attacker.example: got %d, want 403", code)
	}
	if code, _ := send(t, nil, "GET", base+"/healthz", "", rebind); code != 200 {
		t.Errorf("/healthz with Host attacker.example: got %d, want 200 (not checked)", code)
	}
}

// TestHSTSUnderTLS: under TLS every answer carries Strict-Transport-Security; without TLS
// none does (a browser ignores it over plain HTTP, and it would pin a laptop demo).
func TestHSTSUnderTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "psgw test CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlstest.WritePair(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), certFile, keyFile)
	base := startGateway(t, func(c *config.Config) { c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = certFile, keyFile })
	tb := "https://" + strings.TrimPrefix(base, "http://")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/", "/login", "/healthz", "/api/v1/status"} {
		req, _ := http.NewRequest("GET", tb+p, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
			t.Errorf("GET %s under TLS: Strict-Transport-Security %q, want max-age=…", p, h)
		}
	}
	plain := startGateway(t, nil)
	resp, err := http.Get(plain + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("plain HTTP: Strict-Transport-Security %q, want none", h)
	}
}
