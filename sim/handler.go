package sim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxBodyBytes is the largest payload accepted; a larger one gets 413.
const MaxBodyBytes = 5 << 20

const (
	apiBase        = "/adverse-event/fhir"
	collectionPath = apiBase + "/AdverseEvent"
	metadataPath   = apiBase + "/metadata"
	keyHeader      = "Ocp-Apim-Subscription-Key"
)

// Bodies APIM sends for a bad or missing subscription key.
const (
	msgInvalidKey = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
	msgMissingKey = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."
)

type routeKind int

const (
	routeUnknown routeKind = iota
	routeCreate
	routeUpdate
	routeMetadata
)

// route maps a path to the national API operation and the method it needs.
func route(path string) (kind routeKind, method, id string) {
	switch {
	case path == collectionPath:
		return routeCreate, http.MethodPost, ""
	case path == metadataPath:
		return routeMetadata, http.MethodGet, ""
	case strings.HasPrefix(path, collectionPath+"/"):
		id := strings.TrimPrefix(path, collectionPath+"/")
		if id != "" && !strings.Contains(id, "/") {
			return routeUpdate, http.MethodPut, id
		}
	}
	return routeUnknown, "", ""
}

// ServeHTTP serves the national API and the /_sim/ admin endpoints (see the package doc).
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveAdmin(w, r)
		return
	}
	start := time.Now()
	seq := s.arrived()
	sw := &statusWriter{ResponseWriter: w}
	kind, method, id := route(r.URL.Path)
	sw.id = id
	var label string
	defer func() {
		s.note(r, sw, seq, start, label)
		ev := s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", sw.status).Dur("took", time.Since(start))
		if sw.id != "" {
			ev = ev.Str("id", sw.id)
		}
		if sw.dropped {
			ev = ev.Bool("dropped", true)
		}
		ev.Msg("national api request")
	}()
	s.count(func(st *Stats) { st.Requests++ })

	if kind == routeUnknown {
		writeAPIM(sw, http.StatusNotFound, "Resource not found")
		return
	}
	// Read the body first, as a real service receives it before it answers. It also lets
	// net/http notice a client that hangs up, which it only watches for once the body is
	// consumed, so Latency can end early. MaxBytesReader gets w, not sw, so that net/http
	// can see the limit was hit and close the connection after the 413.
	body, bodyErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if s.label != nil && bodyErr == nil {
		label = s.label(body)
	}
	f := s.Faults()
	if f.Latency > 0 {
		s.count(func(st *Stats) { st.Faults[FaultLatency]++ })
		if !wait(r.Context(), f.Latency) {
			return // the client gave up; nobody is left to answer
		}
	}
	if f.Down {
		status := http.StatusServiceUnavailable
		if f.DownMode == DownModeReset {
			status = 0 // no answer at all: injectFault resets the connection
		}
		s.injectFault(sw, FaultDown, status, f)
		return
	}
	if !s.authorize(sw, r) {
		return
	}
	if fault, status, f := s.rollFault(); fault != "" {
		s.injectFault(sw, fault, status, f)
		return
	}
	if r.Method != method {
		s.count(func(st *Stats) { st.Rejected++ })
		sw.Header().Set("Allow", method)
		writeOutcome(sw, http.StatusMethodNotAllowed,
			Issue{Code: "not-supported", Rule: "method", Message: "use " + method + " on this path"})
		return
	}
	switch kind {
	case routeCreate:
		s.create(sw, r, body, bodyErr)
	case routeUpdate:
		s.update(sw, r, id, body, bodyErr)
	case routeMetadata:
		writeJSON(sw, http.StatusOK, fhirJSON, s.capabilityStatement())
	}
}

// authorize checks the subscription key, answering 401 as APIM does when it is wrong.
func (s *Simulator) authorize(w http.ResponseWriter, r *http.Request) bool {
	got := r.Header.Get(keyHeader)
	if got != "" {
		s.mu.Lock()
		keys := s.keys
		s.mu.Unlock()
		for _, k := range keys {
			if subtle.ConstantTimeCompare([]byte(got), []byte(k)) == 1 {
				return true
			}
		}
	}
	s.count(func(st *Stats) { st.Unauthorized++ })
	msg := msgInvalidKey
	if got == "" {
		msg = msgMissingKey
	}
	writeAPIM(w, http.StatusUnauthorized, msg)
	return false
}

func (s *Simulator) create(w *statusWriter, r *http.Request, body []byte, bodyErr error) {
	res, ok := s.decodeResource(w, r, body, bodyErr)
	if !ok {
		return
	}
	if _, has := res["id"]; has {
		s.refuse(w, http.StatusBadRequest, Issue{Path: "AdverseEvent.id", Rule: "id-on-create", Code: "invalid",
			Message: "a new AdverseEvent must not carry an id; the service assigns it"})
		return
	}
	version, issues := s.check(res)
	if len(issues) > 0 {
		s.refuse(w, http.StatusUnprocessableEntity, issues...)
		return
	}

	s.mu.Lock()
	id := randomHex(16)
	now := s.now()
	ref := s.store.nextReference(s.refTag)
	stamp(res, id, "1", now, ref, version)
	body, err := json.Marshal(res)
	if err != nil { // cannot happen: res came from encoding/json
		s.mu.Unlock()
		s.refuse(w, http.StatusBadRequest, Issue{Rule: "encoding", Message: "the resource cannot be stored"})
		return
	}
	s.store.byID[id] = &Event{ID: id, VersionID: "1", Reference: ref, Version: version,
		Created: now, Updated: now, Resource: body}
	s.store.order = append(s.store.order, id)
	s.stats.Creates++
	fault, f := s.rollAfterStoreLocked()
	s.mu.Unlock()

	w.id, w.stored = id, true
	w.Header().Set("Location", absoluteURL(r, collectionPath+"/"+id+"/_history/1"))
	w.Header().Set("ETag", `W/"1"`)
	s.answerStored(w, r, fault, f, http.StatusCreated, body)
}

