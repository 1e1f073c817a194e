package privacy

// RedactResource redacts NHS numbers (see RedactText) in place in every
// string of a decoded JSON value, at any depth, and returns how many it
// replaced.
//
// Values under "url" keys and "valueCode" keys are left alone: urls name
// schema elements and codes are bound to value sets, so rewriting either
// would silently change the payload's meaning. Check still reports an NHS
// number found there, so such a payload is refused rather than sent.
//
// resource is modified in place; it must not be shared with another
// goroutine while RedactResource runs.
func RedactResource(resource map[string]any) (count int) {
	return redactMap(resource)
}

func redactMap(m map[string]any) (count int) {
	for k, v := range m {
		if s, ok := v.(string); ok {
			if k == "url" || k == "valueCode" {
				continue
			}
			if out, n := RedactText(s); n > 0 {
				m[k] = out
				count += n
			}
			continue
		}
		count += redactValue(v)
	}
	return count
}

func redactValue(v any) (count int) {
	switch v := v.(type) {
	case map[string]any:
		return redactMap(v)
	case []any:
		for i, e := range v {
			if s, ok := e.(string); ok {
				if out, n := RedactText(s); n > 0 {
					v[i] = out
					count += n
				}
				continue
			}
			count += redactValue(e)
		}
	}
	return count
}
