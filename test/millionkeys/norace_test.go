//go:build !race

package millionkeys

// raceDetector is true under the race detector (race_test.go).
const raceDetector = false
