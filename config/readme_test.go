package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEDocumentsEveryKey keeps the README's configuration reference complete: every key
// and its environment variable must appear there.
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
