package sim

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCreate(t *testing.T) {
	for _, version := range []string{"5", "6"} {
		t.Run("v"+version, func(t *testing.T) {
			fixed := time.Date(2025, 3, 14, 10, 30, 0, 0, time.UTC)
			h := newHarness(t, func(o *Options) { o.Now = func() time.Time { return fixed } })
			r := h.post(payload(t, version))
			if r.status != http.StatusCreated {
				t.Fatalf("status: got %d, want 201; body %s", r.status, r.body)
			}
			res := r.json(t)
			id, _ := res["id"].(string)
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
				t.Errorf("id: got %q, want 32 hex digits", id)
			}
			if got := at(res, "meta", "versionId"); got != "1" {
				t.Errorf("meta.versionId: got %v, want 1", got)
			}
			if got := at(res, "meta", "lastUpdated"); got != "2025-03-14T10:30:00.000Z" {
				t.Errorf("meta.lastUpdated: got %v", got)
			}
			ref := referenceNumber(res)
			if ref == "" {
				t.Fatalf("no ReferenceNumber in %s", r.body)
			}
			if loc := r.header.Get("Location"); loc != h.srv.URL+collectionPath+"/"+id+"/_history/1" {
				t.Errorf("Location: got %q", loc)
			}
			// The reference sits in this version's reference-metadata extension.
			var holder any
			for _, e := range res["extension"].([]any) {
				if at(e, "url") == referenceMetadataURL(map[string]int{"5": 5, "6": 6}[version]) {
					holder = e
				}
			}
			if holder == nil {
				t.Fatalf("no reference-metadata extension in %s", r.body)
			}
			evs := h.sim.Events()
			if len(evs) != 1 {
				t.Fatalf("events: got %d, want 1", len(evs))
			}
			e := evs[0]
			if e.ID != id || e.VersionID != "1" || e.Reference != ref || e.Updates != 0 || !e.Created.Equal(fixed) {
				t.Errorf("event: got %+v", e)
			}
			if !bytes.Equal(e.Resource, r.body) {
				t.Errorf("stored resource differs from the answer")
			}
			if st := h.sim.Stats(); st.Creates != 1 || st.Events != 1 {
				t.Errorf("stats: got %+v", st)
			}
		})
	}
}

func TestCreateKeepsOtherReferenceMetadataAndReplacesReference(t *testing.T) {
	h := newHarness(t, nil)
	res := payload(t, "5")
	// The v5 example already has the reference-metadata extension with DataSharingOptOut.
	// A sender-supplied ReferenceNumber must be replaced by the service's own.
	for _, e := range res["extension"].([]any) {
		if at(e, "url") == referenceMetadataURL(5) {
			m := e.(map[string]any)
			m["extension"] = append(m["extension"].([]any), map[string]any{"url": "ReferenceNumber", "valueString": "FORGED"})
		}
	}
	r := h.post(res)
	if r.status != http.StatusCreated {
		t.Fatalf("status: got %d; body %s", r.status, r.body)
	}
	out := r.json(t)
	var inner []any
	n := 0
	for _, e := range out["extension"].([]any) {
		if at(e, "url") == referenceMetadataURL(5) {
			n++
			inner = at(e, "extension").([]any)
		}
	}
	if n != 1 {
		t.Fatalf("reference-metadata extensions: got %d, want 1", n)
	}
	var urls []string
	for _, ie := range inner {
		urls = append(urls, at(ie, "url").(string))
		if at(ie, "url") == "ReferenceNumber" && at(ie, "valueString") == "FORGED" {
			t.Errorf("sender's ReferenceNumber was kept")
		}
	}
	if strings.Join(urls, ",") != "DataSharingOptOut,ReferenceNumber" {
		t.Errorf("inner urls: got %v, want DataSharingOptOut,ReferenceNumber", urls)
	}
}

