package c

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	os.Exit(0) // never calls m.Run
}

func TestNeverRuns(t *testing.T) {}
