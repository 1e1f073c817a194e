//go:build !race

package b

import "testing"

func TestNotInRaceBuilds(t *testing.T) {}
