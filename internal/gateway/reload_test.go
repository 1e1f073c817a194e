package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/test/tlstest"
	"github.com/psgw/psgw/test/wait"
)

// testConfig is the defaults on dataDir, with the HTTP listener on a free loopback port and
// no MLLP listener.
func testConfig(dataDir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = "1s"
	return cfg
}

func startReloading(t *testing.T, mutate func(*config.Config), poll time.Duration) *gateway.Gateway {
	t.Helper()
	cfg := testConfig(t.TempDir())
	mutate(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := gateway.Start(context.Background(), cfg, gateway.Options{Demo: true, Logger: zerolog.Nop(), SecretsPollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop(context.Background()) })
	return g
}

// TestTLSCertificateReloaded: a new certificate written over http.tls_cert_file and
// http.tls_key_file is served on the next handshake after a reload (SIGHUP), without a
// restart; a half-written pair changes nothing.
func TestTLSCertificateReloaded(t *testing.T) {
	ca := tlstest.NewCA(t, "psgw reload CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	tlstest.WritePair(t, first, certFile, keyFile)
	g := startReloading(t, func(c *config.Config) { c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = certFile, keyFile }, time.Hour)

	served := func() []byte {
		t.Helper()
		conn, err := tls.Dial("tcp", g.HTTPAddr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	if !slices.Equal(served(), first.Certificate[0]) {
		t.Fatal("the first certificate is not the one served")
	}
	// A key that does not match the certificate: kept the old pair.
	second := ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	other := ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	tlstest.WritePair(t, second, certFile, filepath.Join(dir, "unused.key"))
	tlstest.WritePair(t, other, filepath.Join(dir, "unused.crt"), keyFile)
	if got := g.ReloadSecrets(); len(got) != 0 {
		t.Errorf("reload of a mismatched pair applied %v, want nothing", got)
	}
	if !slices.Equal(served(), first.Certificate[0]) {
		t.Error("a mismatched pair replaced the served certificate")
	}
	tlstest.WritePair(t, second, certFile, keyFile)
	if got := g.ReloadSecrets(); !slices.Equal(got, []string{"http.tls_cert_file"}) {
		t.Errorf("reload applied %v, want [http.tls_cert_file]", got)
	}
	if !slices.Equal(served(), second.Certificate[0]) {
		t.Error("after the reload the next handshake does not get the new certificate")
	}
}

// TestTokensFileReloaded: ops.tokens_file is read again when it changes, without a restart:
// a token added works, a token removed is refused, and a browser session stays signed in
// while its token is still in the file (with its new role), and ends when it is not.
func TestTokensFileReloaded(t *testing.T) {
	const (
		alice = "alice-operator-token-0001"
		bob   = "bob-viewer-token-000000001"
		carol = "carol-operator-token-0001"
	)
	tokens := filepath.Join(t.TempDir(), "ops-tokens")
	// Written whole and renamed over the file, as an orchestrator swaps a secret: with a
	// poll every 50 ms and a loaded machine, an in-place write could be read truncated on
	// two polls in a row (a 5 s poll in production makes that implausible, not impossible;
	// docs/api.md says to replace secret files whole).
	write := func(text string) {
		tmp := tokens + ".new"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, tokens); err != nil {
			t.Fatal(err)
		}
	}
	write("operator alice " + alice + "\nviewer bob " + bob + "\n")
	cfg := load(t, t.TempDir(), "psgw.yaml", "ops:\n  tokens_file: "+tokens+"\n")
	g := startReloading(t, func(c *config.Config) { c.Ops = cfg.Ops }, 50*time.Millisecond)
	base := "http://" + g.HTTPAddr()

	status := func(token string) int {
		req, _ := http.NewRequest("GET", base+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.PostForm(base+"/login", url.Values{"token": {alice}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	whoami := func() (int, string) {
		resp, err := browser.Get(base + "/api/v1/whoami")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := whoami(); code != 200 || !strings.Contains(body, `"role":"operator"`) {
		t.Fatalf("alice's session: got %d %s", code, body)
	}
	if status(carol) != 401 || status(bob) != 200 {
		t.Fatal("before the change: want carol refused and bob let in")
	}

	// Carol added, bob removed, alice now a viewer.
	write("viewer alice " + alice + "\noperator carol " + carol + "\n")
	wait.For(t, 10*time.Second, "carol's token to work", func() (bool, string) { return status(carol) == 200, "" })
	if got := status(bob); got != 401 {
		t.Errorf("bob's removed token: got %d, want 401", got)
	}
	if code, body := whoami(); code != 200 || !strings.Contains(body, `"role":"viewer"`) {
		t.Errorf("alice's session after the reload: got %d %s, want still signed in, as a viewer", code, body)
	}

	// A broken file changes nothing.
	write("operator carol short\n")
	g.ReloadSecrets() // after this the bad content has been read, by the poll or by this call
	if status(carol) != 200 {
		t.Error("a bad tokens file replaced the good tokens")
	}

	write("operator carol " + carol + "\n")
	wait.For(t, 10*time.Second, "alice's session to end once her token is gone, carol still let in", func() (bool, string) {
		code, body := whoami()
		return code == 401 && status(carol) == 200, body
	})
}
