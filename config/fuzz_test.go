package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// configSeeds are the configurations operators write: the README's and the guides' examples,
// and the mistakes YAML invites (tabs, unquoted colons, a stray list, anchors and merge keys,
// several documents, Windows line ends, a byte-order mark).
var configSeeds = []string{
	`data_dir: /var/lib/psgw
http:
  addr: 0.0.0.0:8080
  ingest_tokens_file: /run/secrets/ingest-tokens
national:
  base_url: https://psims-uat.azure-api.net
  subscription_key_file: /run/secrets/lfpse-key
  taxonomy_version: 5
sources:
  datix: {}          # when sources are listed, only these may send
`,
	`sources:
  datix:
    csv_columns:
      local_id: Ref
      revision: Version
      event_type: Type
      occurred_at: Incident date
      description: Description
      patient.nhs_number: NHS number
    code_maps:
      reporter.role: {"*": {"Staff nurse": "5"}}
csvdrop:
  dir: /srv/psgw/datix-drop
  source: datix
  encoding: windows-1252
  delimiter: ";"
  max_row_bytes: 1048576
  poll_interval: 10s
`,
	`sources:
  datix: {}
sqlpoll:
  driver: pgx
  dsn_file: /run/secrets/datix-dsn
  source: datix
  query: |
    SELECT ref AS local_id, updated_at FROM incidents
    WHERE $1::timestamptz IS NULL OR (updated_at, ref) > ($1, $2)
    ORDER BY updated_at, ref LIMIT $3
  cursor_columns: [updated_at, local_id]
  batch_size: 500
  poll_interval: 15s
`,
	`ops:
  operator_tokens: ["alice:3f9c0000000000000000"]
  viewer_tokens:   ["ward-desk:8a1e0000000000000000"]
  protect_metrics: true
  session_ttl: 8h
`,
	"http:\n  addr: 127.0.0.1:8080\n  max_body_bytes: 2048\n  ingest_tokens: [aaaaaaaaaaaaaaaa]\nmllp: &m\n  addr: 127.0.0.1:2575\n  default_charset: ASCII\n",
	"mllp: &m\n  addr: 127.0.0.1:2575\ncsvdrop:\n  <<: *m\n",
	"sqlpoll:\n  <<: [{batch_size: 7}, {query: SELECT 1}]\n  dsn: x\n  source: datix\n",
	"base: &base\n  reporter.role: {\"*\": {RN: \"5\"}}\n",
	"sources:\n  datix:\n    code_maps: &maps\n      reporter.role: {\"*\": {RN: \"5\"}}\n  ulysses:\n    code_maps: *maps\n",
	"national: &n\n  timeout: 10s\nqueue:\n  <<: *n\n",
	"national:\n  <<: {timeout: 10s, concurrency: 4}\n",
	"national:\n\ttimeout: 10s\n",
	"national:\n  base_url: https://x:443\n  subscription_key: k: v\n",
	"national:\n  - timeout\n",
	"national:\n  timeout: 10\n",
	"national:\n  concurrency: 0x10\n",
	"national:\n  concurrency: 1e3\n",
	"ops:\n  protect_health: yes\n",
	"queue:\n  sync: 2m\n  max_store_bytes: 99999999999999999999\n",
	"log: {level: debug, format: console}\n---\nlog: {level: nonsense}\n",
	"\ufeffdata_dir: /data\r\nlog:\r\n  level: warn\r\n",
	"data_dir: \"\\x00\"\n",
	"data_dir: \x01\n",
	"data_dir: \xff\n",
	"sources:\n  \"Bad Name\": {}\n  \"a\\nb\": {}\n",
	"sources: [datix]\n",
	"sources:\n  datix:\n    code_maps:\n      reporter.role: {\"7\": {RN: 5}}\n",
	"~\n", "[]\n", "42\n", "", "# only a comment\n", "&a [*a]\n", "a: &a {b: *a}\n",
}

var envSeeds = []string{
	"", "PSGW_HTTP_ADDR=127.0.0.1:9999", "PSGW_NATIONAL_TIMEOUT=soon", "PSGW_NATIONAL_CONCURRENCY= 12 ",
	"PSGW_HTTP_INGEST_TOKENS=aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb,", "PSGW_OPS_PROTECT_METRICS=TRUE",
	"PSGW_QUEUE_MAX_STORE_BYTES=1e12", "PSGW_HTTP_ADR=x\nHOME=/root\nPSGW_LOG_LEVEL", "PSGW_LOG_LEVEL==debug",
}

// errorNamesPlace is what an error from Load must say: the line of the file, the key, or
// the environment variable; "the document" is the key of the file's top level.
var errorNamesPlace = regexp.MustCompile(`line [0-9]+|environment variable PSGW_|the document|` +
	`(data_dir|log|http|mllp|queue|national|mapping|csvdrop|sqlpoll|ops|sources)(\.|\[|:| must)`)

