package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCreate posts arbitrary bodies: the simulator must answer every one with a status the
// national API defines for a create, and never panic.
func FuzzCreate(f *testing.F) {
	for _, name := range []string{"valid-v5.json", "valid-v6.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// A fresh simulator per input keeps memory flat however long the fuzzer runs.
		s, err := New(Options{
			SubscriptionKeys: []string{testKey},
			// A validator that looks at what it is given, as the real one will.
			Validate: func(_ int, res map[string]any) []Issue {
				if _, ok := res["extension"].([]any); !ok {
					return []Issue{{Path: "AdverseEvent.extension", Rule: "fuzz", Message: "no extensions"}}
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, collectionPath, bytes.NewReader(body))
		req.Header.Set(keyHeader, testKey)
		req.Header.Set("Content-Type", "application/fhir+json")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusCreated:
			var res map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || referenceNumber(res) == "" {
				t.Fatalf("201 without a stored AdverseEvent and ReferenceNumber: %s (%v)", rec.Body.Bytes(), err)
			}
			if n := len(s.Events()); n != 1 {
				t.Fatalf("201 but %d events stored", n)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
			if n := len(s.Events()); n != 0 {
				t.Fatalf("refused with %d but %d events stored", rec.Code, n)
			}
		default:
			t.Fatalf("status: got %d for %q", rec.Code, body)
		}
	})
}
