package a

import (
	"os"
	"testing"

	"example.com/fixture/helper"
)

func TestGood(t *testing.T) {}

func TestAlwaysSkipped(t *testing.T) {
	t.Skip("not written yet")
}

func TestShort(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
}

func TestNotShort(t *testing.T) {
	if !testing.Short() {
		t.Skip("runs only in -short mode")
	}
}

func TestEnv(t *testing.T) {
	if os.Getenv("FIXTURE_ON") == "" {
		t.Skip("set FIXTURE_ON")
	}
}

func TestProvidedHelper(t *testing.T) {
	helper.Need(t)
}

func TestUnprovidedHelper(t *testing.T) {
	needThing(t)
}

func TestAlwaysSkippingHelper(t *testing.T) {
	skipper(t)
}

func TestHelperUnderShort(t *testing.T) {
	if testing.Short() {
		skipper(t)
	}
}

func TestSubtests(t *testing.T) {
	for _, name := range []string{"first case", "second"} {
		t.Run(name, func(t *testing.T) {})
	}
}

func TestSkippedSubtest(t *testing.T) {
	t.Run("only", func(t *testing.T) { t.Skip("later") })
}

func BenchmarkThing(b *testing.B) {}

func needThing(t *testing.T) {
	if _, err := os.Stat("/nonexistent/thing"); err != nil {
		t.Skipf("no thing: %v", err)
	}
}

func skipper(t *testing.T) { t.SkipNow() }
