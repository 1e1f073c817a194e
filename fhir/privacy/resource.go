package privacy

// RedactResource redacts NHS numbers (see RedactText) in place in every
// string of a decoded JSON value, at any depth, and returns how many it
// replaced. It is Redactor.Resource of a Redactor that knows no identifiers.
func RedactResource(resource map[string]any) (count int) {
	return (*Redactor)(nil).Resource(resource)[KindNHSNumber]
}

// Resource redacts in place, in a decoded JSON value at any depth, what Text removes from
// free text, and returns how many of each kind it replaced.
//
// Free text is the value of every "description", "valueString" and "div" key (and strings in
// lists under them): there Text removes the known identifiers too. Every other string is
// cleared of NHS-number-shaped strings only, except the values of "url" and "valueCode"
// keys, which are left alone: urls name schema elements and codes are bound to value sets,
// so rewriting either would silently change the payload's meaning, and a known name
// matching a word of a profile url ("Azure") must not break it. Check still reports an NHS
// number found there, so such a payload is refused rather than sent.
//
// resource is modified in place; it must not be shared with another goroutine while
// Resource runs.
func (r *Redactor) Resource(resource map[string]any) Counts {
	var c Counts
	r.redactMap(resource, &c)
	return c
}

func (r *Redactor) redactMap(m map[string]any, c *Counts) {
	for k, v := range m {
		switch k {
		case "url", "valueCode":
			if _, ok := v.(string); ok {
				continue
			}
		}
		with := r
		if !freeTextKey(k) {
			with = nil
		}
		if s, ok := v.(string); ok {
			if out := with.redactString(s, c); out != s {
				m[k] = out
			}
			continue
		}
		r.redactValue(v, with, c)
	}
}

// redactValue redacts v, a value under a key; strings in lists are redacted with with.
func (r *Redactor) redactValue(v any, with *Redactor, c *Counts) {
	switch v := v.(type) {
	case map[string]any:
		r.redactMap(v, c)
	case []any:
		for i, e := range v {
			if s, ok := e.(string); ok {
				if out := with.redactString(s, c); out != s {
					v[i] = out
				}
				continue
			}
			r.redactValue(e, with, c)
		}
	}
}

func (r *Redactor) redactString(s string, c *Counts) string {
	out, n := r.Text(s)
	c.Add(n)
	return out
}

func freeTextKey(k string) bool { return k == "description" || k == "valueString" || k == "div" }
