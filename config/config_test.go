package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "psgw.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValidate(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.DataDir != "./data" || cfg.HTTP.Addr != "127.0.0.1:8080" || cfg.MLLP.Addr != "127.0.0.1:2575" {
		t.Errorf("got data_dir=%q http.addr=%q mllp.addr=%q, want the CONTRACT §1 defaults", cfg.DataDir, cfg.HTTP.Addr, cfg.MLLP.Addr)
	}
}

func TestLoadYAMLAndEnv(t *testing.T) {
	path := writeFile(t, `
data_dir: /var/lib/psgw
http:
  addr: 0.0.0.0:9000
national:
  base_url: https://example.test
  subscription_key: from-file
  taxonomy_version: 6
  timeout: 10s
`)
	env := []string{
		"PSGW_HTTP_ADDR=127.0.0.1:9999",
		"PSGW_NATIONAL_TAXONOMY_VERSION=5",
		"PSGW_HTTP_INGEST_TOKENS=aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb",
		"PSGW_QUEUE_DUPLICATE_WINDOW=10m",
		"HOME=/root",
	}
	cfg, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/psgw" {
		t.Errorf("data_dir: got %q, want /var/lib/psgw", cfg.DataDir)
	}
	if cfg.HTTP.Addr != "127.0.0.1:9999" {
		t.Errorf("http.addr: got %q, want the environment's 127.0.0.1:9999", cfg.HTTP.Addr)
	}
	if cfg.National.TaxonomyVersion != 5 {
		t.Errorf("national.taxonomy_version: got %d, want 5 from the environment", cfg.National.TaxonomyVersion)
	}
	if cfg.National.Timeout != 10*time.Second {
		t.Errorf("national.timeout: got %s, want 10s", cfg.National.Timeout)
	}
	if got := strings.Join(cfg.HTTP.IngestTokens, ","); got != "aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb" {
		t.Errorf("http.ingest_tokens: got %q", got)
	}
	if cfg.Queue.DuplicateWindow != 10*time.Minute {
		t.Errorf("queue.duplicate_window: got %s, want 10m", cfg.Queue.DuplicateWindow)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestSecretFile(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("s3cret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("", []string{"PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE=" + keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.National.SubscriptionKey != "s3cret-key" {
		t.Errorf("got key %q, want the file's content without the newline", cfg.National.SubscriptionKey)
	}
	if _, err := Load("", []string{"PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE=/nonexistent/key"}); err == nil || !strings.Contains(err.Error(), "national.subscription_key_file") {
		t.Errorf("missing secret file: got %v, want an error naming national.subscription_key_file", err)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml, env, want string
	}{
		{"unknown top-level key", "dat_dir: x\n", "", `unknown key "dat_dir"`},
		{"unknown nested key", "national:\n  base_ur: https://x\n", "", `unknown key "national.base_ur"`},
		{"unknown key in list item section", "http:\n  addr: a:1\n  tokens: [x]\n", "", `unknown key "http.tokens"`},
		{"wrong type", "national:\n  taxonomy_version: five\n", "", "taxonomy_version"},
		{"section not a mapping", "national: 5\n", "", "national must be a mapping"},
		{"bad env number", "", "PSGW_NATIONAL_CONCURRENCY=many", "PSGW_NATIONAL_CONCURRENCY"},
		{"bad env duration", "", "PSGW_NATIONAL_TIMEOUT=soon", "national.timeout"},
		{"broken yaml", "national: [\n", "", "config file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeFile(t, tc.yaml)
			}
			var env []string
			if tc.env != "" {
				env = []string{tc.env}
			}
			_, err := Load(path, env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestValidateNamesFields(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"taxonomy version", func(c *Config) { c.National.TaxonomyVersion = 7 }, "national.taxonomy_version: must be 5 or 6, got 7"},
		{"base url with path", func(c *Config) { c.National.BaseURL = "https://x/api"; c.National.SubscriptionKey = "k" }, "national.base_url: must be a host with no path"},
		{"base url without key", func(c *Config) { c.National.BaseURL = "https://x" }, "national.subscription_key: must be set"},
		{"http addr", func(c *Config) { c.HTTP.Addr = "localhost" }, "http.addr: must be host:port"},
		{"ambiguous policy", func(c *Config) { c.National.OnAmbiguousPost = "guess" }, "national.on_ambiguous_post"},
		{"sync", func(c *Config) { c.Queue.Sync = "sometimes" }, "queue.sync"},
		{"nats url", func(c *Config) { c.Queue.NATSURL = "http://x" }, "queue.nats_url"},
		{"short token", func(c *Config) { c.HTTP.IngestTokens = []string{"short"} }, "http.ingest_tokens[0]"},
		{"source name", func(c *Config) { c.Sources = map[string]SourceConfig{"Bad Name": {}} }, "sources.Bad Name"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"adt max age too short", func(c *Config) { c.Queue.ADTMaxAge = time.Second }, "queue.adt_max_age: must be at least 1m"},
		{"adt max age over raw max age", func(c *Config) { c.Queue.ADTMaxAge = 100 * 24 * time.Hour }, "queue.adt_max_age: must not exceed queue.raw_max_age"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEveryKeyHasAnEnvironmentVariable(t *testing.T) {
	names := map[string]string{}
	for _, kv := range EnvNames() {
		names[kv[0]] = kv[1]
	}
	for env, key := range map[string]string{
		"PSGW_DATA_DIR": "data_dir", "PSGW_HTTP_ADDR": "http.addr", "PSGW_MLLP_ADDR": "mllp.addr",
		"PSGW_QUEUE_NATS_URL": "queue.nats_url", "PSGW_NATIONAL_BASE_URL": "national.base_url",
		"PSGW_NATIONAL_SUBSCRIPTION_KEY": "national.subscription_key", "PSGW_NATIONAL_TAXONOMY_VERSION": "national.taxonomy_version",
	} {
		if names[env] != key {
			t.Errorf("%s: got key %q, want %q (CONTRACT §1)", env, names[env], key)
		}
	}
	if got := UnknownEnv([]string{"PSGW_HTTP_ADR=x", "PSGW_HTTP_ADDR=y", "PATH=/bin"}); len(got) != 1 || got[0] != "PSGW_HTTP_ADR" {
		t.Errorf("UnknownEnv: got %v, want [PSGW_HTTP_ADR]", got)
	}
}

// TestHL7CharsetsMatchTheListener: every name config accepts for mllp.default_charset is one
// the MLLP listener reads, and every name the listener reads is accepted here.
func TestHL7CharsetsMatchTheListener(t *testing.T) {
	for name := range HL7Charsets {
		if _, ok := hl7.NormalizeCharset(name); !ok {
			t.Errorf("config accepts %q, the listener does not read it", name)
		}
	}
	for _, name := range []string{"ASCII", "US-ASCII", "ISO IR6", "8859/1", "ISO IR100", "ISO-8859-1", "ISO8859-1", "LATIN-1", "LATIN1", "UNICODE UTF-8", "UTF-8", "UTF8", "ISO IR192", "utf-8", " Latin-1 "} {
		cfg := Default()
		cfg.MLLP.DefaultCharset = name
		if err := cfg.Validate(); err != nil {
			t.Errorf("mllp.default_charset %q: %v", name, err)
		}
	}
	cfg := Default()
	cfg.MLLP.DefaultCharset = "EBCDIC"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "mllp.default_charset") {
		t.Errorf("EBCDIC: got %v, want an error naming mllp.default_charset", err)
	}
}
