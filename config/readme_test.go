package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEDocumentsEveryKey keeps the README's configuration reference complete: every key
// and its environment variable must appear there, the adapters' included.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, kv := range EnvNames() {
		if !strings.Contains(readme, "`"+kv[1]+"`") || !strings.Contains(readme, "`"+kv[0]+"`") {
			t.Errorf("README does not document %s (%s)", kv[1], kv[0])
		}
	}
}

// TestREADMEGivesEveryDefault keeps the README's default column true: each key's default, as
// Default and the adapters' own defaults set it, is the one the table gives ("(none)" for
// an empty value). Two defaults for one key once disagreed (mllp.default_charset).
func TestREADMEGivesEveryDefault(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| `(PSGW_[A-Z_]+)` \\| ([^|]+) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		documented[m[1]] = strings.TrimSpace(m[3])
	}
	cfg := Default()
	root := reflect.ValueOf(&cfg).Elem()
	checked := 0
	for _, k := range envKeys() {
		want, ok := documented[k.path]
		if !ok {
			continue // TestREADMEDocumentsEveryKey reports it
		}
		if strings.Contains(want, "<") {
			continue // derived from another key, e.g. <dir>/processed
		}
		v := root
		if k.adapter != "" {
			v = reflect.ValueOf(cfg.Adapters[k.adapter]).Elem()
		}
		got := formatDefault(v.FieldByIndex(k.index))
		if got != want {
			t.Errorf("%s: the default is %s, the README says %s", k.path, got, want)
		}
		checked++
	}
	if checked < 60 {
		t.Errorf("checked the defaults of %d keys only; is the README's table still in its form?", checked)
	}
}

// formatDefault writes a setting as the README's table does.
func formatDefault(v reflect.Value) string {
	var s string
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		s = v.Interface().(time.Duration).String()
		for _, zero := range []string{"0s", "0m"} {
			if strings.HasSuffix(s, zero) && len(s) > len(zero) && strings.ContainsAny(s[:len(s)-len(zero)], "hms") {
				s = strings.TrimSuffix(s, zero)
			}
		}
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		s = strings.Join(parts, ",")
	default:
		s = fmt.Sprint(v.Interface())
	}
	if s == "" {
		return "(none)"
	}
	return "`" + s + "`"
}
