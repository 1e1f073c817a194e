package forwarder

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var fuzzClassifyNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// classifyBodies are the bodies the national service and the gateways in front of it really
// send: AdverseEvent and OperationOutcome from LFPSE, APIM's plain JSON, HTML from a proxy,
// bare text, and wreckage.
var classifyBodies = []string{
	`{"resourceType":"AdverseEvent","id":"abc123","meta":{"versionId":"2"},"extension":[{"url":"https://x/StructureDefinition/adverse-event-reference-metadata-5","extension":[{"url":"ReferenceNumber","valueString":"REF-9"}]}]}`,
	`{"resourceType":"AdverseEvent","meta":{"versionId":"1"}}`,
	`{"resourceType":"AdverseEvent","id":42}`,
	`{"resourceType":"AdverseEvent","id":"a","contained":[{"extension":[{"extension":[{"url":"ReferenceNumber","valueString":7}]}]}]}`,
	`{"resourceType":"OperationOutcome","id":"x1","issue":[{"severity":"warning","details":{"text":"stored with warnings"}}]}`,
	`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","details":{"coding":[{"code":"value-set"}],"text":"code not in value set"},"diagnostics":"AdverseEvent.extension[0]"}]}`,
	`{"resourceType":"OperationOutcome","issue":[]}`,
	`{"resourceType":"OperationOutcome","issue":[{"details":{"coding":[]}},null,{"diagnostics":""}]}`,
	`{"statusCode":401,"message":"Access denied due to invalid subscription key."}`,
	`{"statusCode":429,"message":"Rate limit is exceeded. Try again in 7 seconds."}`,
	`{"message":null}`,
	"<html><body><h1>502 Bad Gateway</h1></body></html>",
	"upstream connect error or disconnect/reset before headers",
	"", " \r\n", "null", "[]", `"id"`, "{", "\xff\xfe", "\x00",
	strings.Repeat("é", 300),
	strings.Repeat("x", 499) + "€ and more",
}

var retryAfterValues = []string{
	"", "0", "7", "120", "-1", "+5", "1.5", "soon", " 30 ",
	"Thu, 01 Jan 2026 12:00:30 GMT", "Thu, 01 Jan 2026 11:00:00 GMT", "Thursday, 01-Jan-26 12:05:00 GMT",
	"Thu Jan  1 12:10:00 2026", "Fri, 31 Dec 9999 23:59:59 GMT",
	"86400", "86401", "9223372036", "9223372037", "99999999999999999999999",
}

