package contract

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psgw/psgw/test/wait"
)

const aePath = "/adverse-event/fhir/AdverseEvent"

var (
	payloadMu    sync.Mutex
	payloadCache = map[string][]byte{}
)

// validPayload is the AdverseEvent `psgw map` produces for a full incident, for taxonomy v.
func validPayload(t *testing.T, v string) map[string]any {
	t.Helper()
	payloadMu.Lock()
	defer payloadMu.Unlock()
	b, ok := payloadCache[v]
	if !ok {
		dir := t.TempDir()
		f := filepath.Join(dir, "incident.json")
		if err := os.WriteFile(f, mustJSON(t, fullIncident("SIM-PAYLOAD")), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runPsgw(t, dir, append(cleanEnv(), "PSGW_NATIONAL_TAXONOMY_VERSION="+v), nil, 30*time.Second, "map", "--source", "datix", f)
		if r.code != 0 {
			t.Fatalf("psgw map (taxonomy %s): exit %d: %s", v, r.code, r.stderr)
		}
		b = []byte(r.stdout)
		payloadCache[v] = b
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func simReq(t *testing.T, method, u string, body any, key string) httpResult {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		rd = bytes.NewReader(mustJSON(t, b))
	}
	h := map[string]string{"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
	if key != "" {
		h["Ocp-Apim-Subscription-Key"] = key
	}
	return doReq(t, method, u, rd, h)
}

func decodeObj(t *testing.T, r httpResult) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r)
	}
	return m
}