func (s *Simulator) update(w *statusWriter, r *http.Request, id string, body []byte, bodyErr error) {
	res, ok := s.decodeResource(w, r, body, bodyErr)
	if !ok {
		return
	}
	bodyID, present := res["id"]
	if !present {
		s.refuse(w, http.StatusBadRequest, Issue{Path: "AdverseEvent.id", Rule: "id-required", Code: "required",
			Message: "an amendment must carry the id it amends"})
		return
	}
	if bodyID != id {
		s.refuse(w, http.StatusBadRequest, Issue{Path: "AdverseEvent.id", Rule: "id-mismatch", Code: "invalid",
			Message: "the resource id does not match the id in the URL"})
		return
	}
	if !s.known(id) {
		s.notFound(w)
		return
	}
	version, issues := s.check(res)
	if len(issues) > 0 {
		s.refuse(w, http.StatusUnprocessableEntity, issues...)
		return
	}

	s.mu.Lock()
	e, ok := s.store.byID[id]
	if !ok { // forgotten by a Reset since the check above
		s.mu.Unlock()
		s.notFound(w)
		return
	}
	now := s.now()
	n, _ := strconv.Atoi(e.VersionID)
	vid := strconv.Itoa(n + 1)
	stamp(res, id, vid, now, e.Reference, version)
	body, err := json.Marshal(res)
	if err != nil { // cannot happen: res came from encoding/json
		s.mu.Unlock()
		s.refuse(w, http.StatusBadRequest, Issue{Rule: "encoding", Message: "the resource cannot be stored"})
		return
	}
	e.VersionID, e.Version, e.Updated, e.Resource = vid, version, now, body
	e.Updates++
	s.stats.Updates++
	fault, f := s.rollAfterStoreLocked()
	s.mu.Unlock()

	w.stored = true
	w.Header().Set("ETag", `W/"`+vid+`"`)
	s.answerStored(w, r, fault, f, http.StatusOK, body)
}

func (s *Simulator) known(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.store.byID[id]
	return ok
}

func (s *Simulator) notFound(w *statusWriter) {
	s.refuse(w, http.StatusNotFound, Issue{Path: "AdverseEvent.id", Rule: "not-found", Code: "not-found",
		Message: "no AdverseEvent with this id was created here"})
}

// check runs the built-in checks, the reject marker and, when the profile is usable, the
// injected taxonomy validator, and returns every issue found.
func (s *Simulator) check(res map[string]any) (int, []Issue) {
	version, issues := structuralIssues(res, s.versions)
	if d, _ := res["description"].(string); strings.Contains(d, s.marker) {
		issues = append(issues, Issue{Path: "AdverseEvent.description", Rule: "sim-reject-marker", Code: "value",
			Message: "the description carries the simulator's reject marker"})
	}
	if version != 0 && s.validate != nil {
		issues = append(issues, s.validate(version, res)...)
	}
	if len(issues) > maxIssues {
		// A payload with thousands of faults would otherwise get an answer many times its size.
		more := len(issues) - maxIssues
		issues = append(issues[:maxIssues:maxIssues], Issue{Rule: "too-many-issues", Code: "too-costly",
			Message: strconv.Itoa(more) + " further issues not listed"})
	}
	return version, issues
}

// maxIssues caps the issues listed in one OperationOutcome.
const maxIssues = 100

func (s *Simulator) refuse(w http.ResponseWriter, status int, issues ...Issue) {
	s.count(func(st *Stats) { st.Rejected++ })
	writeOutcome(w, status, issues...)
}

// decodeResource turns the request body into a JSON object with resourceType
// AdverseEvent, answering 415, 413 or 400 itself when it cannot.
func (s *Simulator) decodeResource(w http.ResponseWriter, r *http.Request, data []byte, readErr error) (map[string]any, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != "application/fhir+json") {
		s.refuse(w, http.StatusUnsupportedMediaType, Issue{Rule: "content-type", Code: "not-supported",
			Message: "Content-Type must be application/json or application/fhir+json"})
		return nil, false
	}
	if readErr != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](readErr); ok {
			s.refuse(w, http.StatusRequestEntityTooLarge, Issue{Rule: "body-size", Code: "too-long",
				Message: "the body is larger than " + strconv.Itoa(MaxBodyBytes) + " bytes"})
			return nil, false
		}
		s.refuse(w, http.StatusBadRequest, Issue{Rule: "body-read", Code: "structure", Message: "the body could not be read"})
		return nil, false
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		// The decoder's message may quote the payload; say only where it broke.
		msg := "the body is not valid JSON"
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			msg += " (at byte " + strconv.FormatInt(se.Offset, 10) + ")"
		}
		s.refuse(w, http.StatusBadRequest, Issue{Rule: "json", Code: "structure", Message: msg})
		return nil, false
	}
	res, ok := v.(map[string]any)
	if !ok {
		s.refuse(w, http.StatusBadRequest, Issue{Rule: "json-object", Code: "structure", Message: "the body must be a JSON object"})
		return nil, false
	}
	if res["resourceType"] != "AdverseEvent" {
		s.refuse(w, http.StatusBadRequest, Issue{Path: "resourceType", Rule: "resource-type", Code: "invalid",
			Message: "resourceType must be AdverseEvent"})
		return nil, false
	}
	return res, true
}

// absoluteURL makes a Location header value from the host the client asked for.
func absoluteURL(r *http.Request, path string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}
