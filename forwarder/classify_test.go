package forwarder

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClassify is the classification table of docs/delivery.md ("Classification"), every row
// of it, for POSTs and for PUTs to a held national id.
func TestClassify(t *testing.T) {
	ae := `{"resourceType":"AdverseEvent","id":"abc123","meta":{"versionId":"2"},"extension":[{"url":"https://x/StructureDefinition/adverse-event-reference-metadata-5","extension":[{"url":"DataSharingOptOut","valueBoolean":false},{"url":"ReferenceNumber","valueString":"REF-9"}]},{"url":"https://x/other","extension":[]}]}`
	oo := func(id string) string {
		return `{"resourceType":"OperationOutcome"` + id + `,"issue":[{"severity":"warning","details":{"text":"stored with warnings"}}]}`
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	dns := &net.DNSError{Err: "no such host", Name: "national.example", IsNotFound: true}
	tlsFail := errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority")
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	timeout := context.DeadlineExceeded
	cut := io.ErrUnexpectedEOF
	const (
		post = false
		put  = true
	)
	cases := []struct {
		row   string // the row of the table in docs/delivery.md
		name  string
		resp  Response
		put   bool
		class Class
		check func(t *testing.T, o Outcome)
	}{
		// 2xx with an id: delivered.
		{"2xx with an id", "POST 201 AdverseEvent", Response{Status: 201, Body: []byte(ae), Sent: true}, post, ClassDelivered, func(t *testing.T, o Outcome) {
			if o.NationalID != "abc123" || o.VersionID != "2" || o.Reference != "REF-9" {
				t.Errorf("got id=%q version=%q ref=%q, want abc123, 2, REF-9", o.NationalID, o.VersionID, o.Reference)
			}
		}},
		{"2xx with an id", "POST 200 OperationOutcome with id", Response{Status: 200, Body: []byte(oo(`,"id":"x1"`)), Sent: true}, post, ClassDelivered, func(t *testing.T, o Outcome) {
			if o.NationalID != "x1" || len(o.Warnings) != 1 {
				t.Errorf("got id=%q warnings=%v, want x1 and one warning", o.NationalID, o.Warnings)
			}
		}},
		{"2xx with an id", "PUT 200 AdverseEvent", Response{Status: 200, Body: []byte(ae), Sent: true}, put, ClassDelivered, nil},
		{"2xx with an id", "PUT 200 empty body (the id is the one held)", Response{Status: 200, Sent: true}, put, ClassDelivered, nil},

		// Nothing was sent: transient.
		{"connection refused", "POST refused", Response{Err: refused}, post, ClassTransient, nil},
		{"DNS failure", "POST DNS", Response{Err: dns}, post, ClassTransient, nil},
		{"TLS handshake failure", "POST TLS", Response{Err: tlsFail}, post, ClassTransient, nil},
		{"connection refused", "PUT refused", Response{Err: refused}, put, ClassTransient, nil},

		// 429, 503, 408: transient (the request did not reach the backend).
		{"429", "POST 429 with Retry-After", Response{Status: 429, RetryAfter: 7 * time.Second, Body: []byte("slow down"), Sent: true}, post, ClassTransient, func(t *testing.T, o Outcome) {
			if o.RetryAfter != 7*time.Second || o.Detail != "HTTP 429: slow down" {
				t.Errorf("got retry-after %s detail %q", o.RetryAfter, o.Detail)
			}
		}},
		{"503", "POST 503", Response{Status: 503, Sent: true}, post, ClassTransient, nil},
		{"408", "POST 408", Response{Status: 408, Sent: true}, post, ClassTransient, nil},
		{"429", "PUT 429", Response{Status: 429, Sent: true}, put, ClassTransient, nil},

		// 500, 502, 504, any other 5xx; reset or timeout after sending; body cut short; 2xx
		// without an id: ambiguous for a POST.
		{"500", "POST 500", Response{Status: 500, Body: []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","details":{"text":"internal error"}}]}`), Sent: true}, post, ClassAmbiguous, func(t *testing.T, o Outcome) {
			if !strings.Contains(o.Detail, "HTTP 500: error: internal error") {
				t.Errorf("got detail %q", o.Detail)
			}
		}},
		{"502", "POST 502", Response{Status: 502, Body: []byte("Bad Gateway"), Sent: true}, post, ClassAmbiguous, nil},
		{"504", "POST 504", Response{Status: 504, Body: []byte(`{"statusCode":504,"message":"Gateway Timeout"}`), Sent: true}, post, ClassAmbiguous, func(t *testing.T, o Outcome) {
			if !strings.Contains(o.Detail, "HTTP 504: Gateway Timeout") {
				t.Errorf("got detail %q", o.Detail)
			}
		}},
		{"any other 5xx", "POST 501", Response{Status: 501, Sent: true}, post, ClassAmbiguous, nil},
		{"any other 5xx", "POST 599", Response{Status: 599, Sent: true}, post, ClassAmbiguous, nil},
		{"a reset after the request was sent", "POST reset", Response{Err: reset, Sent: true}, post, ClassAmbiguous, nil},
		{"a timeout after the request was sent", "POST timeout", Response{Err: timeout, Sent: true}, post, ClassAmbiguous, nil},
		{"a body cut short", "POST 201 body cut short", Response{Status: 201, Body: []byte(ae[:40]), Err: cut, Sent: true}, post, ClassAmbiguous, nil},
		{"2xx without an id", "POST 201 empty body", Response{Status: 201, Sent: true}, post, ClassAmbiguous, nil},
		// A FHIR server asked for (or defaulting to) return=minimal answers 201 with the id in
		// Location only: the id is known, so nothing is ambiguous.
		{"2xx with an id", "POST 201 empty body, id in Location", Response{Status: 201, Sent: true,
			Location: "https://api.example/adverse-event/fhir/AdverseEvent/9f3c-77/_history/3"}, post, ClassDelivered, func(t *testing.T, o Outcome) {
			if o.NationalID != "9f3c-77" || o.VersionID != "3" {
				t.Errorf("got id=%q version=%q, want 9f3c-77 and 3", o.NationalID, o.VersionID)
			}
		}},
		{"2xx with an id", "POST 201 empty body, relative Location without history", Response{Status: 201, Sent: true,
			Location: "/adverse-event/fhir/AdverseEvent/abc.1"}, post, ClassDelivered, func(t *testing.T, o Outcome) {
			if o.NationalID != "abc.1" || o.VersionID != "" {
				t.Errorf("got id=%q version=%q, want abc.1 and none", o.NationalID, o.VersionID)
			}
		}},
		{"2xx without an id", "POST 201 Location of another type", Response{Status: 201, Sent: true,
			Location: "/adverse-event/fhir/OperationOutcome/x1"}, post, ClassAmbiguous, nil},
		{"2xx without an id", "POST 201 Location with an id FHIR does not allow", Response{Status: 201, Sent: true,
			Location: "/adverse-event/fhir/AdverseEvent/a%2Fb"}, post, ClassAmbiguous, nil},
		{"2xx without an id", "POST 202 (accepted for later) with Location", Response{Status: 202, Sent: true,
			Location: "/adverse-event/fhir/AdverseEvent/x1"}, post, ClassAmbiguous, nil},
		// A PUT's 2xx says the amendment was applied, whatever became of the body after.
		{"2xx with an id", "PUT 200 body cut short", Response{Status: 200, Body: []byte(ae[:40]), Err: cut, Sent: true}, put, ClassDelivered, nil},
		{"2xx without an id", "POST 200 OperationOutcome without id", Response{Status: 200, Body: []byte(oo("")), Sent: true}, post, ClassAmbiguous, nil},
		{"2xx without an id", "POST 201 not JSON", Response{Status: 201, Body: []byte("ok"), Sent: true}, post, ClassAmbiguous, nil},

		// PUTs to a held id are idempotent: the same failures are only retried.
		{"PUTs stay idempotent", "PUT 500", Response{Status: 500, Sent: true}, put, ClassTransient, nil},
		{"PUTs stay idempotent", "PUT 502", Response{Status: 502, Sent: true}, put, ClassTransient, nil},
		{"PUTs stay idempotent", "PUT 504", Response{Status: 504, Sent: true}, put, ClassTransient, nil},
		{"PUTs stay idempotent", "PUT 599", Response{Status: 599, Sent: true}, put, ClassTransient, nil},
		// A PUT with no answer is ambiguous too; the forwarder sends it again (forwarder.send).
		{"PUTs stay idempotent", "PUT reset", Response{Err: reset, Sent: true}, put, ClassAmbiguous, nil},

		// 400, 422, other 4xx: rejected.
		{"400", "POST 400 OperationOutcome", Response{Status: 400, Body: []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","details":{"coding":[{"code":"value-set"}],"text":"code not in value set"},"diagnostics":"AdverseEvent.extension[0]"}]}`), Sent: true}, post, ClassRejected, func(t *testing.T, o Outcome) {
			if want := "HTTP 400: error: value-set: code not in value set (AdverseEvent.extension[0])"; o.Detail != want {
				t.Errorf("got detail %q, want %q", o.Detail, want)
			}
		}},
		{"422", "POST 422 diagnostics only", Response{Status: 422, Body: []byte(`{"resourceType":"OperationOutcome","issue":[{"diagnostics":"bad"}]}`), Sent: true}, post, ClassRejected, func(t *testing.T, o Outcome) {
			if o.Detail != "HTTP 422: bad" {
				t.Errorf("got %q", o.Detail)
			}
		}},
		{"other 4xx", "POST 413", Response{Status: 413, Sent: true}, post, ClassRejected, nil},
		{"other 4xx", "PUT 404", Response{Status: 404, Body: []byte(`{"statusCode":404,"message":"Resource not found"}`), Sent: true}, put, ClassRejected, nil},
		{"other 4xx", "POST 307 (never followed)", Response{Status: 307, Sent: true}, post, ClassRejected, nil},

		// 401, 403: auth pause.
		{"401", "POST 401 APIM", Response{Status: 401, Body: []byte(`{"statusCode":401,"message":"Access denied due to invalid subscription key."}`), Sent: true}, post, ClassAuth, func(t *testing.T, o Outcome) {
			if o.Detail != "HTTP 401: Access denied due to invalid subscription key." {
				t.Errorf("got %q", o.Detail)
			}
		}},
		{"403", "POST 403", Response{Status: 403, Sent: true}, post, ClassAuth, nil},
		{"403", "PUT 403", Response{Status: 403, Sent: true}, put, ClassAuth, nil},
	}
	rows := map[string]bool{}
	for _, tc := range cases {
		rows[tc.row] = true
		t.Run(tc.name, func(t *testing.T) {
			o := Classify(tc.resp, tc.put)
			if o.Class != tc.class {
				t.Fatalf("row %q: got class %s (%s), want %s", tc.row, o.Class, o.Detail, tc.class)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
	// Every row of the table is here (issue 13).
	for _, row := range []string{"2xx with an id", "connection refused", "DNS failure", "TLS handshake failure",
		"429", "503", "408", "500", "502", "504", "any other 5xx", "a reset after the request was sent",
		"a timeout after the request was sent", "a body cut short", "2xx without an id", "400", "422", "other 4xx",
		"401", "403", "PUTs stay idempotent"} {
		if !rows[row] {
			t.Errorf("the table test has no case for the row %q", row)
		}
	}
}

// TestClientSaysWhatWasSent: the client's Sent flag, which the table turns on, is false for a
// connection that was refused or a TLS handshake that failed, and true once the request was
// written, for real connections.
func TestClientSaysWhatWasSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := NewClient("http://"+addr, "k", 2*time.Second)
	c.hc.RetryMax = 0
	if r := c.Send(context.Background(), "", []byte(`{}`)); r.Sent || r.Status != 0 || Classify(r, false).Class != ClassTransient {
		t.Errorf("refused: got sent=%v status=%d class=%s, want not sent, transient", r.Sent, r.Status, Classify(r, false).Class)
	}

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsSrv.Close()
	c = NewClient(tlsSrv.URL, "k", 2*time.Second) // the test server's certificate is not trusted
	c.hc.RetryMax = 0
	if r := c.Send(context.Background(), "", []byte(`{}`)); r.Sent || Classify(r, false).Class != ClassTransient {
		t.Errorf("TLS handshake failure: got sent=%v class=%s (%v), want not sent, transient", r.Sent, Classify(r, false).Class, r.Err)
	}

	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		<-r.Context().Done()
	}))
	defer hang.Close()
	c = NewClient(hang.URL, "k", 200*time.Millisecond)
	if r := c.Send(context.Background(), "", []byte(`{}`)); !r.Sent || Classify(r, false).Class != ClassAmbiguous {
		t.Errorf("timeout after sending: got sent=%v class=%s, want sent, ambiguous", r.Sent, Classify(r, false).Class)
	}
}

// TestClientReadsLocation: a real 201 with no body and the new id in Location only (what a
// FHIR server answers for return=minimal) is delivered with that id, not held as unknown.
func TestClientReadsLocation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Location", "http://"+r.Host+"/adverse-event/fhir/AdverseEvent/e-42/_history/1")
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c := NewClient(srv.URL, "k", 2*time.Second)
	o := Classify(c.Send(context.Background(), "", []byte(`{}`)), false)
	if o.Class != ClassDelivered || o.NationalID != "e-42" || o.VersionID != "1" {
		t.Errorf("got class %s id %q version %q (%s), want delivered e-42 1", o.Class, o.NationalID, o.VersionID, o.Detail)
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
