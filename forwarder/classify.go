package forwarder

import (
	"encoding/json"
	"errors"
	"net/http"
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
	// ClassTransient: try again later (408, 429, 5xx, a connection that failed before sending).
	ClassTransient
	// ClassAmbiguous: the request was sent and no usable answer came back; the service may or
	// may not hold the event.
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

// Classify turns a response to a POST (put=false) or PUT (put=true) into an Outcome.
func Classify(r Response, put bool) Outcome {
	if r.Status == 0 {
		detail := "no answer"
		if r.Err != nil {
			detail = r.Err.Error()
		}
		if r.Sent {
			return Outcome{Class: ClassAmbiguous, Detail: "request sent but no answer: " + detail}
		}
		return Outcome{Class: ClassTransient, Detail: detail}
	}
	o := Outcome{Status: r.Status, RetryAfter: r.RetryAfter}
	switch {
	case r.Status >= 200 && r.Status < 300:
		if r.Err != nil {
			o.Class, o.Detail = ClassAmbiguous, r.Err.Error()
			return o
		}
		return classifySuccess(o, r.Body, put)
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		o.Class, o.Detail = ClassAuth, errorText(r.Body, r.Status)
	case r.Status == http.StatusRequestTimeout || r.Status == http.StatusTooManyRequests || r.Status >= 500:
		o.Class, o.Detail = ClassTransient, errorText(r.Body, r.Status)
	default:
		// 400, 422, 404 on a PUT, and any other 4xx: the payload or target is wrong.
		o.Class, o.Detail = ClassRejected, errorText(r.Body, r.Status)
	}
	return o
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
