package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/psgw/psgw/ingest"
	_ "github.com/psgw/psgw/ingest/all" // the adapters' sections, as the gateway has them
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/httppush"
	"github.com/psgw/psgw/ingest/sqlpoll"
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
	mllp := cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config)
	if cfg.DataDir != "./data" || cfg.HTTP.Addr != "127.0.0.1:8080" || mllp.Addr != "127.0.0.1:2575" {
		t.Errorf("got data_dir=%q http.addr=%q mllp.addr=%q, want the defaults README's configuration table gives", cfg.DataDir, cfg.HTTP.Addr, mllp.Addr)
	}
	// With no config file the gateway runs the push API and the MLLP listener, nothing else.
	var kinds []string
	for _, a := range cfg.EnabledAdapters() {
		kinds = append(kinds, a.Module.Kind)
	}
	if got := strings.Join(kinds, ","); got != "hl7mllp,httppush" {
		t.Errorf("adapters enabled by default: got %s, want hl7mllp,httppush", got)
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
	if got := joinTokens(cfg.Adapters[httppush.Section].(*httppush.Config).Tokens); got != "aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb" {
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
		{"source name", func(c *Config) { c.Sources = map[string]SourceConfig{"Bad Name": {}} }, "sources.Bad Name"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"adt max age too short", func(c *Config) { c.Queue.ADTMaxAge = time.Second }, "queue.adt_max_age: must be at least 1m"},
		{"allowed host with a port", func(c *Config) { c.HTTP.AllowedHosts = []string{"psgw.example:8443"} }, "http.allowed_hosts[0]: must be a host name"},
		{"allowed host as a URL", func(c *Config) { c.HTTP.AllowedHosts = []string{"ok.example", "https://psgw.example"} }, "http.allowed_hosts[1]"},
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
			t.Errorf("%s: got key %q, want %q (README, \"Configuration\")", env, names[env], key)
		}
	}
	if got := UnknownEnv([]string{"PSGW_HTTP_ADR=x", "PSGW_HTTP_ADDR=y", "PATH=/bin"}); len(got) != 1 || got[0] != "PSGW_HTTP_ADR" {
		t.Errorf("UnknownEnv: got %v, want [PSGW_HTTP_ADR]", got)
	}
}

