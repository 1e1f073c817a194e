package forwarder

import (
	"encoding/json"
	"errors"
	"net/http"
	neturl "net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Class is what a national answer means for the incident. Every answer is classified here and
// nowhere else.
type Class int

// The classes.
const (
	// ClassDelivered: the service holds the event; ID and the rest are set.
	ClassDelivered Class = iota
	// ClassRejected: the service refused the payload; sending it again cannot help.
	ClassRejected
	// ClassAuth: the key was refused; pause all delivery, burn no attempts.
	ClassAuth
	// ClassTransient: try again later: a POST that provably stored nothing (not sent; 408, 429,
	// 503), or a PUT that failed.
	ClassTransient
	// ClassAmbiguous: the request was sent and no answer came back that says whether it was
	// stored (any other 5xx, a reset or timeout after sending, a body cut short, a success
	// without an id); the service may or may not hold the event.
	ClassAmbiguous
)

func (c Class) String() string {
	return [...]string{"delivered", "rejected", "auth", "transient", "ambiguous"}[c]
}

// Outcome is a classified answer.
type Outcome struct {
	Class      Class
	Status     int
	NationalID string
	VersionID  string
	Reference  string
	// Detail is the service's reason (OperationOutcome text, APIM message) or the error.
	Detail     string
	Warnings   []string
	RetryAfter time.Duration
}

// Classify turns a response to a POST (put=false) or PUT (put=true) into an Outcome. It is the
// table of docs/delivery.md, "Classification", row by row. The national API has no idempotency
// key and no read-back, so a POST is classed transient (sent again) only when its answer
// proves nothing was stored: nothing was sent, or 408, 429 or 503, which the API gateway in
// front answers without passing the request on. Every other failure of a POST may have been
// stored and is ambiguous. A PUT to a held national id is idempotent, so whatever failure it
// meets it is only ever sent again.
func Classify(r Response, put bool) Outcome {
	o := Outcome{Status: r.Status, RetryAfter: r.RetryAfter}
	switch s := r.Status; {
	case s == 0 && !r.Sent:
		// Connection refused, DNS failure, TLS handshake failure: the request never left.
		o.Class, o.Detail = ClassTransient, "not sent: "+errText(r.Err)
	case s == 0:
		// A reset or timeout after the request was written.
		o.Class, o.Detail = ClassAmbiguous, "request sent but no answer: "+errText(r.Err)
	case s >= 200 && s < 300 && r.Err != nil && put:
		// An amendment's success whose body was cut short: the service applied it to the id
		// we hold, which is all a PUT needs to know (as for a PUT's empty success).
		o.Class = ClassDelivered
	case s >= 200 && s < 300 && r.Err != nil:
		// A success whose body was cut short: the service acted, but its id is lost.
		o.Class, o.Detail = ClassAmbiguous, "HTTP "+strconv.Itoa(s)+" with its body cut short: "+r.Err.Error()
	case s >= 200 && s < 300:
		// With an id, delivered; a POST's success without an id is ambiguous.
		o = classifySuccess(o, r.Body, put)
		if o.Class == ClassAmbiguous && (s == http.StatusOK || s == http.StatusCreated) {
			// A FHIR server answering a create with return=minimal puts the id in Location
			// only (docs/delivery.md, "Classification").
			if id, version, ok := locationID(r.Location); ok {
				o.Class, o.Detail, o.NationalID, o.VersionID = ClassDelivered, "", id, version
			}
		}
		return o
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		o.Class, o.Detail = ClassAuth, errorText(r.Body, s)
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		// The gateway in front refused it before the backend saw it.
		o.Class, o.Detail = ClassTransient, errorText(r.Body, s)
	case s >= 500 && put:
		o.Class, o.Detail = ClassTransient, errorText(r.Body, s)
	case s >= 500:
		// 500, 502, 504 and any other 5xx: the backend may have committed before it failed
		// (a 504 is what the gateway answers when the backend was merely slow).
		o.Class, o.Detail = ClassAmbiguous, errorText(r.Body, s)+" after the request was sent: the service may have stored it"
	default:
		// 400, 422, 404 on a PUT, any other 4xx, and a 3xx (never followed: a redirecting
		// endpoint is a wrong base URL): the payload or target is wrong.
		o.Class, o.Detail = ClassRejected, errorText(r.Body, s)
	}
	return o
}

// fhirID is FHIR's rule for a resource id.
var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// locationID reads the id, and version when given, of a Location header that names an
// AdverseEvent: ".../AdverseEvent/{id}" or ".../AdverseEvent/{id}/_history/{version}",
// absolute or relative. Anything else (another resource type, an id FHIR does not allow, an
// escaped character) is not taken: a wrong id would turn every amendment into a PUT to it.
func locationID(loc string) (id, version string, ok bool) {
	u, err := neturl.Parse(strings.TrimSpace(loc))
	if err != nil || loc == "" || u.RawPath != "" {
		return "", "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	n := len(parts)
	if n >= 4 && parts[n-2] == "_history" {
		version, parts, n = parts[n-1], parts[:n-2], n-2
		if !fhirID.MatchString(version) {
			return "", "", false
		}
	}
	if n < 2 || parts[n-2] != "AdverseEvent" || !fhirID.MatchString(parts[n-1]) {
		return "", "", false
	}
	return parts[n-1], version, true
}

func errText(err error) string {
	if err == nil {
		return "no answer"
	}
	return err.Error()
}

func classifySuccess(o Outcome, body []byte, put bool) Outcome {
	var doc struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         struct {
			VersionID string `json:"versionId"`
		} `json:"meta"`
		Issue     []issue         `json:"issue"`
		Extension json.RawMessage `json:"extension"`
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if put {
			o.Class = ClassDelivered
			return o
		}
		o.Class, o.Detail = ClassAmbiguous, "success answer with an empty body: no national id"
		return o
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		o.Class, o.Detail = ClassAmbiguous, "success answer that is not JSON: no national id"
		return o
	}
	o.NationalID, o.VersionID = doc.ID, doc.Meta.VersionID
	var full any
	_ = json.Unmarshal(body, &full)
	o.Reference = findReference(full)
	if doc.ResourceType == "OperationOutcome" {
		for _, is := range doc.Issue {
			o.Warnings = append(o.Warnings, is.text())
		}
	}
	if o.NationalID == "" && !put {
		o.Class = ClassAmbiguous
		o.Detail = "success answer without an id"
		if len(o.Warnings) > 0 {
			o.Detail += ": " + strings.Join(o.Warnings, "; ")
		}
		return o
	}
	o.Class = ClassDelivered
	return o
}

// findReference walks every extension, at any depth, for the inner ReferenceNumber. Taking
// "the last outer extension", as one client does, breaks as soon as the order changes.
func findReference(v any) string {
	switch t := v.(type) {
	case map[string]any:
		if t["url"] == "ReferenceNumber" {
			if s, ok := t["valueString"].(string); ok {
				return s
			}
		}
		for _, k := range []string{"extension", "contained"} {
			if r := findReference(t[k]); r != "" {
				return r
			}
		}
	case []any:
		for _, x := range t {
			if r := findReference(x); r != "" {
				return r
			}
		}
	}
	return ""
}

type issue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics"`
	Details     struct {
		Text   string `json:"text"`
		Coding []struct {
			Code string `json:"code"`
		} `json:"coding"`
	} `json:"details"`
}

