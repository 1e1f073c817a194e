package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const testKey = "test-key-primary"

// harness is a simulator behind a real HTTP server, and a client that never reuses
// connections, so a dropped connection is seen by exactly one request.
type harness struct {
	t      *testing.T
	sim    *Simulator
	srv    *httptest.Server
	client *http.Client
}

func newHarness(t *testing.T, edit func(*Options)) *harness {
	t.Helper()
	opts := Options{SubscriptionKeys: []string{testKey}, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)}
	if edit != nil {
		edit(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Close does not wait for handlers of hijacked connections (the reset and cut-short
	// faults), whose deferred log line would then reach t after the test ended: wait for them.
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); handlers.Wait() })
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &harness{t: t, sim: s, srv: srv, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decoding answer %d %q: %v", r.status, r.body, err)
	}
	return m
}

// send makes one request; a nil header map means the valid key and application/json.
func (h *harness) send(method, path string, body []byte, header map[string]string) (reply, error) {
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if header == nil {
		header = map[string]string{keyHeader: testKey, "Content-Type": "application/json"}
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{resp.StatusCode, resp.Header, b}, nil
}

func (h *harness) must(method, path string, body []byte, header map[string]string) reply {
	h.t.Helper()
	r, err := h.send(method, path, body, header)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (h *harness) post(res map[string]any) reply {
	h.t.Helper()
	return h.must(http.MethodPost, collectionPath, marshal(h.t, res), nil)
}

func (h *harness) put(id string, res map[string]any) reply {
	h.t.Helper()
	return h.must(http.MethodPut, collectionPath+"/"+id, marshal(h.t, res), nil)
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payload loads testdata/valid-v<version>.json afresh, so each test may change it freely.
func payload(t testing.TB, version string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "valid-v"+version+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// at follows a path of map keys and slice indexes through a decoded JSON value.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

// referenceNumber finds the national reference the way the README tells clients to: by
// walking every extension for the inner url, not by position.
func referenceNumber(res map[string]any) string {
	exts, _ := res["extension"].([]any)
	for _, e := range exts {
		inner, _ := at(e, "extension").([]any)
		for _, ie := range inner {
			if at(ie, "url") == "ReferenceNumber" {
				s, _ := at(ie, "valueString").(string)
				return s
			}
		}
	}
	return ""
}

// wantOutcome checks the answer is an OperationOutcome with an issue at path (a prefix
// match, so "AdverseEvent.contained" finds "AdverseEvent.contained[1].id"); rule is
// optional. It returns the issues.
func wantOutcome(t *testing.T, r reply, status int, path, rule string) []any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status: got %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("Content-Type: got %q, want application/fhir+json", ct)
	}
	oo := r.json(t)
	if oo["resourceType"] != "OperationOutcome" {
		t.Fatalf("resourceType: got %v, want OperationOutcome", oo["resourceType"])
	}
	issues, _ := oo["issue"].([]any)
	for _, is := range issues {
		if at(is, "severity") != "error" {
			t.Errorf("severity: got %v, want error", at(is, "severity"))
		}
		if s, _ := at(is, "details", "text").(string); s == "" {
			t.Errorf("issue without details.text: %v", is)
		}
	}
	if path == "" && rule == "" {
		return issues
	}
	for _, is := range issues {
		d, _ := at(is, "diagnostics").(string)
		if strings.HasPrefix(d, path) && (rule == "" || at(is, "details", "coding", 0, "code") == rule) {
			return issues
		}
	}
	t.Fatalf("no issue at %q with rule %q; got %s", path, rule, r.body)
	return nil
}
