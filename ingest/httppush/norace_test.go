//go:build !race

package httppush_test

// raceDetector is true when the tests run under the race detector (race_test.go).
const raceDetector = false
