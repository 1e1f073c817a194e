//go:build !race

package epr

// raceDetector is true when the tests run under the race detector (race_test.go).
const raceDetector = false