// TestAdapterSections: each adapter's section is decoded into the settings the adapter
// registered, over its defaults, strictly, from the file and from the environment, without
// the config package naming the adapter.
func TestAdapterSections(t *testing.T) {
	path := writeFile(t, `
http:
  addr: 127.0.0.1:9000
  max_body_bytes: 2048
mllp:
  addr: 127.0.0.1:2600
  default_charset: ASCII
csvdrop: &drop
  dir: /srv/drop
  source: datix
sqlpoll:
  <<: {batch_size: 7}
  query: SELECT 1
  dsn: postgres://x
  source: datix
sources:
  datix:
    csv_columns: {local_id: Ref}
`)
	cfg, err := Load(path, []string{"PSGW_MLLP_SOURCE=pas", "PSGW_CSVDROP_DELIMITER=;", "PSGW_SQLPOLL_CURSOR_COLUMNS=at, id"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid configuration refused: %v", err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:9000" {
		t.Errorf("http.addr, the gateway's key of the shared section: got %q", cfg.HTTP.Addr)
	}
	if h := cfg.Adapters[httppush.Section].(*httppush.Config); h.MaxBodyBytes != 2048 {
		t.Errorf("http.max_body_bytes, the push API's key of the shared section: got %d, want 2048", h.MaxBodyBytes)
	}
	m := cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config)
	if m.Addr != "127.0.0.1:2600" || m.DefaultCharset != "ASCII" || m.Source != "pas" || m.MaxConnections != 64 {
		t.Errorf("mllp: got addr %q, charset %q, source %q, max_connections %d; want the file's, the environment's and the default 64",
			m.Addr, m.DefaultCharset, m.Source, m.MaxConnections)
	}
	d := cfg.Adapters[csvdrop.Section].(*csvdrop.Config)
	if d.Dir != "/srv/drop" || d.Delimiter != ";" || d.Pattern != "*.csv" {
		t.Errorf("csvdrop: got dir %q, delimiter %q, pattern %q", d.Dir, d.Delimiter, d.Pattern)
	}
	q := cfg.Adapters[sqlpoll.Section].(*sqlpoll.Config)
	if q.BatchSize != 7 || strings.Join(q.CursorColumns, ",") != "at,id" || q.Driver != "pgx" {
		t.Errorf("sqlpoll: got batch_size %d (merged), cursor_columns %v, driver %q", q.BatchSize, q.CursorColumns, q.Driver)
	}
	var kinds []string
	for _, a := range cfg.EnabledAdapters() {
		kinds = append(kinds, a.Module.Kind)
	}
	if got := strings.Join(kinds, ","); got != "csvdrop,hl7mllp,httppush,sqlpoll" {
		t.Errorf("enabled adapters: got %s", got)
	}
	if got := cfg.MaxRecordBytes(); got != 1<<20 {
		t.Errorf("MaxRecordBytes: got %d, want the largest enabled limit, 1 MiB", got)
	}
}

func TestAdapterSectionErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ name, yaml, env, want string }{
		{"unknown key in an adapter section", "mllp:\n  adr: x\n", "", `line 2: unknown key "mllp.adr"`},
		{"unknown key in the shared section", "http:\n  max_body: 5\n", "", `unknown key "http.max_body"`},
		{"unknown top-level key holding an anchor", "base: &b {poll: 1s}\n", "", `unknown key "base"`},
		{"merged mapping with an unknown key", "csvdrop:\n  <<: {dirr: x}\n", "", `unknown key "csvdrop.dirr"`},
		{"unknown adapter", "ftpdrop:\n  dir: x\n", "", `unknown key "ftpdrop"`},
		{"wrong type in an adapter section", "mllp:\n  read_timeout: soon\n", "", "mllp.read_timeout must be a duration"},
		{"adapter section not a mapping", "csvdrop: [x]\n", "", "csvdrop must be a mapping"},
		{"bad adapter variable", "", "PSGW_MLLP_MAX_CONNECTIONS=lots", "PSGW_MLLP_MAX_CONNECTIONS (mllp.max_connections)"},
		{"missing adapter secret file", "", "PSGW_SQLPOLL_DSN_FILE=/nonexistent/dsn", "sqlpoll.dsn_file"},
	} {
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

// TestAdapterSecretFiles: a key X_file of an adapter's section fills its key X, as
// national.subscription_key_file does for the gateway's: a text is replaced by the file's,
// a list gets the file's lines added.
func TestAdapterSecretFiles(t *testing.T) {
	dir := t.TempDir()
	dsn, tokens := filepath.Join(dir, "dsn"), filepath.Join(dir, "tokens")
	if err := os.WriteFile(dsn, []byte("postgres://psgw:secret@db/datix\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokens, []byte("# rotated 2025-03\ncccccccccccccccc\n\n  dddddddddddddddd  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(writeFile(t, "sqlpoll:\n  dsn: from-file-wins\n  dsn_file: "+dsn+"\nhttp:\n  ingest_tokens: [aaaaaaaaaaaaaaaa]\n"),
		[]string{"PSGW_HTTP_INGEST_TOKENS_FILE=" + tokens})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Adapters[sqlpoll.Section].(*sqlpoll.Config).DSN; got != "postgres://psgw:secret@db/datix" {
		t.Errorf("sqlpoll.dsn: got %q, want the file's content without the newline", got)
	}
	if got := joinTokens(cfg.Adapters[httppush.Section].(*httppush.Config).Tokens); got != "aaaaaaaaaaaaaaaa,cccccccccccccccc,dddddddddddddddd" {
		t.Errorf("http.ingest_tokens: got %q, want the file's tokens added", got)
	}
	// A *_file key with no key beside it to fill is a path the adapter's owner reads (the
	// gateway loads mllp.tls_cert_file): it is left alone.
	cfg, err = Load("", []string{"PSGW_MLLP_TLS_CERT_FILE=/nonexistent/cert.pem"})
	if err != nil {
		t.Fatalf("mllp.tls_cert_file read as a secret: %v", err)
	}
	if got := cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).TLSCertFile; got != "/nonexistent/cert.pem" {
		t.Errorf("mllp.tls_cert_file: got %q", got)
	}
}

// TestAdapterProblemsNameTheirKeys: Validate reports the adapters' own checks with the
// gateway's, one problem per key, including those that look at the rest of the file.
func TestAdapterProblemsNameTheirKeys(t *testing.T) {
	cfg := Default()
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).DefaultCharset = "EBCDIC"
	d := cfg.Adapters[csvdrop.Section].(*csvdrop.Config)
	d.Dir, d.Source = "/srv/drop", "datix" // datix has no csv_columns
	cfg.Adapters[sqlpoll.Section].(*sqlpoll.Config).Query = "SELECT 1"
	cfg.Adapters[httppush.Section].(*httppush.Config).Tokens = httppush.Tokens("short")
	cfg.National.TaxonomyVersion = 7
	err := cfg.Validate()
	if err == nil {
		t.Fatal("got no error")
	}
	for _, want := range []string{
		"national.taxonomy_version: must be 5 or 6",
		`mllp.default_charset: must be ASCII, 8859/1 or UNICODE UTF-8`,
		`csvdrop.source: must name a source in sources whose csv_columns map local_id, got "datix"`,
		"sqlpoll.dsn: must be set (or sqlpoll.dsn_file) when sqlpoll.query is set",
		"http.ingest_tokens[0]: must be at least 16 characters",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems do not include %q:\n%v", want, err)
		}
	}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if strings.Contains(e.Error(), "\n") {
			t.Errorf("one problem holds several: %q", e)
		}
	}
}

