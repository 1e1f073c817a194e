package httppush_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/httppush"
)

func incident(n int) string {
	return fmt.Sprintf(`{"source":"datix","local_id":"INC-%d","event_type":"incident","occurred_at":"2025-03-14","description":"Missed dose %d"}`, n, n)
}

func serve(t *testing.T, cfg httppush.Config, deps ingest.Deps) (*httppush.Adapter, string) {
	t.Helper()
	a := httppush.New(cfg, deps)
	mux := http.NewServeMux()
	a.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return a, srv.URL + "/api/v1/incidents"
}

func post(ctx context.Context, url, contentType, body string, hdr map[string]string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestConformance runs the suite every adapter passes.
func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Subject{
		Kind: ingest.KindIncident,
		New: func(t *testing.T, deps ingest.Deps) (ingest.Adapter, adaptertest.Sender) {
			a, url := serve(t, httppush.Config{PublishTimeout: time.Minute}, deps)
			return a, func(ctx context.Context, n int) (adaptertest.Outcome, error) {
				resp, _, err := post(ctx, url, "application/json", incident(n), nil)
				if err != nil {
					return 0, err
				}
				switch resp.StatusCode {
				case http.StatusAccepted:
					return adaptertest.Accepted, nil
				case http.StatusServiceUnavailable:
					return adaptertest.Retry, nil
				}
				return adaptertest.Refused, nil
			}
		},
	})
}

