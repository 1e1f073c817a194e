//go:build race

package httppush_test

// raceDetector is true when the tests run under the race detector, which makes code many
// times slower: tests with a time bound use smaller inputs then.
const raceDetector = true
