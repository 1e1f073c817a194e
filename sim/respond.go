package sim

import (
	"encoding/json"
	"net/http"
)

const fhirJSON = "application/fhir+json; charset=utf-8"

// statusWriter remembers what was answered, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status  int
	id      string // the AdverseEvent id the request concerned, once known
	dropped bool   // the connection was taken away without an answer
	fault   string // the fault injected, if any (a Fault* kind)
	stored  bool   // the write was stored
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection for hijacking.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeAPIM answers in the plain JSON shape of the Azure API Management gateway, which
// fronts LFPSE and answers auth and rate-limit failures itself, not in FHIR.
func writeAPIM(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, "application/json; charset=utf-8", struct {
		StatusCode int    `json:"statusCode"`
		Message    string `json:"message"`
	}{status, message})
}

// writeOutcome answers with a FHIR OperationOutcome holding the issues.
func writeOutcome(w http.ResponseWriter, status int, issues ...Issue) {
	writeJSON(w, status, fhirJSON, operationOutcome(issues))
}

func operationOutcome(issues []Issue) map[string]any {
	list := make([]any, 0, len(issues))
	for _, is := range issues {
		code := is.Code
		if code == "" {
			code = "invalid"
		}
		details := map[string]any{"text": is.Message}
		if is.Rule != "" {
			details["coding"] = []any{map[string]any{"code": is.Rule}}
		}
		item := map[string]any{"severity": "error", "code": code, "details": details}
		if is.Path != "" {
			item["diagnostics"] = is.Path
			item["expression"] = []any{is.Path}
		}
		list = append(list, item)
	}
	return map[string]any{"resourceType": "OperationOutcome", "issue": list}
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only our own values get here; they always marshal
		http.Error(w, "encoding response", http.StatusInternalServerError)
		return
	}
	writeBody(w, status, contentType, body)
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