func (i issue) text() string {
	var parts []string
	if i.Severity != "" {
		parts = append(parts, i.Severity)
	}
	if len(i.Details.Coding) > 0 && i.Details.Coding[0].Code != "" {
		parts = append(parts, i.Details.Coding[0].Code)
	}
	msg := i.Details.Text
	if i.Diagnostics != "" {
		if msg != "" {
			msg += " (" + i.Diagnostics + ")"
		} else {
			msg = i.Diagnostics
		}
	}
	if msg != "" {
		parts = append(parts, msg)
	}
	return strings.Join(parts, ": ")
}

// errorText reads either error shape the service uses (a FHIR OperationOutcome from LFPSE, a
// plain JSON object from the API gateway in front of it) or a bare text body.
func errorText(body []byte, status int) string {
	prefix := "HTTP " + strconv.Itoa(status)
	var oo struct {
		ResourceType string  `json:"resourceType"`
		Issue        []issue `json:"issue"`
		Message      string  `json:"message"`
	}
	if err := json.Unmarshal(body, &oo); err == nil {
		if oo.ResourceType == "OperationOutcome" && len(oo.Issue) > 0 {
			var texts []string
			for _, is := range oo.Issue {
				texts = append(texts, is.text())
			}
			return prefix + ": " + strings.Join(texts, "; ")
		}
		if oo.Message != "" {
			return prefix + ": " + oo.Message
		}
	}
	t := strings.TrimSpace(string(body))
	if len(t) > 500 {
		cut := 500
		for cut > 0 && !utf8.RuneStart(t[cut]) {
			cut-- // never split a character
		}
		t = t[:cut] + "…"
	}
	if t == "" {
		return prefix
	}
	return prefix + ": " + t
}

// maxRetryAfter caps the wait a Retry-After header can ask for. A day honours any real
// maintenance window and stays well inside national.max_age, while a header that asks for
// years (a date far ahead, a number of seconds too large for a time.Duration, which would
// wrap round to a negative or a random delay) cannot park an incident forever.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads Retry-After as seconds or an HTTP date. The result is 0 (no wish)
// to maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter // only digits: too large for an int64 is still "a long time"
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

var errPaused = errors.New("delivery paused: the national service refused the subscription key")