// TestOneDemographicsFeed: two enabled adapters feeding the demographics store would
// overwrite each other's patients; the configuration is refused naming both.
func TestOneDemographicsFeed(t *testing.T) {
	feed := func(section string) Adapter {
		return Adapter{Module: ingest.Module{Section: section}, Settings: &hl7mllp.Config{}}
	}
	if err := demographicsFeeds([]Adapter{feed("mllp")}); err != nil {
		t.Errorf("one feed: got %v", err)
	}
	err := demographicsFeeds([]Adapter{feed("mllp"), {Settings: &csvdrop.Config{}}, feed("mllp2")})
	if err == nil || !strings.Contains(err.Error(), "mllp2: only one enabled adapter may feed the demographics store, and so does mllp") {
		t.Errorf("two feeds: got %v", err)
	}
}

// TestSharedSectionsKeepTheirKeysApart: an adapter whose section is one of the gateway's
// (httppush in http) has no key the gateway has, so every key has one owner and one
// environment variable.
func TestSharedSectionsKeepTheirKeysApart(t *testing.T) {
	core := map[string]map[string]bool{}
	ct := reflect.TypeOf(Config{})
	for i := 0; i < ct.NumField(); i++ {
		if f := ct.Field(i); f.Type.Kind() == reflect.Struct {
			keys := map[string]bool{}
			for k := range yamlFields(f.Type) {
				keys[k] = true
			}
			core[yamlName(f)] = keys
		}
	}
	shared := 0
	for _, m := range ingest.Modules() {
		keys, ok := core[m.Section]
		if !ok {
			continue
		}
		shared++
		for k := range yamlFields(settingsType(m)) {
			if keys[k] {
				t.Errorf("%s.%s is both the gateway's and adapter %s's", m.Section, k, m.Kind)
			}
		}
	}
	if shared == 0 {
		t.Error("no adapter shares a section with the gateway; httppush should share http")
	}
}

// joinTokens lists the tokens of http.ingest_tokens, comma-separated.
func joinTokens(ts []httppush.IngestToken) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Token)
	}
	return strings.Join(out, ",")
}