// FuzzLoad protects start-up. The YAML file and PSGW_* variables are written by hand, often
// under pressure, so psgw must never crash on them (a panic in Load is a gateway that will not
// start and says nothing useful) and every refusal must say where the mistake is. For any
// file bytes and any environment:
//
//   - decoding and the environment overrides return, never panic, and finish in time even on
//     a document whose anchors and aliases expand exponentially;
//   - an error names a line of the file, a key, or the environment variable;
//   - each problem Validate reports names its key;
//   - a configuration that loads and validates, written out as YAML and loaded again, is the
//     same configuration and still validates.
//
// It covers decodeYAML and applyEnv, which are Load without reading files: a fuzzer must not
// make psgw read whatever path it invents (national.subscription_key_file: /dev/zero).
func FuzzLoad(f *testing.F) {
	if b, err := os.ReadFile("../docs/examples/map-config.yaml"); err == nil {
		f.Add(b, "", uint8(0), "")
	}
	for i, s := range configSeeds {
		f.Add([]byte(s), envSeeds[i%len(envSeeds)], uint8(i*7), []string{"", "10s", "x", "9434765919", "true", " 3 "}[i%6])
	}
	names := EnvNames()
	f.Fuzz(func(t *testing.T, data []byte, env string, which uint8, value string) {
		environ := append(strings.Split(env, "\n"), names[int(which)%len(names)][0]+"="+value)
		cfg := Default()
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err = decodeYAML(data, &cfg); err == nil {
				err = applyEnv(&cfg, environ)
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("loading %d bytes of YAML took more than 10s", len(data))
		}
		if err != nil {
			if !errorNamesPlace.MatchString(err.Error()) {
				t.Fatalf("error %q names no line, key or variable", err)
			}
			return
		}
		verr := cfg.Validate()
		if verr != nil {
			for _, e := range verr.(interface{ Unwrap() []error }).Unwrap() {
				if !errorNamesPlace.MatchString(e.Error()) {
					t.Fatalf("Validate: problem %q names no key", e)
				}
			}
			return
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("valid configuration does not encode: %v", err)
		}
		again := Default()
		if err := decodeYAML(out, &again); err != nil {
			t.Fatalf("valid configuration, written out, does not load: %v\n%s", err, out)
		}
		if diff := cmp.Diff(cfg, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("configuration changes when written out and loaded (-before +after):\n%s", diff)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("valid configuration, written out and loaded, does not validate: %v", err)
		}
	})
}

// TestAliasesAreCheckedOnce keeps the key check linear in the document: each alias level
// below multiplies the paths through the tree by 200, which the walk must not follow one
// by one (200⁴ paths would take hours).
func TestAliasesAreCheckedOnce(t *testing.T) {
	const k = 200
	var b strings.Builder
	b.WriteString("sources:\n  s0: &s0\n    code_maps:\n      f0: &f0\n        v0: &v0\n")
	for i := 0; i < k; i++ {
		fmt.Fprintf(&b, "          k%d: x\n", i)
	}
	for i := 1; i < k; i++ {
		fmt.Fprintf(&b, "        v%d: *v0\n", i)
	}
	for i := 1; i < k; i++ {
		fmt.Fprintf(&b, "      f%d: *f0\n", i)
	}
	for i := 1; i < k; i++ {
		fmt.Fprintf(&b, "  s%d: *s0\n", i)
	}
	cfg := Default()
	start := time.Now()
	err := decodeYAML([]byte(b.String()), &cfg)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("checking %d bytes took %s", b.Len(), d)
	}
	if err == nil || !errorNamesPlace.MatchString(err.Error()) {
		t.Fatalf("got error %v, want one naming where the aliases are", err)
	}
}

// TestSecondDocumentRefused: settings after a "---" were once dropped without a word.
func TestSecondDocumentRefused(t *testing.T) {
	for _, doc := range []string{
		"log: {level: debug}\n---\nlog: {level: error}\n",
		"log: {level: debug}\n---\n---\nhttp: {addr: \"a:1\"}\n",
		"---\nlog: {level: debug}\n---\n- x\n",
	} {
		cfg := Default()
		err := decodeYAML([]byte(doc), &cfg)
		if err == nil || !strings.Contains(err.Error(), "second YAML document") || !errorNamesPlace.MatchString(err.Error()) {
			t.Errorf("%q: got error %v, want one naming the second document's line", doc, err)
		}
	}
	for _, doc := range []string{"---\nlog: {level: debug}\n...\n", "log: {level: debug}\n---\n", "log: {level: debug}\n---\n# nothing\n---\n~\n"} {
		cfg := Default()
		if err := decodeYAML([]byte(doc), &cfg); err != nil {
			t.Errorf("%q: one document and empty ones: got %v, want nil", doc, err)
		}
	}
}
