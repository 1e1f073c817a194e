package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
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

// syncBuffer is a log sink tests read while the gateway writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// replace writes text to a temporary file and renames it over path, as an orchestrator
// swaps a secret (docs/api.md says to replace secret files whole).
func replace(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestIngestTokensReloaded: http.ingest_tokens_file and the token_file of an entry of
// http.ingest_tokens are read again when they change, polled, without a restart or a SIGHUP:
// a rotated token is accepted for new requests, the one it replaced gets 401, and a token
// bound to a source stays bound to it. A file emptied or holding a token too short to be
// one changes nothing (ingest auth is never turned off), and the log names the key, never a
// token.
func TestIngestTokensReloaded(t *testing.T) {
	const (
		inline  = "inline-token-000000001"
		anyOld  = "any-source-token-00001"
		anyNew  = "any-source-token-00002"
		datixA  = "datix-only-token-00001"
		datixB  = "datix-only-token-00002"
		tooShrt = "datix-short"
	)
	dir := t.TempDir()
	anyFile, datixFile := filepath.Join(dir, "ingest-tokens"), filepath.Join(dir, "datix-token")
	replace(t, anyFile, "# one per line\n"+anyOld+"\n")
	replace(t, datixFile, datixA+"\n")
	loaded := load(t, dir, "psgw.yaml", `sources:
  datix: {}
  ulysses: {}
mllp:
  addr: ""
http:
  ingest_tokens_file: `+anyFile+`
  ingest_tokens:
    - `+inline+`
    - token_file: `+datixFile+`
      sources: [datix]
`)
	logs := &syncBuffer{}
	cfg := testConfig(t.TempDir())
	cfg.Sources, cfg.Adapters, cfg.UnreadAdapters = loaded.Sources, loaded.Adapters, loaded.UnreadAdapters
	cfg.Adapters[hl7mllp.Section] = loaded.Adapters[hl7mllp.Section]
	g, err := gateway.Start(context.Background(), cfg, gateway.Options{Demo: true, Logger: zerolog.New(logs), SecretsPollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop(context.Background()) })

	n := 0
	post := func(token, source string) int {
		t.Helper()
		n++
		body := fmt.Sprintf(`{"source":%q,"local_id":"RELOAD-%d","event_type":"incident","occurred_at":"2025-03-14","description":"Fall from bed"}`, source, n)
		req, _ := http.NewRequest("POST", "http://"+g.HTTPAddr()+"/api/v1/incidents", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	expect := func(when string, want map[[2]string]int) {
		t.Helper()
		for k, code := range want {
			if got := post(k[0], k[1]); got != code {
				t.Errorf("%s: token %s… for %s: got %d, want %d", when, k[0][:12], k[1], got, code)
			}
		}
	}
	expect("at start", map[[2]string]int{
		{inline, "ulysses"}: 202, {anyOld, "ulysses"}: 202, {datixA, "datix"}: 202, {datixA, "ulysses"}: 403,
		{anyNew, "datix"}: 401, {datixB, "datix"}: 401,
	})

	replace(t, datixFile, datixB+"\n")
	wait.For(t, 10*time.Second, "the rotated datix token to be accepted", func() (bool, string) { return post(datixB, "datix") == 202, "" })
	replace(t, anyFile, anyNew+"\n")
	wait.For(t, 10*time.Second, "the rotated any-source token to be accepted", func() (bool, string) { return post(anyNew, "ulysses") == 202, "" })
	expect("after both rotations", map[[2]string]int{
		{inline, "ulysses"}: 202, {anyNew, "datix"}: 202, {datixB, "datix"}: 202, {datixB, "ulysses"}: 403,
		{anyOld, "ulysses"}: 401, {datixA, "datix"}: 401,
	})

	// A token too short, then an emptied file: each is read on two polls, refused, and
	// logged by its key.
	replace(t, datixFile, tooShrt+"\n")
	wait.For(t, 10*time.Second, "the short token to be refused in the log", func() (bool, string) {
		return strings.Contains(logs.String(), `"key":"http.ingest_tokens[1].token_file","error":"http.ingest_tokens[1]: must be at least 16 characters"`), ""
	})
	replace(t, datixFile, datixB+"\n")
	const datixReloaded = `"key":"http.ingest_tokens[1].token_file","message":"secret file changed: reloaded without a restart"`
	wait.For(t, 10*time.Second, "the good datix token file to be read again", func() (bool, string) {
		return strings.Count(logs.String(), datixReloaded) == 2, ""
	})
	replace(t, anyFile, "\n")
	wait.For(t, 10*time.Second, "the emptied file to be refused in the log", func() (bool, string) {
		return strings.Contains(logs.String(), `"key":"http.ingest_tokens_file","error":"http.ingest_tokens_file: `+anyFile+` holds nothing"`), ""
	})
	expect("after the bad files", map[[2]string]int{
		{anyNew, "ulysses"}: 202, {datixB, "datix"}: 202, {tooShrt, "datix"}: 401, {anyOld, "ulysses"}: 401,
	})
	for _, tok := range []string{inline, anyOld, anyNew, datixA, datixB, tooShrt} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the log quotes token %s…", tok[:12])
		}
	}
}

// TestMLLPCertificateAndClientCAReloaded: the MLLP listener's certificate and key
// (mllp.tls_cert_file, mllp.tls_key_file) and its client CAs (mllp.tls.client_ca_file) are
// read again when they change, polled, without restarting the listener: the next handshake
// gets the new certificate and is checked against the new CAs, while a connection opened
// before keeps working. A mismatched pair or a CA file holding no certificate changes
// nothing.
func TestMLLPCertificateAndClientCAReloaded(t *testing.T) {
	dir := t.TempDir()
	serverCA := tlstest.NewCA(t, "psgw reload server CA")
	oldSenders, newSenders := tlstest.NewCA(t, "old senders' CA"), tlstest.NewCA(t, "new senders' CA")
	certFile, keyFile, caFile := filepath.Join(dir, "mllp.crt"), filepath.Join(dir, "mllp.key"), filepath.Join(dir, "senders-ca.pem")
	first, second := serverCA.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), serverCA.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	tlstest.WritePair(t, first, certFile, keyFile)
	oldSenders.WriteCA(t, caFile)
	oldEngine := oldSenders.Issue(t, "old-engine.test", x509.ExtKeyUsageClientAuth)
	newEngine := newSenders.Issue(t, "new-engine.test", x509.ExtKeyUsageClientAuth)

	g := startReloading(t, func(c *config.Config) {
		m := c.Adapters[hl7mllp.Section].(*hl7mllp.Config)
		m.Addr = "127.0.0.1:0"
		m.TLSCertFile, m.TLSKeyFile, m.ClientTLS.ClientCAFile = certFile, keyFile, caFile
	}, 50*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := g.AdapterAddr(ctx, hl7mllp.Kind)
	if addr == "" {
		t.Fatal("the MLLP listener is not listening")
	}
	patient := mllptest.Patient{NHS: "9434765919", Local: "RGT1234567", DOB: "19650412", Sex: "F"}
	msgs := 0
	// send sends one ADT message on c and reports whether it was acknowledged AA.
	send := func(c *mllptest.Client) error {
		msgs++
		ack, err := c.Send(mllptest.ADT("A08", fmt.Sprintf("RELOAD%d", msgs), time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC), patient))
		if err == nil && ack.Code != "AA" {
			err = fmt.Errorf("got %s", ack.Code)
		}
		return err
	}
	// connect opens a connection as engine and sends one message; it returns the
	// certificate served and the connection (nil when the message was refused).
	connect := func(engine tls.Certificate) ([]byte, *mllptest.Client, error) {
		c, err := mllptest.Dial(ctx, addr, &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &engine, nil }})
		if err != nil {
			return nil, nil, err
		}
		served := c.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0].Raw
		if err := send(c); err != nil {
			c.Close()
			return served, nil, err
		}
		return served, c, nil
	}

	served, open, err := connect(oldEngine)
	if err != nil || !slices.Equal(served, first.Certificate[0]) {
		t.Fatalf("before the change: want the first certificate and the old engine let in, got err %v", err)
	}
	defer open.Close()
	if _, _, err := connect(newEngine); err == nil {
		t.Fatal("before the change: the new engine, whose CA is not yet trusted, was let in")
	}

	tlstest.WritePair(t, second, certFile+".new", keyFile+".new")
	newSenders.WriteCA(t, caFile+".new")
	for _, p := range []string{certFile, keyFile, caFile} {
		if err := os.Rename(p+".new", p); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, "the new certificate served and the new CA trusted", func() (bool, string) {
		served, c, err := connect(newEngine)
		if c != nil {
			c.Close()
		}
		return err == nil && slices.Equal(served, second.Certificate[0]), fmt.Sprint(err)
	})
	if _, _, err := connect(oldEngine); err == nil {
		t.Error("after the change: the old engine, whose CA was removed, was let in")
	}
	if err := send(open); err != nil {
		t.Errorf("the connection opened before the change: %v, want it kept", err)
	}

	// Half written: a certificate whose key is not yet replaced, and a CA file holding no
	// certificate. Read at once (as on SIGHUP): neither is applied.
	third := serverCA.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	tlstest.WritePair(t, third, certFile, filepath.Join(dir, "unused.key"))
	if err := os.WriteFile(caFile, []byte("-----BEGIN CERT"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := g.ReloadSecrets(); len(got) != 0 {
		t.Errorf("a half-written pair and CA file: applied %v, want nothing", got)
	}
	served, c, err := connect(newEngine)
	if err != nil || !slices.Equal(served, second.Certificate[0]) {
		t.Errorf("after the half-written files: want the second certificate and the new engine let in, got err %v", err)
	}
	if c != nil {
		c.Close()
	}
}
