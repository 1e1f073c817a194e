package fhir

import (
	"sort"
	"strconv"
	"unicode/utf8"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// The validators walk a payload as encoding/json decodes it (map[string]any). Going there by
// a JSON round trip and back costs most of Prepare's time, so the built resource is turned
// into that form directly and written out by a small encoder. Both know only the elements
// the builder sets; a test checks that they agree with encoding/json.

// doc returns ae in decoded-JSON form. Integers stay Go ints, which the validators accept.
func (ae *AdverseEvent) doc() map[string]any {
	m := make(map[string]any, 14)
	m["resourceType"] = ae.ResourceType
	if ae.ID != "" {
		m["id"] = ae.ID
	}
	if ae.Meta != nil {
		profiles := make([]any, len(ae.Meta.Profile))
		for i, p := range ae.Meta.Profile {
			profiles[i] = p
		}
		m["meta"] = map[string]any{"profile": profiles}
	}
	if len(ae.Contained) > 0 {
		list := make([]any, len(ae.Contained))
		for i, c := range ae.Contained {
			cm := map[string]any{"resourceType": c.ResourceType, "id": c.ID}
			if len(c.Extension)+len(c.parts) > 0 {
				cm["extension"] = extensionListDoc(c.Extension, c.parts)
			}
			list[i] = cm
		}
		m["contained"] = list
	}
	if len(ae.Extension)+len(ae.parts) > 0 {
		m["extension"] = extensionListDoc(ae.Extension, ae.parts)
	}
	if ae.Actuality != "" {
		m["actuality"] = ae.Actuality
	}
	if ae.Event != nil {
		m["event"] = conceptDoc(ae.Event)
	}
	if ae.Type != nil {
		m["type"] = conceptDoc(ae.Type)
	}
	refDoc(m, "subject", ae.Subject)
	if ae.Date != "" {
		m["date"] = ae.Date
	}
	refDoc(m, "location", ae.Location)
	refDoc(m, "recorder", ae.Recorder)
	if ae.Description != "" {
		m["description"] = ae.Description
	}
	if len(ae.SuspectEntity) > 0 {
		list := make([]any, len(ae.SuspectEntity))
		for i, s := range ae.SuspectEntity {
			inst := map[string]any{}
			if s.Instance.Reference != nil {
				inst["reference"] = *s.Instance.Reference
			}
			list[i] = map[string]any{"instance": inst}
		}
		m["suspectEntity"] = list
	}
	return m
}

func refDoc(m map[string]any, key string, r *fm.Reference) {
	if r != nil && r.Reference != nil {
		m[key] = map[string]any{"reference": *r.Reference}
	}
}

func conceptDoc(c *fm.CodeableConcept) map[string]any {
	codings := make([]any, len(c.Coding))
	for i, cd := range c.Coding {
		cm := map[string]any{}
		if cd.Code != nil {
			cm["code"] = *cd.Code
		}
		codings[i] = cm
	}
	return map[string]any{"coding": codings}
}

func extensionsDoc(exts []fm.Extension) []any {
	out := make([]any, len(exts))
	for i := range exts {
		e := &exts[i]
		m := make(map[string]any, 2)
		m["url"] = e.Url
		switch {
		case e.ValueCode != nil:
			m["valueCode"] = *e.ValueCode
		case e.ValueString != nil:
			m["valueString"] = *e.ValueString
		case e.ValueInteger != nil:
			m["valueInteger"] = *e.ValueInteger
		case e.ValueBoolean != nil:
			m["valueBoolean"] = *e.ValueBoolean
		case e.ValueTime != nil:
			m["valueTime"] = *e.ValueTime
		case e.ValueDate != nil:
			m["valueDate"] = *e.ValueDate
		}
		if len(e.Extension) > 0 {
			m["extension"] = extensionsDoc(e.Extension)
		}
		out[i] = m
	}
	return out
}

// extensionListDoc is the extension list of exts followed by those of parts.
func extensionListDoc(exts []fm.Extension, parts []*complexExt) []any {
	switch {
	case len(parts) == 0:
		return extensionsDoc(exts)
	case len(exts) == 0:
		return partsDoc(parts)
	}
	return append(extensionsDoc(exts), partsDoc(parts)...)
}

// partsDoc is extensionsDoc of the parts' extensions, without building them.
func partsDoc(parts []*complexExt) []any {
	out := make([]any, len(parts))
	for i, p := range parts {
		m := make(map[string]any, 2)
		m["url"] = p.url
		if len(p.items) > 0 {
			inner := make([]any, len(p.items))
			for j := range p.items {
				it := &p.items[j]
				im := make(map[string]any, 2)
				im["url"] = it.name
				switch it.kind {
				case valueCode:
					im["valueCode"] = it.str
				case valueString:
					im["valueString"] = it.str
				case valueInteger:
					im["valueInteger"] = it.num
				case valueBoolean:
					im["valueBoolean"] = it.flag
				case valueTime:
					im["valueTime"] = it.str
				}
				inner[j] = im
			}
			m["extension"] = inner
		}
		out[i] = m
	}
	return out
}

// encodeDoc writes a decoded-JSON value as compact JSON with object keys sorted, as
// encoding/json would, for the types doc and encoding/json produce.
func encodeDoc(buf []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		// Most objects here have a handful of keys: sort them in a stack buffer, and with an
		// insertion sort, rather than allocate and call sort.Strings for each.
		var small [8]string
		keys := small[:0]
		if len(v) > len(small) {
			keys = make([]string, 0, len(v))
		}
		for k := range v {
			keys = append(keys, k)
		}
		if len(keys) <= len(small) {
			for i := 1; i < len(keys); i++ {
				for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
					keys[j], keys[j-1] = keys[j-1], keys[j]
				}
			}
		} else {
			sort.Strings(keys)
		}
		buf = append(buf, '{')
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, k)
			buf = append(buf, ':')
			buf = encodeDoc(buf, v[k])
		}
		return append(buf, '}')
	case []any:
		buf = append(buf, '[')
		for i, e := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = encodeDoc(buf, e)
		}
		return append(buf, ']')
	case string:
		return appendJSONString(buf, v)
	case int:
		return strconv.AppendInt(buf, int64(v), 10)
	case float64:
		return strconv.AppendFloat(buf, v, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(buf, v)
	case nil:
		return append(buf, "null"...)
	}
	// Only doc's types reach here; anything else is a programming error made visible.
	return append(buf, "null"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does, HTML characters included, so the bytes
// are the same whichever encoder wrote them.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
