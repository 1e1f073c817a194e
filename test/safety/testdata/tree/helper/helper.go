// Package helper is a test helper that skips when a tool is missing, as test/pgtest does.
package helper

import (
	"os/exec"
	"testing"
)

// Need skips the test when the widget tool is missing.
func Need(t testing.TB) {
	if _, err := exec.LookPath("widget"); err != nil {
		t.Skip("no widget")
	}
}
