package forwarder

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestWithIDIsValidJSONForAnyID: the id is escaped as JSON, not as Go, so an operator-supplied
// id with unusual characters still gives a body the national service can read.
func TestWithIDIsValidJSONForAnyID(t *testing.T) {
	for _, id := range []string{"n1", "a\x7fb", "é\u2028x", `q"uo\te`, "\x00"} {
		var doc map[string]any
		if err := json.Unmarshal(withID([]byte(`{"resourceType":"AdverseEvent"}`), id), &doc); err != nil {
			t.Errorf("withID(%q): not JSON: %v", id, err)
			continue
		}
		if doc["id"] != id {
			t.Errorf("withID(%q): id reads back as %q", id, doc["id"])
		}
	}
}

// TestClientDoesNotFollowRedirects: a POST redirected elsewhere is not re-sent (Go would turn
// it into a GET); the 3xx comes back to be classified, and the PUT target is path-escaped.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.EscapedPath())
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	}))
	defer srv.Close()
	c := NewClient(srv.URL, "k", 5*time.Second)
	r := c.Send(context.Background(), "", []byte(`{}`))
	if r.Status != http.StatusMovedPermanently {
		t.Errorf("POST: got status %d, want the 301 itself", r.Status)
	}
	if o := Classify(r, false); o.Class != ClassRejected {
		t.Errorf("a redirected POST: got class %s, want rejected (visible, replayable)", o.Class)
	}
	c.Send(context.Background(), "a/b c", []byte(`{}`))
	want := []string{"POST /adverse-event/fhir/AdverseEvent", "PUT /adverse-event/fhir/AdverseEvent/a%2Fb%20c"}
	if len(paths) != len(want) || paths[0] != want[0] || paths[1] != want[1] {
		t.Errorf("requests: got %q, want %q", paths, want)
	}
}

func TestListsProfile(t *testing.T) {
	cs := []byte(`{"resourceType":"CapabilityStatement","rest":[{"resource":[
		{"type":"Patient","profile":"x/adverse-event-patient-6"},
		{"type":"AdverseEvent","profile":"x/patient-safety-adverse-event-5","supportedProfile":["x/patient-safety-adverse-event-6"]}]}]}`)
	for v, want := range map[int]bool{5: true, 6: true, 7: false} {
		if got := listsProfile(cs, v); got != want {
			t.Errorf("version %d: got %v, want %v", v, got, want)
		}
	}
	if listsProfile([]byte(`not json`), 5) {
		t.Error("garbage lists a profile")
	}
}
