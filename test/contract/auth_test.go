package contract

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// §1, §2: ingest tokens (http.ingest_tokens, and a *_file), configured sources, and the
// subscription key from PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE.
func TestIngestAuthAndConfiguredSources(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	dir := t.TempDir()
	const tokA, tokB, tokFile = "ingest-token-alpha-000001", "ingest-token-beta-0000002", "ingest-token-from-file-03"
	keyFile := filepath.Join(dir, "key")
	tokensFile := filepath.Join(dir, "tokens")
	cfg := filepath.Join(dir, "psgw.yaml")
	for p, c := range map[string]string{
		keyFile:    simKey + "\n",
		tokensFile: tokFile + "\n",
		cfg: fmt.Sprintf(`http:
  ingest_tokens: [%q, %q]
sources:
  datix: {}
  ward_app: {}
national:
  base_url: %s
`, tokA, tokB, s.url),
	} {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := startGateway(t, gwOpts{
		args:   []string{"--config", cfg},
		noMLLP: true,
		env: map[string]string{
			"PSGW_MLLP_ADDR":                      "",
			"PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE": keyFile,
			"PSGW_HTTP_INGEST_TOKENS_FILE":        tokensFile,
		},
	})
	post := func(auth string, body []byte) httpResult {
		h := map[string]string{"Content-Type": "application/json"}
		if auth != "" {
			h["Authorization"] = auth
		}
		return doReq(t, http.MethodPost, g.url("/api/v1/incidents"), bytes.NewReader(body), h)
	}
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong-token-0000000000", tokA, "Basic " + tokA, "Bearer " + tokA + "x", "Bearer " + strings.ToUpper(tokA), "Bearer " + tokA[:len(tokA)-1]} {
		t.Run("401 "+auth, func(t *testing.T) {
			id := uid("AUTH")
			r := post(auth, mustJSON(t, incident(id)))
			if r.status != http.StatusUnauthorized {
				t.Errorf("Authorization %q: want 401, got %s", auth, r)
			}
			if _, ok := g.getRecord(t, "datix", id); ok {
				t.Errorf("an unauthorised incident has a record")
			}
		})
	}
	t.Run("401 before looking at the body", func(t *testing.T) {
		if r := post("", []byte("{not json")); r.status != http.StatusUnauthorized {
			t.Errorf("malformed body without a token: want 401, got %s", r)
		}
	})
	var delivered string
	for i, tok := range []string{tokA, tokB, tokFile} {
		t.Run(fmt.Sprintf("202 with configured token %d", i+1), func(t *testing.T) {
			id := uid("AUTHOK")
			checkAccepted(t, post("Bearer "+tok, mustJSON(t, fullIncident(id))))
			delivered = id
		})
	}
	t.Run("unconfigured source is 400 naming source", func(t *testing.T) {
		inc := incident(uid("SRC"))
		inc["source"] = "not_configured"
		fields := check400(t, post("Bearer "+tokA, mustJSON(t, inc)))
		if !contains(fields, "source") {
			t.Errorf("problems name %q, want source", fields)
		}
	})
	t.Run("another configured source is accepted", func(t *testing.T) {
		inc := incident(uid("SRC"))
		inc["source"] = "ward_app"
		checkAccepted(t, post("Bearer "+tokB, mustJSON(t, inc)))
	})
	t.Run("key from PSGW_NATIONAL_SUBSCRIPTION_KEY_FILE works", func(t *testing.T) {
		if delivered == "" {
			t.Fatal("nothing was accepted")
		}
		g.waitRecord(t, "datix", delivered, 20*time.Second, "delivered", func(r record) bool { return r.State == "delivered" })
	})
}

// §2, §3: when the gateway cannot store durably, ingest answers 503 with Retry-After and
// keeps nothing, and MLLP answers AE.
func TestStorageFull(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gwOpts{env: map[string]string{
		"PSGW_QUEUE_RAW_MAX_BYTES":    "1048576",
		"PSGW_QUEUE_PUBLISH_TIMEOUT":  "2s",
		"PSGW_MLLP_PUBLISH_TIMEOUT":   "2s",
		"PSGW_QUEUE_DUPLICATE_WINDOW": "1h",
	}})
	size := 300_000
	var stored []map[string]any
	var refused httpResult
	var refusedID string
	for i := 0; i < 80; i++ {
		id := uid("FULL")
		inc := incident(id)
		inc["x_padding"] = strings.Repeat("f", size)
		r := g.postIncident(t, inc)
		if r.status == http.StatusAccepted {
			stored = append(stored, inc)
			continue
		}
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("filling the raw stream: want 202 or 503, got %s", r)
		}
		refused, refusedID = r, id
		if size <= 64 {
			break
		}
		size /= 4
	}
	if refusedID == "" {
		t.Fatalf("never refused; stored %d incidents", len(stored))
	}
	if refused.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %s", refused)
	}
	if _, ok := g.getRecord(t, "datix", refusedID); ok {
		t.Errorf("an incident answered 503 has a record: it was half-accepted")
	}
	t.Run("MLLP answers AE", func(t *testing.T) {
		m := dialMLLP(t, g.mllp)
		ctrl := uid("FULLADT")
		ack := exchange(t, m, adtMessage("A08", ctrl, pidPlain(), "NTE|1||"+strings.Repeat("n", 4000)))
		code, got, _ := msa(ack)
		if code != "AE" || got != ctrl {
			t.Errorf("ADT with storage full: want AE for %s, got %q", ctrl, ack)
		}
	})
	t.Run("an incident already stored is still a duplicate", func(t *testing.T) {
		if len(stored) == 0 {
			t.Fatal("nothing stored")
		}
		r := g.postIncident(t, stored[0])
		if r.status != http.StatusAccepted {
			t.Errorf("re-send of a stored incident while storage is full: want 202 duplicate, got %s", r)
			return
		}
		if a := checkAccepted(t, r); !*a.Duplicate {
			t.Errorf("re-send of a stored incident: duplicate false")
		}
	})
	g.healthy(t)
}
