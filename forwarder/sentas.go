package forwarder

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ledger"
)

// sentAs reads from a payload about to be POSTed what an operator needs to find the event in
// LFPSE's view of the organisation's submissions, should the POST's outcome be unknown: the
// event type, when it happened, and where (docs/delivery.md, "Resolving unknown"). It reads
// only coded fields and the date, never free text. Whatever it cannot read is left empty.
func sentAs(payload []byte) ledger.SentAs {
	type coding struct {
		Code string `json:"code"`
	}
	type concept struct {
		Coding []coding `json:"coding"`
	}
	type ext struct {
		URL       string          `json:"url"`
		ValueCode json.RawMessage `json:"valueCode"`
		Extension []ext           `json:"extension"`
	}
	var doc struct {
		Date      string   `json:"date"`
		Type      *concept `json:"type"`  // taxonomy v5 (STU3)
		Event     *concept `json:"event"` // taxonomy v6 (R4)
		Contained []struct {
			ResourceType string `json:"resourceType"`
			Extension    []ext  `json:"extension"`
		} `json:"contained"`
	}
	var out ledger.SentAs
	if json.Unmarshal(payload, &doc) != nil {
		return out
	}
	out.EventDate = short(doc.Date)
	for _, c := range []*concept{doc.Event, doc.Type} {
		if c != nil && len(c.Coding) > 0 {
			if w := fhir.EventTypeOfCode(c.Coding[0].Code); w != "" {
				out.EventType = w
				break
			}
		}
	}
	var find func([]ext) string
	find = func(es []ext) string {
		for _, e := range es {
			var code string
			if e.URL == "Organisation" && json.Unmarshal(e.ValueCode, &code) == nil && code != "" {
				return short(code)
			}
			if c := find(e.Extension); c != "" {
				return c
			}
		}
		return ""
	}
	for _, c := range doc.Contained {
		if c.ResourceType == "Location" {
			if out.Location = find(c.Extension); out.Location != "" {
				break
			}
		}
	}
	return out
}

// short keeps a value read from a payload to a size fit for a page.
func short(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // never split a character
	}
	return s[:cut]
}