// checkOutcome wants 400 or 422 with an OperationOutcome.
func checkOutcome(t *testing.T, r httpResult) {
	t.Helper()
	if r.status != 400 && r.status != 422 {
		t.Errorf("want 400 or 422, got %s", r)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil || m["resourceType"] != "OperationOutcome" {
		t.Errorf("want an OperationOutcome body, got %s", r)
		return
	}
	if is, _ := m["issue"].([]any); len(is) == 0 {
		t.Errorf("OperationOutcome without issues: %s", r)
	}
}

// §4: POST creates (201, id, meta.versionId, ReferenceNumber); PUT amends with a matching id.
func TestSimCreateAndAmend(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	for _, v := range []string{"5", "6"} {
		t.Run("taxonomy "+v, func(t *testing.T) {
			p := validPayload(t, v)
			r := simReq(t, http.MethodPost, s.url+aePath, p, simKey)
			if r.status != http.StatusCreated {
				t.Fatalf("POST: want 201, got %s", r)
			}
			created := decodeObj(t, r)
			id, _ := created["id"].(string)
			meta, _ := created["meta"].(map[string]any)
			ver, _ := meta["versionId"].(string)
			if id == "" || ver == "" {
				t.Errorf("201 body lacks id (%q) or meta.versionId (%q)", id, ver)
			}
			if created["resourceType"] != "AdverseEvent" {
				t.Errorf("201 body is not an AdverseEvent: %v", created["resourceType"])
			}
			if referenceNumber(created) == "" {
				t.Errorf("201 body has no ReferenceNumber extension with a valueString")
			}
			// No idempotency key: the same payload again is a second event.
			r2 := simReq(t, http.MethodPost, s.url+aePath, p, simKey)
			if r2.status != http.StatusCreated {
				t.Fatalf("second POST: %s", r2)
			}
			if id2, _ := decodeObj(t, r2)["id"].(string); id2 == id {
				t.Errorf("two POSTs got the same id %s", id)
			}
			// Amend.
			created["description"] = "Amended by the contract test"
			r3 := simReq(t, http.MethodPut, s.url+aePath+"/"+id, created, simKey)
			if r3.status != 200 && r3.status != 201 {
				t.Fatalf("PUT with the body's id equal to the URL's: %s", r3)
			}
			if got, _ := decodeObj(t, r3)["id"].(string); got != id {
				t.Errorf("PUT answered id %q, want %q", got, id)
			}
			ev, ok := s.eventByNationalID(t, id)
			if !ok {
				t.Fatalf("event %s not in /_sim/events", id)
			}
			if d, _ := ev.resource()["description"].(string); d != "Amended by the contract test" {
				t.Errorf("/_sim/events holds description %q after the PUT", d)
			}
			// Mismatched or missing id.
			created["id"] = id + "x"
			checkOutcome(t, simReq(t, http.MethodPut, s.url+aePath+"/"+id, created, simKey))
			delete(created, "id")
			checkOutcome(t, simReq(t, http.MethodPut, s.url+aePath+"/"+id, created, simKey))
		})
	}
}

// §4: the CapabilityStatement lists the AdverseEvent profiles, ending -5 and -6.
func TestSimMetadata(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	r := simReq(t, http.MethodGet, s.url+"/adverse-event/fhir/metadata", nil, simKey)
	if r.status != 200 {
		t.Fatalf("GET metadata: %s", r)
	}
	m := decodeObj(t, r)
	if m["resourceType"] != "CapabilityStatement" {
		t.Fatalf("resourceType %v, want CapabilityStatement", m["resourceType"])
	}
	var ps []string
	rest, _ := m["rest"].([]any)
	for _, re := range rest {
		rm, _ := re.(map[string]any)
		res, _ := rm["resource"].([]any)
		for _, x := range res {
			xm, _ := x.(map[string]any)
			if xm["type"] != "AdverseEvent" {
				continue
			}
			if p, ok := xm["profile"].(string); ok {
				ps = append(ps, p)
			}
			sp, _ := xm["supportedProfile"].([]any)
			for _, p := range sp {
				if s, ok := p.(string); ok {
					ps = append(ps, s)
				}
			}
		}
	}
	for _, suf := range []string{"-5", "-6"} {
		found := false
		for _, p := range ps {
			if strings.HasSuffix(p, suf) {
				found = true
			}
		}
		if !found {
			t.Errorf("no AdverseEvent profile ending %s; profiles %q", suf, ps)
		}
	}
}

// §4: a missing or wrong key gets 401 with a plain JSON body, not an OperationOutcome.
func TestSimSubscriptionKey(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	p := validPayload(t, "5")
	created := decodeObj(t, simReq(t, http.MethodPost, s.url+aePath, p, simKey))
	id, _ := created["id"].(string)
	reqs := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, aePath, p},
		{http.MethodPut, aePath + "/" + id, created},
		{http.MethodGet, "/adverse-event/fhir/metadata", nil},
	}
	for _, rq := range reqs {
		for _, key := range []string{"", "wrong-key", strings.ToUpper(simKey), simKey + "x"} {
			t.Run(rq.method+" key "+strconv.Quote(key), func(t *testing.T) {
				r := simReq(t, rq.method, s.url+rq.path, rq.body, key)
				if r.status != http.StatusUnauthorized {
					t.Fatalf("want 401, got %s", r)
				}
				var m map[string]any
				if err := json.Unmarshal(r.body, &m); err != nil {
					t.Fatalf("401 body is not JSON: %s", r.body)
				}
				if m["resourceType"] != nil {
					t.Errorf("401 body is a FHIR resource (%v); the contract wants plain JSON", m["resourceType"])
				}
			})
		}
	}
	// Header names are case-insensitive.
	r := doReq(t, http.MethodGet, s.url+"/adverse-event/fhir/metadata", nil, map[string]string{"ocp-apim-subscription-key": simKey})
	if r.status != 200 {
		t.Errorf("lower-case header name: %s", r)
	}
	if n := len(s.events(t)); n != 1 {
		t.Errorf("%d events stored; refused requests must store nothing", n)
	}
}

// §4: payload errors get 400 or 422 with an OperationOutcome, and nothing is stored.
func TestSimRejectsBadPayloads(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	base := func() map[string]any { return validPayload(t, "5") }
	patientOf := func(m map[string]any) map[string]any {
		for _, c := range m["contained"].([]any) {
			if cm := c.(map[string]any); cm["resourceType"] == "Patient" {
				return cm
			}
		}
		t.Fatalf("the mapped payload has no contained Patient")
		return nil
	}
	cases := map[string]func() any{
		"not JSON":       func() any { return []byte("{not json") },
		"empty body":     func() any { return []byte("") },
		"JSON array":     func() any { return []byte("[]") },
		"wrong resource": func() any { m := base(); m["resourceType"] = "Patient"; return m },
		"no profile":     func() any { m := base(); delete(m, "meta"); return m },
		"profile v7": func() any {
			m := base()
			m["meta"] = map[string]any{"profile": []any{strings.TrimSuffix(profiles(m)[0], "-5") + "-7"}}
			return m
		},
		"NHS identifier": func() any {
			m := base()
			patientOf(m)["identifier"] = []any{map[string]any{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhsFull}}
			return m
		},
		"birth date":   func() any { m := base(); patientOf(m)["birthDate"] = dobFull; return m },
		"patient name": func() any { m := base(); patientOf(m)["name"] = []any{map[string]any{"family": "Doe"}}; return m },
		"patient address": func() any {
			m := base()
			patientOf(m)["address"] = []any{map[string]any{"postalCode": "LS1 4AP"}}
			return m
		},
		"NHS number in the text": func() any { m := base(); m["description"] = "Patient " + nhsFull + " fell"; return m },
		"dangling contained reference": func() any {
			m := base()
			m["subject"] = map[string]any{"reference": "#nobody"}
			return m
		},
		"unknown event type code": func() any {
			m := base()
			m["type"] = map[string]any{"coding": []any{map[string]any{"code": "99"}}}
			return m
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			checkOutcome(t, simReq(t, http.MethodPost, s.url+aePath, mk(), simKey))
		})
	}
	if n := len(s.events(t)); n != 0 {
		t.Errorf("%d bad payloads were stored", n)
	}
	// A good one still passes, so the above were refused for their faults.
	if r := simReq(t, http.MethodPost, s.url+aePath, base(), simKey); r.status != 201 {
		t.Errorf("the unmodified payload: %s", r)
	}
}

