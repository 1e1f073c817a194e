package forwarder

import (
	"errors"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	ae := `{"resourceType":"AdverseEvent","id":"abc123","meta":{"versionId":"2"},"extension":[{"url":"https://x/StructureDefinition/adverse-event-reference-metadata-5","extension":[{"url":"DataSharingOptOut","valueBoolean":false},{"url":"ReferenceNumber","valueString":"REF-9"}]},{"url":"https://x/other","extension":[]}]}`
	oo := func(id string) string {
		return `{"resourceType":"OperationOutcome"` + id + `,"issue":[{"severity":"warning","details":{"text":"stored with warnings"}}]}`
	}
	cases := []struct {
		name  string
		resp  Response
		put   bool
		class Class
		check func(t *testing.T, o Outcome)
	}{
		{"201 AdverseEvent", Response{Status: 201, Body: []byte(ae), Sent: true}, false, ClassDelivered, func(t *testing.T, o Outcome) {
			if o.NationalID != "abc123" || o.VersionID != "2" || o.Reference != "REF-9" {
				t.Errorf("got id=%q version=%q ref=%q, want abc123, 2, REF-9", o.NationalID, o.VersionID, o.Reference)
			}
		}},
		{"200 OperationOutcome with id", Response{Status: 200, Body: []byte(oo(`,"id":"x1"`)), Sent: true}, false, ClassDelivered, func(t *testing.T, o Outcome) {
			if o.NationalID != "x1" || len(o.Warnings) != 1 {
				t.Errorf("got id=%q warnings=%v, want x1 and one warning", o.NationalID, o.Warnings)
			}
		}},
		{"200 OperationOutcome without id", Response{Status: 200, Body: []byte(oo("")), Sent: true}, false, ClassAmbiguous, nil},
		{"201 empty body on POST", Response{Status: 201, Sent: true}, false, ClassAmbiguous, nil},
		{"200 empty body on PUT", Response{Status: 200, Sent: true}, true, ClassDelivered, nil},
		{"201 not JSON", Response{Status: 201, Body: []byte("ok"), Sent: true}, false, ClassAmbiguous, nil},
		{"400 OperationOutcome", Response{Status: 400, Body: []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","details":{"coding":[{"code":"value-set"}],"text":"code not in value set"},"diagnostics":"AdverseEvent.extension[0]"}]}`)}, false, ClassRejected, func(t *testing.T, o Outcome) {
			if want := "HTTP 400: error: value-set: code not in value set (AdverseEvent.extension[0])"; o.Detail != want {
				t.Errorf("got detail %q, want %q", o.Detail, want)
			}
		}},
		{"422 diagnostics only", Response{Status: 422, Body: []byte(`{"resourceType":"OperationOutcome","issue":[{"diagnostics":"bad"}]}`)}, false, ClassRejected, func(t *testing.T, o Outcome) {
			if o.Detail != "HTTP 422: bad" {
				t.Errorf("got %q", o.Detail)
			}
		}},
		{"404 on PUT", Response{Status: 404, Body: []byte(`{"statusCode":404,"message":"Resource not found"}`)}, true, ClassRejected, nil},
		{"401 APIM", Response{Status: 401, Body: []byte(`{"statusCode":401,"message":"Access denied due to invalid subscription key."}`)}, false, ClassAuth, func(t *testing.T, o Outcome) {
			if o.Detail != "HTTP 401: Access denied due to invalid subscription key." {
				t.Errorf("got %q", o.Detail)
			}
		}},
		{"403", Response{Status: 403}, false, ClassAuth, nil},
		{"408", Response{Status: 408}, false, ClassTransient, nil},
		{"429 with Retry-After", Response{Status: 429, RetryAfter: 7 * time.Second, Body: []byte("slow down")}, false, ClassTransient, func(t *testing.T, o Outcome) {
			if o.RetryAfter != 7*time.Second || o.Detail != "HTTP 429: slow down" {
				t.Errorf("got retry-after %s detail %q", o.RetryAfter, o.Detail)
			}
		}},
		{"503", Response{Status: 503}, false, ClassTransient, nil},
		{"connection refused, not sent", Response{Err: errors.New("dial tcp: connection refused")}, false, ClassTransient, nil},
		{"reset after sending a POST", Response{Err: errors.New("connection reset by peer"), Sent: true}, false, ClassAmbiguous, nil},
		{"2xx body cut off", Response{Status: 201, Err: errors.New("unexpected EOF"), Sent: true}, false, ClassAmbiguous, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := Classify(tc.resp, tc.put)
			if o.Class != tc.class {
				t.Fatalf("got class %s (%s), want %s", o.Class, o.Detail, tc.class)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Thu, 01 Jan 2026 12:00:30 GMT": 30 * time.Second,
		"Thu, 01 Jan 2026 11:00:00 GMT": 0,
		"+5":                            0,
		"86400":                         24 * time.Hour,
		"9223372037":                    24 * time.Hour, // wrapped to a negative wait once
		"99999999999999999999999":       24 * time.Hour,
		"Fri, 31 Dec 9999 23:59:59 GMT": 24 * time.Hour,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q): got %s, want %s", in, got, want)
		}
	}
}

func TestBackoffHonoursRetryAfterAndCap(t *testing.T) {
	f := &Forwarder{cfg: Config{BackoffInitial: 100 * time.Millisecond, BackoffMax: time.Second}}
	for attempt := 1; attempt < 30; attempt++ {
		d := f.backoff(attempt, 0)
		if d < 0 || d > time.Second {
			t.Fatalf("attempt %d: got %s, want within [0, 1s]", attempt, d)
		}
	}
	if d := f.backoff(1, 5*time.Second); d != 5*time.Second {
		t.Errorf("got %s, want Retry-After's 5s even above the cap", d)
	}
}

func TestWithID(t *testing.T) {
	for in, want := range map[string]string{
		`{"resourceType":"AdverseEvent"}`: `{"id":"n1","resourceType":"AdverseEvent"}`,
		`{}`:                              `{"id":"n1"}`,
	} {
		if got := string(withID([]byte(in), "n1")); got != want {
			t.Errorf("withID(%s): got %s, want %s", in, got, want)
		}
	}
}
