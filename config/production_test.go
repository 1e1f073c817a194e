package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckProduction: a configuration fit for production passes, and each missing piece is
// named by its key, all at once, so one failed start tells trust IT everything to fix.
func TestCheckProduction(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "lfpse-key")
	tokens := filepath.Join(dir, "ops-tokens")
	if err := os.WriteFile(keyFile, []byte("a-real-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokens, []byte("operator alice s3cret-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ingestTokens := filepath.Join(dir, "ingest-tokens")
	if err := os.WriteFile(ingestTokens, []byte("datix-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := []string{
		"PSGW_NATIONAL_BASE_URL=https://psims-uat.azure-api.net",
		"PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE=" + keyFile,
		"PSGW_OPS_TOKENS_FILE=" + tokens,
		"PSGW_HTTP_INGEST_TOKENS_FILE=" + ingestTokens,
		"PSGW_HTTP_ADDR=0.0.0.0:8080",
		"PSGW_MLLP_ADDR=0.0.0.0:2575",
		"PSGW_MLLP_ALLOWED_PEERS=10.20.0.0/16",
	}
	with := func(env ...string) []string { return append(append([]string{}, good...), env...) }
	load := func(t *testing.T, env ...string) Config {
		t.Helper()
		cfg, err := Load("", env)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	cfg := load(t, good...)
	if err := cfg.CheckProduction(ProductionOptions{TLSByProxy: true}); err != nil {
		t.Fatalf("complete production config behind a TLS proxy refused: %v", err)
	}

	cases := []struct {
		name string
		env  []string
		opts ProductionOptions
		want []string // keys named in the error
	}{
		{"nothing set", nil, ProductionOptions{}, []string{"national.base_url", "national.subscription_key_file", "ops.tokens_file", "http.ingest_tokens_file"}},
		{"no ingest token", with("PSGW_HTTP_INGEST_TOKENS_FILE="), ProductionOptions{TLSByProxy: true}, []string{"http.ingest_tokens_file: must give at least one ingest token"}},
		{"MLLP open on every interface", with("PSGW_MLLP_ALLOWED_PEERS="), ProductionOptions{TLSByProxy: true}, []string{"mllp.addr: listens on 0.0.0.0:2575, beyond loopback, with neither TLS"}},
		{"demo", good, ProductionOptions{Demo: true, TLSByProxy: true}, []string{"--demo"}},
		{"plain http on every interface", good, ProductionOptions{}, []string{"http.tls_cert_file", "--tls-by-proxy"}},
		{"key in the environment", []string{"PSGW_NATIONAL_BASE_URL=https://x.example", "PSGW_NATIONAL_SUBSCRIPTION_KEY=k", "PSGW_OPS_OPERATOR_TOKENS=a:0123456789abcdef"},
			ProductionOptions{}, []string{"national.subscription_key:"}},
		{"viewers only", []string{"PSGW_NATIONAL_BASE_URL=https://x.example", "PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE=" + keyFile, "PSGW_OPS_VIEWER_TOKENS=v:0123456789abcdef"},
			ProductionOptions{}, []string{"ops.operator_tokens"}},
		{"http to the national service", append(append([]string{}, good...), "PSGW_NATIONAL_ALLOW_HTTP=true"), ProductionOptions{TLSByProxy: true}, []string{"national.allow_http"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := load(t, tc.env...)
			err := cfg.CheckProduction(tc.opts)
			if err == nil {
				t.Fatalf("accepted, want refusal naming %v", tc.want)
			}
			for _, k := range tc.want {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("error does not name %s:\n%v", k, err)
				}
			}
		})
	}
	// Loopback without TLS is fine: nothing outside this machine can reach it.
	cfg = load(t, with("PSGW_HTTP_ADDR=127.0.0.1:8080", "PSGW_MLLP_ADDR=127.0.0.1:2575", "PSGW_MLLP_ALLOWED_PEERS=")...)
	if err := cfg.CheckProduction(ProductionOptions{}); err != nil {
		t.Fatalf("loopback listeners refused: %v", err)
	}
	// MLLP beyond loopback with TLS instead of allowed peers, or turned off: fine; an
	// ingest token given in the file rather than a file: fine.
	cert := filepath.Join(dir, "mllp.crt")
	for name, env := range map[string][]string{
		"MLLP over TLS":            {"PSGW_MLLP_ALLOWED_PEERS=", "PSGW_MLLP_TLS_CERT_FILE=" + cert, "PSGW_MLLP_TLS_KEY_FILE=" + cert},
		"MLLP off":                 {"PSGW_MLLP_ALLOWED_PEERS=", "PSGW_MLLP_ADDR="},
		"ingest token in the list": {"PSGW_HTTP_INGEST_TOKENS_FILE=", "PSGW_HTTP_INGEST_TOKENS=ulysses-token-0123456789"},
	} {
		cfg = load(t, with(env...)...)
		if err := cfg.CheckProduction(ProductionOptions{TLSByProxy: true}); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}

// TestCheckDemo (H-014): --demo is refused with a national service's https URL configured,
// and taken with none, or with a plain-http simulator's.
func TestCheckDemo(t *testing.T) {
	for url, refused := range map[string]bool{
		"":                                false,
		"http://127.0.0.1:8090":           false,
		"http://lfpse-sim:8090":           false,
		"https://psims-uat.azure-api.net": true,
		"https://psims.example":           true,
	} {
		cfg := Default()
		cfg.National.BaseURL = url
		err := cfg.CheckDemo()
		if (err != nil) != refused {
			t.Errorf("national.base_url %q: got %v, want refused %v", url, err, refused)
		}
		if err != nil && !strings.Contains(err.Error(), "national.base_url") {
			t.Errorf("the refusal does not name national.base_url: %v", err)
		}
	}
}