func TestAmend(t *testing.T) {
	h := newHarness(t, nil)
	created := h.post(payload(t, "5")).json(t)
	id := created["id"].(string)
	ref := referenceNumber(created)

	amended := created
	amended["description"] = "Dose given four hours late; ward pharmacist reviewed."
	r := h.put(id, amended)
	if r.status != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %s", r.status, r.body)
	}
	out := r.json(t)
	if got := at(out, "meta", "versionId"); got != "2" {
		t.Errorf("versionId: got %v, want 2", got)
	}
	if got := referenceNumber(out); got != ref {
		t.Errorf("ReferenceNumber: got %q, want %q", got, ref)
	}
	if r.header.Get("ETag") != `W/"2"` {
		t.Errorf("ETag: got %q", r.header.Get("ETag"))
	}
	// A second amendment goes on counting.
	if got := at(h.put(id, out).json(t), "meta", "versionId"); got != "3" {
		t.Errorf("versionId after second PUT: got %v, want 3", got)
	}
	evs := h.sim.Events()
	if len(evs) != 1 || evs[0].VersionID != "3" || evs[0].Updates != 2 || evs[0].Reference != ref {
		t.Fatalf("events: got %+v", evs)
	}
	if st := h.sim.Stats(); st.Creates != 1 || st.Updates != 2 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestAmendRefusals(t *testing.T) {
	h := newHarness(t, nil)
	created := h.post(payload(t, "5")).json(t)
	id := created["id"].(string)

	t.Run("unknown id", func(t *testing.T) {
		res := payload(t, "5")
		res["id"] = "0123456789abcdef0123456789abcdef"
		wantOutcome(t, h.put("0123456789abcdef0123456789abcdef", res), http.StatusNotFound, "AdverseEvent.id", "not-found")
	})
	t.Run("id mismatch", func(t *testing.T) {
		res := payload(t, "5")
		res["id"] = "someoneelse"
		wantOutcome(t, h.put(id, res), http.StatusBadRequest, "AdverseEvent.id", "id-mismatch")
	})
	t.Run("id missing", func(t *testing.T) {
		wantOutcome(t, h.put(id, payload(t, "5")), http.StatusBadRequest, "AdverseEvent.id", "id-required")
	})
	t.Run("invalid amendment", func(t *testing.T) {
		res := payload(t, "5")
		res["id"] = id
		res["identifier"] = map[string]any{"value": "x"}
		wantOutcome(t, h.put(id, res), http.StatusUnprocessableEntity, "AdverseEvent.identifier", "no-patient-identifiers")
	})
	if evs := h.sim.Events(); len(evs) != 1 || evs[0].VersionID != "1" {
		t.Errorf("refused amendments changed the store: %+v", evs)
	}
}

func TestCreateWithIDRefused(t *testing.T) {
	h := newHarness(t, nil)
	res := payload(t, "5")
	res["id"] = "mine"
	wantOutcome(t, h.post(res), http.StatusBadRequest, "AdverseEvent.id", "id-on-create")
}

func TestSubscriptionKey(t *testing.T) {
	h := newHarness(t, nil)
	body := marshal(t, payload(t, "5"))
	cases := []struct {
		name   string
		header map[string]string
		msg    string
	}{
		{"missing", map[string]string{"Content-Type": "application/json"}, msgMissingKey},
		{"wrong", map[string]string{keyHeader: "nope", "Content-Type": "application/json"}, msgInvalidKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, req := range []struct{ method, path string }{
				{http.MethodPost, collectionPath}, {http.MethodGet, metadataPath},
				{http.MethodPut, collectionPath + "/abc"},
			} {
				r := h.must(req.method, req.path, body, c.header)
				wantAPIM(t, r, http.StatusUnauthorized, c.msg)
			}
		})
	}
	if st := h.sim.Stats(); st.Unauthorized != 6 || st.Events != 0 {
		t.Errorf("stats: got %+v", st)
	}
}

// wantAPIM checks for the plain JSON body of the APIM gateway, which is not FHIR.
func wantAPIM(t *testing.T, r reply, status int, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status: got %d, want %d; body %s", r.status, status, r.body)
	}
	m := r.json(t)
	if _, ok := m["resourceType"]; ok {
		t.Errorf("got a FHIR resource, want APIM plain JSON: %s", r.body)
	}
	if m["statusCode"] != float64(status) {
		t.Errorf("statusCode: got %v, want %d", m["statusCode"], status)
	}
	if msg != "" && m["message"] != msg {
		t.Errorf("message: got %q, want %q", m["message"], msg)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
}

