package safety

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/psgw/psgw/config"
	_ "github.com/psgw/psgw/ingest/all" // the adapters' sections hold keys too
)

var (
	codeSpan  = regexp.MustCompile("`([^`]+)`")
	configKey = regexp.MustCompile(`^[a-z][a-z_]*(\.[a-z_<>]+)+$`)
)

// TestGoLiveChecklistKeys keeps docs/safety/go-live-checklist.md, an operational control of
// the hazard log, true to the configuration: every key it names in code spans is a key psgw
// has (a key with a <name> part must appear in the README, which documents them).
func TestGoLiveChecklistKeys(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "safety", "go-live-checklist.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, kv := range config.EnvNames() {
		known[kv[1]] = true
	}
	n := 0
	for _, m := range codeSpan.FindAllStringSubmatch(string(b), -1) {
		key := m[1]
		if !configKey.MatchString(key) {
			continue
		}
		n++
		if strings.Contains(key, "<") {
			if !strings.Contains(string(readme), "`"+key+"`") {
				t.Errorf("the checklist names %s, which the README does not document", key)
			}
			continue
		}
		if !known[key] {
			t.Errorf("the checklist names %s, which is not a configuration key", key)
		}
	}
	if n < 10 {
		t.Errorf("found only %d configuration keys in the checklist; the pattern no longer finds them", n)
	}
}