// §4: the simulator can be told to fail.
func TestSimFaultFlags(t *testing.T) {
	t.Parallel()
	quick := &http.Client{Timeout: 5 * time.Second}
	post := func(t *testing.T, s *simProc) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, s.url+aePath, bytes.NewReader(mustJSON(t, validPayload(t, "5"))))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Ocp-Apim-Subscription-Key", simKey)
		resp, err := quick.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	validPayload(t, "5") // build it once, before the parallel subtests
	t.Run("error rate", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, "--error-rate", "1")
		for i := 0; i < 3; i++ {
			resp, err := post(t, s)
			if err != nil || resp.StatusCode < 500 {
				t.Fatalf("--error-rate 1: want 5xx, got %v %v", resp, err)
			}
		}
		if n := len(s.events(t)); n != 0 {
			t.Errorf("%d events stored despite 5xx", n)
		}
	})
	t.Run("rate limit with Retry-After", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, "--rate-limit-rate", "1", "--retry-after", "3s")
		resp, err := post(t, s)
		if err != nil || resp.StatusCode != 429 {
			t.Fatalf("want 429, got %v %v", resp, err)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "3" {
			t.Errorf("Retry-After %q, want 3", ra)
		}
	})
	t.Run("storm", func(t *testing.T) {
		t.Parallel()
		// The storm starts with the process; 5 s covers its start-up and the first request
		// while the other subtests run beside it.
		s := startSim(t, "--storm", "5s")
		resp, err := post(t, s)
		if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("during the storm: want 429 with Retry-After, got %v %v", resp, err)
		}
		wait.Until(t, 30*time.Second, "the storm to end", func() bool {
			resp, err := post(t, s)
			return err == nil && resp.StatusCode == 201
		})
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, "--latency", "400ms")
		start := time.Now()
		resp, err := post(t, s)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("want 201, got %v %v", resp, err)
		}
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Errorf("answered in %s with --latency 400ms", d)
		}
	})
	t.Run("resets store nothing", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, "--reset-rate", "1")
		if resp, err := post(t, s); err == nil {
			t.Fatalf("--reset-rate 1: got an answer %d", resp.StatusCode)
		}
		if n := len(s.events(t)); n != 0 {
			t.Errorf("%d events stored after a reset", n)
		}
	})
	t.Run("lost responses store the event", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, "--lost-response-rate", "1")
		if resp, err := post(t, s); err == nil && resp.StatusCode == 201 {
			t.Fatalf("--lost-response-rate 1: got 201")
		}
		wait.Until(t, 5*time.Second, "the lost write to be stored", func() bool { return len(s.events(t)) == 1 })
	})
	t.Run("down", func(t *testing.T) {
		t.Parallel()
		s := startSim(t, "--down")
		if resp, err := post(t, s); err == nil && resp.StatusCode < 500 {
			t.Fatalf("--down: got %d", resp.StatusCode)
		}
	})
	t.Run("several keys", func(t *testing.T) {
		t.Parallel()
		s, err := launchSim("--key", "key-one,key-two")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.stop)
		for _, k := range []string{"key-one", "key-two"} {
			if r := simReq(t, http.MethodGet, s.url+"/adverse-event/fhir/metadata", nil, k); r.status != 200 {
				t.Errorf("key %s: %s", k, r)
			}
		}
	})
}