// FuzzClassify protects the forwarder's one decision about every national answer, which
// decides whether an incident is delivered, refused, retried or held for an operator. The
// bodies come from outside (the service, an API gateway, a proxy) and may be anything. For
// any status, body, Retry-After header, method and transport error, Classify:
//
//   - returns, never panics, and answers the same every time;
//   - puts the answer in exactly one valid class, the one the status and docs/delivery.md
//     give: 2xx delivered or ambiguous, 401/403 auth, 408/429/5xx transient, other statuses
//     rejected, no status transient or (once the request was sent) ambiguous;
//   - calls a POST delivered only with a national id, and never a failed read delivered;
//   - says why in Detail whenever it is not delivered, as valid UTF-8 when the body is;
//   - carries the header's Retry-After, which is never negative and never more than a day.
func FuzzClassify(f *testing.F) {
	statuses := []int{0, 200, 201, 204, 301, 400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504, 999, -1}
	for i, b := range classifyBodies {
		f.Add(statuses[i%len(statuses)], []byte(b), retryAfterValues[i%len(retryAfterValues)], uint8(i))
	}
	for i, s := range statuses {
		f.Add(s, []byte(classifyBodies[0]), retryAfterValues[(i+3)%len(retryAfterValues)], uint8(i*5))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string, flags uint8) {
		put, sent := flags&1 != 0, flags&2 != 0
		var err error
		if flags&4 != 0 {
			err = errors.New("read: connection reset by peer")
		}
		r := Response{Status: status, Body: body, RetryAfter: parseRetryAfter(retryAfter, fuzzClassifyNow), Err: err, Sent: sent}
		o := Classify(r, put)
		if again := Classify(r, put); !reflect.DeepEqual(o, again) {
			t.Fatalf("two answers to one response: %+v and %+v", o, again)
		}
		if o.Class < ClassDelivered || o.Class > ClassAmbiguous || o.Class.String() == "" {
			t.Fatalf("class %d is not one of the classes", o.Class)
		}
		var want []Class
		switch {
		case status == 0 && sent:
			want = []Class{ClassAmbiguous}
		case status == 0:
			want = []Class{ClassTransient}
		case status >= 200 && status < 300:
			want = []Class{ClassDelivered, ClassAmbiguous}
		case status == 401 || status == 403:
			want = []Class{ClassAuth}
		case status == 408 || status == 429 || status == 503 || (status >= 500 && put):
			want = []Class{ClassTransient}
		case status >= 500:
			// A POST's other 5xx may have been stored (docs/delivery.md, "Classification").
			want = []Class{ClassAmbiguous}
		default:
			want = []Class{ClassRejected}
		}
		if !containsClass(want, o.Class) {
			t.Fatalf("status %d: got class %s, want one of %v", status, o.Class, want)
		}
		if o.Class == ClassDelivered {
			if err != nil && !put {
				// A PUT's 2xx is delivered whatever became of its body: the id is the one held.
				t.Fatal("a POST whose answer's body could not be read is delivered")
			}
			if !put && o.NationalID == "" {
				t.Fatal("a POST is delivered without a national id")
			}
		} else if strings.TrimSpace(o.Detail) == "" {
			t.Fatalf("class %s without a detail", o.Class)
		}
		if status != 0 && (o.Class == ClassAuth || o.Class == ClassRejected || o.Class == ClassTransient) &&
			!strings.HasPrefix(o.Detail, "HTTP "+strconv.Itoa(status)) {
			t.Fatalf("detail %q does not start with the status", o.Detail)
		}
		if utf8.Valid(body) && !utf8.ValidString(o.Detail) {
			t.Fatalf("detail %q is not valid UTF-8, though the body is", o.Detail)
		}
		if status != 0 && o.RetryAfter != r.RetryAfter {
			t.Fatalf("got Retry-After %s, want the header's %s", o.RetryAfter, r.RetryAfter)
		}
		if o.RetryAfter < 0 || o.RetryAfter > maxRetryAfter {
			t.Fatalf("Retry-After %q gives a wait of %s", retryAfter, o.RetryAfter)
		}
	})
}

func containsClass(cs []Class, c Class) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// FuzzParseRetryAfter protects the wait before the next try: the header comes from the
// service or anything in front of it, and the wait is handed to JetStream's NakWithDelay. A
// negative wait would retry at once in a loop; one of years would park the incident for good.
// For any header value and any clock, the wait is 0 to maxRetryAfter, and a plain number of
// seconds up to a day is honoured exactly.
func FuzzParseRetryAfter(f *testing.F) {
	for _, v := range retryAfterValues {
		f.Add(v, fuzzClassifyNow.Unix())
	}
	f.Add("Thu, 01 Jan 1970 00:00:01 GMT", int64(-1<<62))
	f.Add("Fri, 31 Dec 9999 23:59:59 GMT", int64(0))
	f.Fuzz(func(t *testing.T, v string, nowUnix int64) {
		d := parseRetryAfter(v, time.Unix(nowUnix, 0))
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %s, want 0 to %s", v, d, maxRetryAfter)
		}
		tv := strings.TrimSpace(v)
		if n, err := strconv.Atoi(tv); err == nil && n >= 0 && n <= int(maxRetryAfter/time.Second) && tv[0] != '+' {
			if want := time.Duration(n) * time.Second; d != want {
				t.Fatalf("parseRetryAfter(%q) = %s, want %s", v, d, want)
			}
		}
	})
}