// TestAnswers pins the push API's HTTP answers (README, "Send an incident").
func TestAnswers(t *testing.T) {
	store := adaptertest.NewStore()
	token := "0123456789abcdef-token"
	_, url := serve(t, httppush.Config{MaxBodyBytes: 2048, Tokens: httppush.Tokens(token), RetryAfter: 7 * time.Second},
		ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop()})
	auth := map[string]string{"Authorization": "Bearer " + token}
	ctx := context.Background()
	for _, tc := range []struct {
		name, contentType, body string
		hdr                     map[string]string
		fail                    bool
		failWith                error
		wantStatus              int
		wantBody                string
		wantHeader              [2]string
	}{
		{name: "accepted", contentType: "application/json", body: incident(1), hdr: auth, wantStatus: 202,
			wantBody: `{"id":"datix.`},
		{name: "duplicate", contentType: "application/json", body: incident(1), hdr: auth, wantStatus: 202,
			wantBody: `"duplicate":true`},
		{name: "no token", contentType: "application/json", body: incident(2), wantStatus: 401,
			wantBody: `{"error":"missing or invalid bearer token"}` + "\n"},
		{name: "wrong type", contentType: "text/plain", body: incident(2), hdr: auth, wantStatus: 415,
			wantBody: `{"error":"Content-Type must be application/json"}` + "\n"},
		{name: "too large", contentType: "application/json", body: strings.Repeat(" ", 3000), hdr: auth, wantStatus: 413,
			wantBody: `{"error":"body is larger than the limit of 2048 bytes"}` + "\n"},
		{name: "invalid", contentType: "application/json", body: `{"source":"datix"}`, hdr: auth, wantStatus: 400,
			wantBody: `{"error":"invalid incident","problems":[`},
		{name: "unavailable", contentType: "application/json", body: incident(3), hdr: auth, fail: true, wantStatus: 503,
			wantBody:   `{"error":"the gateway cannot store the incident durably right now; retry later"}` + "\n",
			wantHeader: [2]string{"Retry-After", "7"}},
		{name: "unavailable naming the store's cause", contentType: "application/json", body: incident(5), hdr: auth,
			failWith: ingest.Unavailable("no JetStream quorum", nil), wantStatus: 503,
			wantBody:   `{"error":"the gateway cannot store the incident durably right now: no JetStream quorum; retry later"}` + "\n",
			wantHeader: [2]string{"Retry-After", "7"}},
		{name: "too large to store", contentType: "application/json", body: incident(4), hdr: auth, failWith: ingest.ErrTooLarge, wantStatus: 413,
			wantBody: `{"error":"the incident is larger than the gateway's store takes in one message; shorten it"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fail {
				store.Fail(fmt.Errorf("%w: test", ingest.ErrUnavailable))
				defer store.Fail(nil)
			}
			if tc.failWith != nil {
				store.Fail(fmt.Errorf("%w: test", tc.failWith))
				defer store.Fail(nil)
			}
			resp, body, err := post(ctx, url, tc.contentType, tc.body, tc.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status: got %d, want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body: got %q, want it to contain %q", body, tc.wantBody)
			}
			if tc.wantHeader[0] != "" && resp.Header.Get(tc.wantHeader[0]) != tc.wantHeader[1] {
				t.Errorf("%s: got %q, want %q", tc.wantHeader[0], resp.Header.Get(tc.wantHeader[0]), tc.wantHeader[1])
			}
		})
	}
	if n := len(store.Records()); n != 1 {
		t.Errorf("stored: got %d, want 1", n)
	}
	if !bytes.Equal(store.Records()[0].Data, []byte(incident(1))) {
		t.Error("stored data is not the body as received")
	}
}

func TestFactoryIsRegistered(t *testing.T) {
	m, ok := ingest.Lookup(httppush.Section)
	if !ok || m.Kind != httppush.Kind {
		t.Fatalf("section %q: got %+v, %v, want the httppush module", httppush.Section, m, ok)
	}
	f := m.Factory
	if _, err := f(ingest.Deps{Settings: httppush.Config{MaxBodyBytes: 10}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f(ingest.Deps{Settings: 3}); err == nil {
		t.Error("wrong settings type: got no error")
	}
}

// TestRefusalsAreCounted: every refusal shows in psgw_ingest_errors_total by reason, as
// docs/api.md says, scraped from /metrics, and on the adapter's status.
func TestRefusalsAreCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := adaptertest.NewStore()
	r, err := ingest.NewRunner(httppush.Factory, ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop(), Metrics: reg,
		Settings: httppush.Config{MaxBodyBytes: 2048, Tokens: httppush.Tokens("tok-123456"), PublishTimeout: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	r.Adapter().(ingest.HTTPAdapter).Routes(mux)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/api/v1/incidents"
	auth := map[string]string{"Authorization": "Bearer tok-123456"}
	ctx := context.Background()
	for _, tc := range []struct {
		name, contentType, body string
		hdr                     map[string]string
		prepare                 func()
		want                    int
	}{
		{"no token", "application/json", incident(1), nil, nil, 401},
		{"wrong token", "application/json", incident(1), map[string]string{"Authorization": "Bearer nope"}, nil, 401},
		{"wrong type", "text/csv", incident(1), auth, nil, 415},
		{"too large", "application/json", strings.Repeat(" ", 3000), auth, nil, 413},
		{"malformed", "application/json", `{`, auth, nil, 400},
		{"invalid", "application/json", `{"source":"datix"}`, auth, nil, 400},
		{"queue down", "application/json", incident(2), auth, func() { store.Fail(fmt.Errorf("%w: test", ingest.ErrUnavailable)) }, 503},
		{"store too slow", "application/json", incident(3), auth, func() { store.Fail(nil); store.Hold() }, 503},
		{"accepted", "application/json", incident(4), auth, func() { store.Release() }, 202},
	} {
		if tc.prepare != nil {
			tc.prepare()
		}
		resp, body, err := post(ctx, url, tc.contentType, tc.body, tc.hdr)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.StatusCode != tc.want {
			t.Fatalf("%s: got %d, want %d (%s)", tc.name, resp.StatusCode, tc.want, body)
		}
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`psgw_ingest_errors_total{adapter="httppush",reason="unauthorized"} 2`,
		`psgw_ingest_errors_total{adapter="httppush",reason="content_type"} 1`,
		`psgw_ingest_errors_total{adapter="httppush",reason="too_large"} 1`,
		`psgw_ingest_errors_total{adapter="httppush",reason="invalid"} 2`,
		`psgw_ingest_errors_total{adapter="httppush",reason="unavailable"} 2`,
		`psgw_ingest_records_total{adapter="httppush"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", metrics)
	}
	st := r.Status()
	if st.Rejected != 6 || st.LastRejection != "invalid" || st.Errors != 2 {
		t.Errorf("status: got rejected %d (last %q), errors %d; want 6 (last invalid) and 2", st.Rejected, st.LastRejection, st.Errors)
	}
}

// TestWarnings: a misspelt field used to vanish with a bare 202. Now the 202 names it with
// a suggestion (docs/api.md, "Ingest"), mapping warnings join it when MapWarnings is set, and with
// UnknownFields "reject" the same warnings are a 400 and nothing is stored.
func TestWarnings(t *testing.T) {
	misspelt := `{"source":"datix","local_id":"W-1","event_type":"incident","occurred_at":"2025-03-14","description":"Fall",
		"patients":[{"physicalHarm":"severe"}],"location":{"organisation":"ZZZ99"}}`
	builder := &fhir.Builder{Version: 5}
	ctx := context.Background()

	t.Run("warn", func(t *testing.T) {
		store := adaptertest.NewStore()
		_, url := serve(t, httppush.Config{}, ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop()})
		resp, body, err := post(ctx, url, "application/json", misspelt, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Status   string
			Warnings []map[string]string
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 202 {
			t.Fatalf("got %d %s (%v), want 202", resp.StatusCode, body, err)
		}
		want := []map[string]string{{"field": "patients[0].physicalHarm", "message": "unknown field, ignored; did you mean physical_harm?"}}
		if fmt.Sprint(got.Warnings) != fmt.Sprint(want) {
			t.Errorf("warnings: got %v, want %v", got.Warnings, want)
		}
		// A clean incident's 202 has no warnings member at all.
		_, body, _ = post(ctx, url, "application/json", incident(9), nil)
		if strings.Contains(body, "warnings") {
			t.Errorf("clean incident: got %s", body)
		}
	})

	t.Run("with mapping warnings", func(t *testing.T) {
		store := adaptertest.NewStore()
		_, url := serve(t, httppush.Config{MapWarnings: builder.Warnings}, ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop()})
		_, body, err := post(ctx, url, "application/json", misspelt, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"field":"patients[0].physicalHarm"`, `"field":"location.organisation","message":"\"ZZZ99\" is not in the taxonomy's list of ODS organisation codes`} {
			if !strings.Contains(body, want) {
				t.Errorf("202 body %s lacks %s", body, want)
			}
		}
	})

	t.Run("reject", func(t *testing.T) {
		store := adaptertest.NewStore()
		_, url := serve(t, httppush.Config{UnknownFields: httppush.UnknownFieldsReject}, ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop()})
		resp, body, err := post(ctx, url, "application/json", misspelt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 || !strings.Contains(body, `"problems":[{"field":"patients[0].physicalHarm","message":"unknown field, ignored; did you mean physical_harm?"}]`) {
			t.Errorf("got %d %s, want 400 naming the field", resp.StatusCode, body)
		}
		if n := len(store.Records()); n != 0 {
			t.Errorf("stored %d records, want none", n)
		}
		if resp, body, _ := post(ctx, url, "application/json", incident(1), nil); resp.StatusCode != 202 {
			t.Errorf("clean incident: got %d %s, want 202", resp.StatusCode, body)
		}
	})
}

// TestRefusesIdentifyingLocalIDs: an NHS number as the local id, in any spelling, and ids with
// characters that do not show, are refused with 400 naming local_id, as CSV and SQL refuse
// them, and nothing is stored; the answer never quotes the id (issue 15, item 4).
func TestRefusesIdentifyingLocalIDs(t *testing.T) {
	store := adaptertest.NewStore()
	_, url := serve(t, httppush.Config{}, ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop()})
	for _, id := range []string{
		"9434765919", "943 476 5919", "943-476-5919", "(943) 476 5919", "９４３４７６５９１９", "943\\u00ad476\\u00ad5919",
		"DX-1\\u202e", "DX\\u200b-1", "\\ufeffDX-1", "DX\\u2066-1\\u2069", "DX-1\\u0000",
	} {
		body := `{"source":"datix","local_id":"` + id + `","event_type":"risk","description":"x"}`
		resp, answer, err := post(context.Background(), url, "application/json", body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(answer, `"field":"local_id"`) {
			t.Errorf("%s: got %d %s, want 400 naming local_id", id, resp.StatusCode, answer)
		}
		if strings.Contains(answer, "9434765919") || strings.Contains(answer, "943 476") || strings.Contains(answer, "DX") {
			t.Errorf("%s: the answer %s quotes the id", id, answer)
		}
	}
	if n := len(store.Records()); n != 0 {
		t.Errorf("stored %d records, want none", n)
	}
}

// TestTokensBoundToSources: a token bound to sources posts for them and gets 403, naming the
// source field, for any other; a plain token posts for any source; an unknown one gets 401.
func TestTokensBoundToSources(t *testing.T) {
	store := adaptertest.NewStore()
	rej := map[string]int{}
	var mu sync.Mutex
	_, url := serve(t, httppush.Config{Tokens: []httppush.IngestToken{
		{Token: "datix-token-0123456789", Sources: []string{"datix"}},
		{Token: "any-source-0123456789"},
		{Token: "two-sources-0123456789", Sources: []string{"ulysses", "datix"}},
	}}, ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop(), OnReject: func(r string) { mu.Lock(); rej[r]++; mu.Unlock() }})
	body := func(source string, n int) string {
		return strings.Replace(incident(n), `"source":"datix"`, `"source":"`+source+`"`, 1)
	}
	for _, tc := range []struct {
		name, token, source string
		want                int
		wantBody            string
	}{
		{"bound token, its source", "datix-token-0123456789", "datix", 202, `"status":"accepted"`},
		{"bound token, another source", "datix-token-0123456789", "ulysses", 403,
			`{"error":"this token may not post incidents for this source","problems":[{"field":"source","message":"is not a source this token may post for (datix); http.ingest_tokens binds it"}]}`},
		{"bound token, a bad body for another source", "datix-token-0123456789", "ulysses\",\"revision\":0,\"x\":\"y", 403, `"field":"source"`},
		{"token with two sources", "two-sources-0123456789", "ulysses", 202, `"status":"accepted"`},
		{"plain token, any source", "any-source-0123456789", "ulysses", 202, `"status":"accepted"`},
		{"unknown token", "unknown-token-0123456789", "datix", 401, "missing or invalid bearer token"},
		{"bound token, no source", "datix-token-0123456789", "", 400, `"field":"source"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got, err := post(context.Background(), url, "application/json", body(tc.source, len(tc.name)), map[string]string{"Authorization": "Bearer " + tc.token})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want || !strings.Contains(got, tc.wantBody) {
				t.Errorf("got %d %s, want %d with %s", resp.StatusCode, got, tc.want, tc.wantBody)
			}
		})
	}
	if n := len(store.Records()); n != 3 {
		t.Errorf("stored %d incidents, want 3", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if rej[httppush.ReasonForbidden] != 2 {
		t.Errorf("forbidden: counted %d, want 2", rej[httppush.ReasonForbidden])
	}
}

// TestReloadSecrets: tokens taken while the adapter serves (ingest.SecretsReloader) apply to
// the next request, each bound to its sources; settings with no token at all are refused
// and the running tokens kept, so that a reload never turns ingest auth off. With no token
// at start (ingest auth off) a reload may turn it on.
func TestReloadSecrets(t *testing.T) {
	store := adaptertest.NewStore()
	deps := ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop()}
	a, url := serve(t, httppush.Config{Tokens: httppush.Tokens("old-token-0123456789")}, deps)
	n := 0
	status := func(token, source string) int {
		t.Helper()
		n++
		body := strings.Replace(incident(n), `"source":"datix"`, `"source":"`+source+`"`, 1)
		resp, _, err := post(context.Background(), url, "application/json", body, map[string]string{"Authorization": "Bearer " + token})
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	next := &httppush.Config{Tokens: []httppush.IngestToken{{Token: "new-token-0123456789", Sources: []string{"datix"}}}}
	if err := a.ReloadSecrets(next); err != nil {
		t.Fatal(err)
	}
	if status("new-token-0123456789", "datix") != 202 || status("new-token-0123456789", "ulysses") != 403 || status("old-token-0123456789", "datix") != 401 {
		t.Error("after the reload: want the new token let in for datix only and the old refused")
	}
	err := a.ReloadSecrets(&httppush.Config{})
	if err == nil || !strings.Contains(err.Error(), "http.ingest_tokens") {
		t.Errorf("a reload with no token: got %v, want a refusal naming http.ingest_tokens", err)
	}
	if status("new-token-0123456789", "datix") != 202 || status("", "datix") != 401 {
		t.Error("after a refused reload: want the running token kept and ingest auth on")
	}

	open, openURL := serve(t, httppush.Config{}, deps)
	if err := open.ReloadSecrets(next); err != nil {
		t.Fatal(err)
	}
	url = openURL
	if status("", "datix") != 401 || status("new-token-0123456789", "datix") != 202 {
		t.Error("ingest auth off at start, then a token reloaded: want it required")
	}
}