func TestKeyRotation(t *testing.T) {
	h := newHarness(t, nil)
	withKey := func(k string) map[string]string {
		return map[string]string{keyHeader: k, "Content-Type": "application/json"}
	}
	if r := h.must(http.MethodGet, metadataPath, nil, withKey(testKey)); r.status != http.StatusOK {
		t.Fatalf("old key before rotation: got %d", r.status)
	}
	h.sim.SetKeys("secondary", "tertiary")
	if r := h.must(http.MethodGet, metadataPath, nil, withKey(testKey)); r.status != http.StatusUnauthorized {
		t.Errorf("old key after rotation: got %d, want 401", r.status)
	}
	for _, k := range []string{"secondary", "tertiary"} {
		if r := h.must(http.MethodGet, metadataPath, nil, withKey(k)); r.status != http.StatusOK {
			t.Errorf("key %q after rotation: got %d, want 200", k, r.status)
		}
	}
	h.sim.SetKeys() // no usable key: ignored
	if r := h.must(http.MethodGet, metadataPath, nil, withKey("secondary")); r.status != http.StatusOK {
		t.Errorf("SetKeys() locked everyone out: got %d", r.status)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	cases := map[string]Options{
		"no key":        {},
		"empty key":     {SubscriptionKeys: []string{""}},
		"unknown ver":   {SubscriptionKeys: []string{"k"}, Versions: []int{7}},
		"bad rate":      {SubscriptionKeys: []string{"k"}, Faults: Faults{ErrorRate: 1.5}},
		"rates over 1":  {SubscriptionKeys: []string{"k"}, Faults: Faults{ErrorRate: 0.6, ResetRate: 0.6}},
		"bad down mode": {SubscriptionKeys: []string{"k"}, Faults: Faults{DownMode: "explode"}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(o); err == nil {
				t.Errorf("New: got no error")
			}
		})
	}
}

func TestPayloadRefusals(t *testing.T) {
	h := newHarness(t, nil)
	valid := marshal(t, payload(t, "5"))
	jsonHdr := func(ct string) map[string]string { return map[string]string{keyHeader: testKey, "Content-Type": ct} }
	cases := []struct {
		name   string
		body   []byte
		header map[string]string
		status int
		rule   string
	}{
		{"no content type", valid, map[string]string{keyHeader: testKey}, http.StatusUnsupportedMediaType, "content-type"},
		{"xml", valid, jsonHdr("application/fhir+xml"), http.StatusUnsupportedMediaType, "content-type"},
		{"text", valid, jsonHdr("text/plain"), http.StatusUnsupportedMediaType, "content-type"},
		{"malformed", []byte(`{"resourceType":`), nil, http.StatusBadRequest, "json"},
		{"trailing", append(append([]byte{}, valid...), []byte(`{}`)...), nil, http.StatusBadRequest, "json"},
		{"array", []byte(`[]`), nil, http.StatusBadRequest, "json-object"},
		{"wrong type", []byte(`{"resourceType":"Patient"}`), nil, http.StatusBadRequest, "resource-type"},
		{"too large", append([]byte(`{"resourceType":"AdverseEvent","description":"`),
			bytes.Repeat([]byte("a"), MaxBodyBytes)...), nil, http.StatusRequestEntityTooLarge, "body-size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.must(http.MethodPost, collectionPath, c.body, c.header)
			wantOutcome(t, r, c.status, "", c.rule)
			if got := at(r.json(t), "issue", 0, "details", "coding", 0, "code"); got != c.rule {
				t.Errorf("rule: got %v, want %s", got, c.rule)
			}
		})
	}
	for _, ct := range []string{"application/fhir+json", "application/json; charset=utf-8", "application/fhir+json;fhirVersion=3.0"} {
		if r := h.must(http.MethodPost, collectionPath, valid, jsonHdr(ct)); r.status != http.StatusCreated {
			t.Errorf("Content-Type %q: got %d, want 201", ct, r.status)
		}
	}
	if st := h.sim.Stats(); st.Rejected != len(cases) || st.Creates != 3 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestRejectMarker(t *testing.T) {
	h := newHarness(t, nil)
	res := payload(t, "5")
	res["description"] = "please refuse this " + DefaultRejectMarker
	wantOutcome(t, h.post(res), http.StatusUnprocessableEntity, "AdverseEvent.description", "sim-reject-marker")

	h2 := newHarness(t, func(o *Options) { o.RejectMarker = "REFUSE-ME" })
	res["description"] = "REFUSE-ME"
	wantOutcome(t, h2.post(res), http.StatusUnprocessableEntity, "AdverseEvent.description", "sim-reject-marker")
}