// TestIngestTokensBoundToSources: http.ingest_tokens takes plain tokens (any source) beside
// entries {token_file, sources} whose file the config package reads; the environment and
// http.ingest_tokens_file still give plain tokens; a misspelt key in an entry is named; and
// the configuration writes back as it was read.
func TestIngestTokensBoundToSources(t *testing.T) {
	dir := t.TempDir()
	datixToken := filepath.Join(dir, "datix-token")
	if err := os.WriteFile(datixToken, []byte("datix-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "sources:\n  datix: {}\n  ulysses: {}\nhttp:\n  ingest_tokens:\n    - aaaaaaaaaaaaaaaa\n    - token_file: "+datixToken+"\n      sources: [datix]\n    - token: ulysses-token-0123456789\n      sources: [ulysses, datix]\n")
	cfg, err := Load(path, []string{"PSGW_HTTP_INGEST_TOKENS_FILE=" + writeFile(t, "bbbbbbbbbbbbbbbb\n")})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []httppush.IngestToken{
		{Token: "aaaaaaaaaaaaaaaa"},
		{Token: "datix-token-0123456789", TokenFile: datixToken, Sources: []string{"datix"}},
		{Token: "ulysses-token-0123456789", Sources: []string{"ulysses", "datix"}},
		{Token: "bbbbbbbbbbbbbbbb"},
	}
	if diff := cmp.Diff(want, cfg.Adapters[httppush.Section].(*httppush.Config).Tokens); diff != "" {
		t.Errorf("http.ingest_tokens (-want +got):\n%s", diff)
	}
	if cfg, err = Load(path, nil); err != nil {
		t.Fatal(err)
	}
	tokens := cfg.Adapters[httppush.Section].(*httppush.Config).Tokens
	// Written back and read again: the same tokens.
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(writeFile(t, string(out)), nil)
	if err != nil {
		t.Fatalf("reading the written configuration: %v\n%s", err, out)
	}
	if diff := cmp.Diff(tokens, again.Adapters[httppush.Section].(*httppush.Config).Tokens); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}

	cfg, err = Load("", []string{"PSGW_HTTP_INGEST_TOKENS=cccccccccccccccc, dddddddddddddddd"})
	if err != nil {
		t.Fatal(err)
	}
	if got := joinTokens(cfg.Adapters[httppush.Section].(*httppush.Config).Tokens); got != "cccccccccccccccc,dddddddddddddddd" {
		t.Errorf("PSGW_HTTP_INGEST_TOKENS: got %q", got)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"http:\n  ingest_tokens:\n    - token: aaaaaaaaaaaaaaaa\n      source: [datix]\n", `unknown key "http.ingest_tokens[0].source"`},
		{"http:\n  ingest_tokens:\n    - token_file: /nonexistent/token\n", "http.ingest_tokens[0].token_file: open /nonexistent/token"},
	} {
		if _, err := Load(writeFile(t, tc.yaml), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
	cfg, err = Load(writeFile(t, "sources:\n  datix: {}\nhttp:\n  ingest_tokens:\n    - token: aaaaaaaaaaaaaaaa\n      sources: [ulysses, Datix]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	for _, want := range []string{`http.ingest_tokens[0].sources[0]: must be one of the configured sources, got "ulysses"`,
		`http.ingest_tokens[0].sources[1]: must match [a-z0-9_-]{1,64}, got "Datix"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want a problem %q", err, want)
		}
	}
}

// TestRereadAdapterSecrets: an adapter section's X_file keys read again give what Load gave
// when the files are the same, the new content in place of the old when they changed
// (a token bound to sources stays bound, the list file's lines replace those it gave), and
// leave the loaded configuration as it was; an emptied or missing file is refused by key.
func TestRereadAdapterSecrets(t *testing.T) {
	dir := t.TempDir()
	datix, list := filepath.Join(dir, "datix-token"), filepath.Join(dir, "ingest-tokens")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(datix, "datix-token-0123456789\n")
	write(list, "list-token-a-0123456789\nlist-token-b-0123456789\n")
	cfg, err := Load(writeFile(t, "sources:\n  datix: {}\nhttp:\n  ingest_tokens_file: "+list+"\n  ingest_tokens:\n    - inline-token-0123456789\n    - token_file: "+datix+"\n      sources: [datix]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	loaded := cfg.Adapters[httppush.Section].(*httppush.Config).Tokens
	want := slices.Clone(loaded)
	if got := cfg.AdapterSecretFiles(httppush.Section); !slices.Equal(got, []SecretFile{{"http.ingest_tokens[1].token_file", datix}, {"http.ingest_tokens_file", list}}) {
		t.Errorf("AdapterSecretFiles: got %v", got)
	}
	again, err := cfg.RereadAdapterSecrets(httppush.Section)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(loaded, again.(*httppush.Config).Tokens); diff != "" {
		t.Errorf("the same files read again (-loaded +again):\n%s", diff)
	}

	write(datix, "datix-token-9876543210\n")
	write(list, "list-token-c-0123456789\n")
	again, err = cfg.RereadAdapterSecrets(httppush.Section)
	if err != nil {
		t.Fatal(err)
	}
	wantNew := []httppush.IngestToken{{Token: "inline-token-0123456789"}, {Token: "datix-token-9876543210", TokenFile: datix, Sources: []string{"datix"}}, {Token: "list-token-c-0123456789"}}
	if diff := cmp.Diff(wantNew, again.(*httppush.Config).Tokens); diff != "" {
		t.Errorf("changed files read again (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, cfg.Adapters[httppush.Section].(*httppush.Config).Tokens); diff != "" {
		t.Errorf("reading again changed the loaded configuration (-before +after):\n%s", diff)
	}

	write(list, "# all removed\n\n")
	if _, err := cfg.RereadAdapterSecrets(httppush.Section); err == nil || !strings.Contains(err.Error(), "http.ingest_tokens_file: "+list+" holds nothing") {
		t.Errorf("an emptied file: got %v", err)
	}
	if err := os.Remove(datix); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.RereadAdapterSecrets(httppush.Section); err == nil || !strings.Contains(err.Error(), "http.ingest_tokens[1].token_file") {
		t.Errorf("a missing file: got %v", err)
	}
}
