//go:build race

package millionkeys

// raceDetector is true under the race detector, which makes the parse many times slower:
// the test then sends a tenth of the body.
const raceDetector = true