func TestInjectedValidator(t *testing.T) {
	var gotVersion int
	h := newHarness(t, func(o *Options) {
		o.Validate = func(version int, res map[string]any) []Issue {
			gotVersion = version // the test sends one request at a time
			if at(res, "contained", 0, "extension", 0, "extension", 2, "valueCode") == "99" {
				return []Issue{{Path: "AdverseEvent.contained[0].extension[0].extension[2].valueCode",
					Rule: "code-in-value-set", Code: "value", Message: "code is not in value set gender-5"}}
			}
			return nil
		}
	})
	res := payload(t, "5")
	if r := h.post(res); r.status != http.StatusCreated || gotVersion != 5 {
		t.Fatalf("valid payload: got %d, validator saw version %d", r.status, gotVersion)
	}
	at(res, "contained", 0, "extension", 0, "extension", 2).(map[string]any)["valueCode"] = "99"
	issues := wantOutcome(t, h.post(res), http.StatusUnprocessableEntity,
		"AdverseEvent.contained[0].extension[0].extension[2].valueCode", "code-in-value-set")
	if got := at(issues[0], "code"); got != "value" {
		t.Errorf("issue code: got %v, want value", got)
	}
	if h.post(payload(t, "6")).status != http.StatusCreated || gotVersion != 6 {
		t.Errorf("validator saw version %d, want 6", gotVersion)
	}
}

func TestMetadata(t *testing.T) {
	h := newHarness(t, nil)
	r := h.must(http.MethodGet, metadataPath, nil, map[string]string{keyHeader: testKey})
	if r.status != http.StatusOK {
		t.Fatalf("status: got %d", r.status)
	}
	cs := r.json(t)
	if cs["resourceType"] != "CapabilityStatement" {
		t.Fatalf("resourceType: got %v", cs["resourceType"])
	}
	var profiles, supported []string
	for _, e := range at(cs, "rest", 0, "resource").([]any) {
		if at(e, "type") != "AdverseEvent" {
			continue
		}
		profiles = append(profiles, at(e, "profile").(string))
		for _, p := range at(e, "supportedProfile").([]any) {
			supported = append(supported, p.(string))
		}
	}
	want := "https://psims-uat.azure-api.net/taxonomy/fhir/StructureDefinition/patient-safety-adverse-event-5," +
		"https://developer.learn-from-patient-safety-events.nhs.uk/taxonomy/fhir/StructureDefinition/patient-safety-adverse-event-6"
	if got := strings.Join(profiles, ","); got != want {
		t.Errorf("profiles: got %s, want %s", got, want)
	}
	if got := strings.Join(supported, ","); got != want {
		t.Errorf("supportedProfile: got %s, want %s", got, want)
	}

	h5 := newHarness(t, func(o *Options) { o.Versions = []int{5} })
	body := h5.must(http.MethodGet, metadataPath, nil, map[string]string{keyHeader: testKey}).body
	if bytes.Contains(body, []byte("event-6")) {
		t.Errorf("v5-only simulator lists v6: %s", body)
	}
	wantOutcome(t, h5.post(payload(t, "6")), http.StatusUnprocessableEntity, "AdverseEvent.meta.profile", "profile-version")
}

func TestRoutesAndMethods(t *testing.T) {
	h := newHarness(t, nil)
	wantAPIM(t, h.must(http.MethodGet, "/adverse-event/fhir/Patient", nil, nil), http.StatusNotFound, "")
	wantAPIM(t, h.must(http.MethodPut, collectionPath+"/a/b", nil, nil), http.StatusNotFound, "")
	r := h.must(http.MethodGet, collectionPath, nil, nil)
	wantOutcome(t, r, http.StatusMethodNotAllowed, "", "method")
	if r.header.Get("Allow") != http.MethodPost {
		t.Errorf("Allow: got %q", r.header.Get("Allow"))
	}
}
