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
	good := []string{
		"PSGW_NATIONAL_BASE_URL=https://psims-uat.azure-api.net",
		"PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE=" + keyFile,
		"PSGW_OPS_TOKENS_FILE=" + tokens,
		"PSGW_HTTP_ADDR=0.0.0.0:8080",
	}
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
		{"nothing set", nil, ProductionOptions{}, []string{"national.base_url", "national.subscription_key_file", "ops.tokens_file"}},
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
	cfg = load(t, append(good[:3:3], "PSGW_HTTP_ADDR=127.0.0.1:8080")...)
	if err := cfg.CheckProduction(ProductionOptions{}); err != nil {
		t.Fatalf("loopback listener refused: %v", err)
	}
}
