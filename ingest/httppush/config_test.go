package httppush_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/httppush"
)

// TestSettingsValidate: the push API's keys of the http section, each problem naming its key.
func TestSettingsValidate(t *testing.T) {
	if !httppush.Defaults().Enabled() {
		t.Error("the push API is off; it is part of every gateway")
	}
	adaptertest.CheckSettings(t, httppush.Defaults, ingest.Shared{}, []adaptertest.SettingsCase[httppush.Config]{
		{Name: "defaults", Mutate: func(*httppush.Config) {}, Want: ""},
		{Name: "body limit too small", Mutate: func(c *httppush.Config) { c.MaxBodyBytes = 100 }, Want: "http.max_body_bytes: must be 1024 to 16777216, got 100"},
		{Name: "body limit too large", Mutate: func(c *httppush.Config) { c.MaxBodyBytes = 17 << 20 }, Want: "http.max_body_bytes: must be 1024 to 16777216"},
		{Name: "short token", Mutate: func(c *httppush.Config) { c.Tokens = httppush.Tokens("aaaaaaaaaaaaaaaa", "short") }, Want: "http.ingest_tokens[1]: must be at least 16 characters"},
	})
}

// TestFactoryTakesWhatTheGatewayGives: built from its registered settings, the API waits for
// the store no longer than the gateway's publish timeout (queue.publish_timeout, in
// Deps.Shared), and refuses with 413 a body the store could not take in one message, even
// under a larger http.max_body_bytes.
func TestFactoryTakesWhatTheGatewayGives(t *testing.T) {
	m, ok := ingest.Lookup(httppush.Section)
	if !ok {
		t.Fatal("the http section is not registered")
	}
	store := adaptertest.NewStore()
	a, err := m.Factory(ingest.Deps{Name: httppush.Kind, Settings: m.New(), Publisher: store, Logger: zerolog.Nop(),
		Shared: ingest.Shared{PublishTimeout: 50 * time.Millisecond}, MaxRecordBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.(ingest.HTTPAdapter).Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/api/v1/incidents"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	big := fmt.Sprintf(`{"source":"datix","local_id":"BIG","event_type":"risk","description":%q}`, strings.Repeat("x", 3000))
	if resp, body, err := post(ctx, url, "application/json", big, nil); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the store's limit: got %v %q, %v, want 413", resp.Status, body, err)
	}
	store.Hold()
	defer store.Release()
	start := time.Now()
	if resp, _, err := post(ctx, url, "application/json", incident(1), nil); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a store that does not answer: got %v, %v, want 503", resp, err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("waited %s for the store, want about the 50ms of queue.publish_timeout", waited)
	}
}
