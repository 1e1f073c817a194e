package taxonomy

import (
	"strings"

	"github.com/psgw/psgw/fhir/privacy"
)

// outerExtension is one entry of a resource's extension list.
type outerExtension struct {
	path string // positional, e.g. "extension[3]"
	url  string
	obj  map[string]any
}

// outerExtensions returns the well-formed entries of m["extension"], and
// reports the malformed ones. path is the owning resource's path.
func (c *checker) outerExtensions(path string, m map[string]any) []outerExtension {
	listPath := joinKey(path, "extension")
	list, _ := c.array(listPath, m, "extension")
	out := make([]outerExtension, 0, len(list))
	for i, e := range list {
		p := joinIndex(listPath, i)
		if obj, url, ok := c.extensionEntry(p, e); ok {
			out = append(out, outerExtension{path: p, url: url, obj: obj})
		}
	}
	return out
}

// extensionEntry checks that e is an object with a string url.
func (c *checker) extensionEntry(path string, e any) (map[string]any, string, bool) {
	obj, ok := e.(map[string]any)
	if !ok {
		c.ps.add(path, RuleStructure, "extension is not a JSON object")
		return nil, "", false
	}
	v, ok := obj["url"]
	if !ok {
		c.ps.add(path, RuleRequired, "extension has no url")
		return nil, "", false
	}
	url, ok := v.(string)
	if !ok {
		c.ps.add(path, RuleStructure, "extension url is not a string")
		return nil, "", false
	}
	return obj, url, true
}

// wellFormedEntry is extensionEntry when it has nothing to report: an object with a string
// url. It builds no path, so that the common case costs nothing; on false, extensionEntry
// with the path says why.
func wellFormedEntry(e any) (map[string]any, string, bool) {
	obj, ok := e.(map[string]any)
	if !ok {
		return nil, "", false
	}
	url, ok := obj["url"].(string)
	return obj, url, ok
}

// innerPath is the path of inner extension i of the complex extension at path.
func innerPath(path string, i int) string { return joinIndex(joinKey(path, "extension"), i) }

// wellFormedValue is innerValue when it has nothing to report, without a path: it returns
// the value when obj has url, perhaps id and identifier-named keys (which package privacy
// reports), and exactly one value[x], of the key want if want is set, that checkValue
// accepts. On false, innerValue with the path says why.
func wellFormedValue(obj map[string]any, want string) (any, bool) {
	n := 0
	var key string
	var v any
	for k, val := range obj {
		switch {
		case k == "url" || k == "id":
		case strings.HasPrefix(k, "value"):
			n++
			key, v = k, val
		case !privacy.IsIdentifierName(k):
			return nil, false
		}
	}
	if n != 1 || (want != "" && key != want) || checkValue(key, v) != "" {
		return nil, false
	}
	return v, true
}

// complexKeys checks the keys of a complex (outer) extension and returns
// its inner extensions. A complex extension has no value[x] of its own.
func (c *checker) complexKeys(path string, obj map[string]any) []any {
	for k := range obj {
		switch k {
		case "url", "id", "extension":
		default:
			if !privacy.IsIdentifierName(k) {
				c.ps.add(keyPath(path, k), RuleUnknownElement,
					"a complex extension holds only url and extension, not %s", quote(k))
			}
		}
	}
	inner, ok := c.array(joinKey(path, "extension"), obj, "extension")
	if _, present := obj["extension"]; !present {
		c.ps.add(path, RuleRequired, "complex extension has no inner extensions")
	}
	if !ok {
		return nil
	}
	return inner
}

// innerValue checks an inner extension's keys: url, optional id, and
// exactly one value[x]. With want set, the key must be want. It returns the
// value and its key if there is exactly one, whatever its type.
func (c *checker) innerValue(path string, obj map[string]any, want string) (key string, v any, ok bool) {
	n := 0
	for k, val := range obj {
		switch {
		case k == "url" || k == "id":
		case strings.HasPrefix(k, "value"):
			n++
			if key == "" || k < key { // deterministic when there are several
				key, v = k, val
			}
		case !privacy.IsIdentifierName(k):
			c.ps.add(keyPath(path, k), RuleUnknownElement,
				"an inner extension holds only url and one value[x], not %s", quote(k))
		}
	}
	switch {
	case n == 0:
		c.ps.add(path, RuleValueType, "inner extension has no value[x]")
		return "", nil, false
	case n > 1:
		c.ps.add(path, RuleValueType, "inner extension has %d value[x] keys, want exactly one", n)
		return "", nil, false
	case want != "" && key != want:
		c.ps.add(path, RuleValueType, "value is %s, want %s", quote(key), want)
		return "", nil, false
	}
	if msg := checkValue(key, v); msg != "" {
		c.ps.add(path, RuleValueType, "%s", msg)
		return "", nil, false
	}
	return key, v, true
}

// occurrencePath names the k-th occurrence of an element that occurs n
// times and may occur at most max times. The index is only added when the
// element can repeat, so single answers keep short, stable paths.
func occurrencePath(path string, k, n, max int) string {
	if n > 1 || max > 1 {
		return joinIndex(path, k)
	}
	return path
}
